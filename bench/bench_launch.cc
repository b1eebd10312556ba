// What memdet's launcher adds to starting a program: the ready handshake,
// /proc reads at the exec stop and at exit, and the clean-up scan, against a
// bare posix_spawn + waitpid of the same program, interleaved so that both
// see the same machine state.
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/sys.h"
#include "launch/launcher.h"

extern char** environ;

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double bare_spawn(const char* program) {
  double started = memdet::sys::monotonic_seconds();
  pid_t pid = 0;
  char* argv[] = {const_cast<char*>(program), nullptr};
  if (::posix_spawn(&pid, program, nullptr, nullptr, argv, environ) != 0) {
    std::perror("posix_spawn");
    std::exit(1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return memdet::sys::monotonic_seconds() - started;
}

double memdet_launch(const memdet::launch::LaunchSpec& spec) {
  double started = memdet::sys::monotonic_seconds();
  auto result = memdet::launch::launch(spec);
  if (!result || !result->succeeded()) {
    std::fprintf(stderr, "launch failed\n");
    std::exit(1);
  }
  return memdet::sys::monotonic_seconds() - started;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 300;
  const char* program = "/bin/true";

  memdet::launch::LaunchSpec plain;
  plain.executable = program;
  plain.argv = {program};
  for (char** entry = environ; *entry != nullptr; ++entry) {
    plain.env.emplace_back(*entry);
  }
  memdet::launch::LaunchSpec aslr = plain;
  aslr.controls.aslr_off = true;
  // Pinning to one CPU also waits for that CPU, so it measures the machine's
  // load as much as memdet.
  memdet::launch::LaunchSpec pinned = plain;
  pinned.controls.cpus = memdet::launch::CpuSet{0};

  std::vector<double> bare, launched, with_aslr, with_cpus;
  for (int i = 0; i < rounds; ++i) {
    bare.push_back(bare_spawn(program));
    launched.push_back(memdet_launch(plain));
    with_aslr.push_back(memdet_launch(aslr));
    with_cpus.push_back(memdet_launch(pinned));
  }

  double base = median(bare);
  std::printf("launch of %s, median of %d rounds\n", program, rounds);
  std::printf("  bare posix_spawn+waitpid      %8.3f ms\n", base * 1e3);
  std::printf("  memdet launch                 %8.3f ms  (+%.3f ms, x%.2f)\n",
              median(launched) * 1e3, (median(launched) - base) * 1e3, median(launched) / base);
  for (auto [name, times] : {std::pair{"memdet launch, --aslr off    ", &with_aslr},
                             std::pair{"memdet launch, --cpus 0      ", &with_cpus}}) {
    std::printf("  %s %8.3f ms  (+%.3f ms, x%.2f)\n", name, median(*times) * 1e3,
                (median(*times) - base) * 1e3, median(*times) / base);
  }
  return 0;
}
