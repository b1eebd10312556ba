// What libmemdet_preload.so adds to malloc and free: a malloc storm (random
// sizes from a fixed seed, a window of live blocks) and a tight fixed-size
// loop, each run as a child process plain, under the library passive, and
// under it with heap perturbation active. Children are pinned to one CPU and
// the three variants alternate within every round (in a rotating order), so
// all three see the same machine state; the ratios are per round.
//
//   bench_preload [--rounds N] [--calls N] [--cpu C] [--library PATH]
//
// Google Benchmark measures inside one process; here each variant needs its
// own process with its own LD_PRELOAD, so the driver runs them itself.
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

uint64_t now_ns() {
  timespec time{};
  ::clock_gettime(CLOCK_MONOTONIC, &time);
  return static_cast<uint64_t>(time.tv_sec) * 1000000000ull + static_cast<uint64_t>(time.tv_nsec);
}

// Keeps the compiler from pairing a malloc with its free and deleting both.
inline void keep(void* pointer) { asm volatile("" : : "r"(pointer) : "memory"); }

// The child: one loop, its time in ns on stdout.
int child(const char* loop, uint64_t pairs) {
  constexpr size_t kSizes = 4096;
  constexpr size_t kWindow = 64;
  size_t sizes[kSizes];
  uint64_t state = 0x2545f4914f6cdd1dull;
  for (size_t& size : sizes) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    size = 8 + state % 1024;
  }

  uint64_t started = now_ns();
  if (std::strcmp(loop, "storm") == 0) {
    void* window[kWindow] = {};
    for (uint64_t i = 0; i < pairs; ++i) {
      void*& slot = window[i % kWindow];
      std::free(slot);
      slot = std::malloc(sizes[i % kSizes]);
      keep(slot);
    }
    for (void* pointer : window) {
      std::free(pointer);
    }
  } else {
    for (uint64_t i = 0; i < pairs; ++i) {
      void* pointer = std::malloc(32);
      keep(pointer);
      std::free(pointer);
    }
  }
  std::printf("%llu\n", static_cast<unsigned long long>(now_ns() - started));
  return 0;
}

struct Variant {
  const char* name;
  bool preload;
  const char* config;  // MEMDET_PRELOAD, or null for none
};

const Variant kVariants[] = {
    {"plain", false, nullptr},
    {"passive", true, nullptr},
    {"active", true, "heap=16;heap_random=1;seed=1"},
};

// Runs this program as a child on `cpu`; returns the loop's time in ns.
double run_child(const std::string& self, const std::string& library, const Variant& variant,
                 const char* loop, uint64_t pairs, int cpu) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "LD_PRELOAD=", 11) != 0 &&
        std::strncmp(*entry, "MEMDET_PRELOAD=", 15) != 0) {
      env.emplace_back(*entry);
    }
  }
  if (variant.preload) {
    env.push_back("LD_PRELOAD=" + library);
  }
  if (variant.config != nullptr) {
    env.push_back(std::string("MEMDET_PRELOAD=") + variant.config);
  }
  std::vector<char*> envp;
  for (std::string& entry : env) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);
  std::string pairs_text = std::to_string(pairs);
  char* argv[] = {const_cast<char*>(self.c_str()), const_cast<char*>("--child"),
                  const_cast<char*>(loop), pairs_text.data(), nullptr};

  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<size_t>(cpu), &set);
    ::sched_setaffinity(0, sizeof set, &set);
    ::dup2(pipe_fds[1], 1);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::execve(self.c_str(), argv, envp.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  char text[64] = {};
  ssize_t got = ::read(pipe_fds[0], text, sizeof text - 1);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (got <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "%s child (%s) failed\n", variant.name, loop);
    std::exit(1);
  }
  return std::strtod(text, nullptr);
}

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  double at = q * static_cast<double>(values.size() - 1);
  auto low = static_cast<size_t>(at);
  size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (values[high] - values[low]) * (at - static_cast<double>(low));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--child") == 0) {
    return child(argv[2], std::strtoull(argv[3], nullptr, 10));
  }

  int rounds = 15;
  uint64_t calls = 50000000;
  int cpu = 0;
  std::string library = MEMDET_PRELOAD_LIBRARY;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string option = argv[i];
    if (option == "--rounds") {
      rounds = std::atoi(argv[i + 1]);
    } else if (option == "--calls") {
      calls = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (option == "--cpu") {
      cpu = std::atoi(argv[i + 1]);
    } else if (option == "--library") {
      library = argv[i + 1];
    } else {
      std::fprintf(stderr,
                   "usage: bench_preload [--rounds N] [--calls N] [--cpu C] [--library PATH]\n");
      return 2;
    }
  }
  if (::access(library.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "%s: not found; build memdet_preload or pass --library\n",
                 library.c_str());
    return 1;
  }
  std::string self = "/proc/self/exe";
  char path[4096];
  ssize_t size = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (size > 0) {
    self.assign(path, static_cast<size_t>(size));
  }

  std::printf("%llu malloc+free pairs per child (%llu calls), %d rounds, CPU %d\n",
              static_cast<unsigned long long>(calls), static_cast<unsigned long long>(2 * calls),
              rounds, cpu);
  std::printf("ratio to plain per round (median [min, max], IQR) and added ns per call (median)\n");
  for (const char* loop : {"storm", "fixed"}) {
    std::vector<double> times[3];
    for (int round = 0; round < rounds; ++round) {
      for (int k = 0; k < 3; ++k) {
        int v = (round + k) % 3;
        times[v].push_back(run_child(self, library, kVariants[v], loop, calls, cpu));
      }
    }
    std::printf("%s: plain median %.2f ns per pair\n", loop,
                quantile(times[0], 0.5) / static_cast<double>(calls));
    for (int v = 1; v < 3; ++v) {
      std::vector<double> ratios;
      std::vector<double> added;
      for (int round = 0; round < rounds; ++round) {
        ratios.push_back(times[v][round] / times[0][round]);
        added.push_back((times[v][round] - times[0][round]) / static_cast<double>(2 * calls));
      }
      std::printf("  %-8s x%.3f [%.3f, %.3f] IQR %.3f   %+.2f ns per call\n", kVariants[v].name,
                  quantile(ratios, 0.5), quantile(ratios, 0), quantile(ratios, 1),
                  quantile(ratios, 0.75) - quantile(ratios, 0.25), quantile(added, 0.5));
    }
  }
  return 0;
}
