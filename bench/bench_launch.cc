// What memdet's launcher adds to starting a program: the ready handshake,
// /proc reads at the exec stop and at exit, and the clean-up scan, against a
// bare posix_spawn + waitpid of the same program, interleaved so that both
// see the same machine state.
#include <fcntl.h>
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

double spawn_argv(const std::vector<const char*>& args) {
  double started = memdet::sys::monotonic_seconds();
  pid_t pid = 0;
  std::vector<char*> argv;
  for (const char* arg : args) {
    argv.push_back(const_cast<char*>(arg));
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  // memdet's one line on stderr would flood the terminal.
  ::posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  if (::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    std::perror("posix_spawn");
    std::exit(1);
  }
  ::posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "%s exited with status %d\n", argv[0], status);
    std::exit(1);
  }
  return memdet::sys::monotonic_seconds() - started;
}

double bare_spawn(const char* program) { return spawn_argv({program}); }

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

  // The whole command a user types, memdet's own start included: the exec
  // stop, the factor set-up and the preload library in the child.
  std::vector<double> whole_bare, whole_plain, whole_all;
  for (int i = 0; i < rounds; ++i) {
    whole_bare.push_back(bare_spawn(program));
    whole_plain.push_back(spawn_argv({MEMDET_BINARY, "run", "--", program}));
    whole_all.push_back(spawn_argv({MEMDET_BINARY, "run", "--pin", "all", "--", program}));
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
  double whole = median(whole_bare);
  std::printf("whole commands, median of %d rounds\n", rounds);
  std::printf("  %s                     %8.3f ms\n", program, whole * 1e3);
  for (auto [name, times] : {std::pair{"memdet run -- true          ", &whole_plain},
                             std::pair{"memdet run --pin all -- true", &whole_all}}) {
    std::printf("  %s %8.3f ms  (+%.3f ms, x%.2f)\n", name, median(*times) * 1e3,
                (median(*times) - whole) * 1e3, median(*times) / whole);
  }
  return 0;
}
