// What libmemdet_preload.so adds to malloc and free: a malloc storm (random
// sizes from a fixed seed, a window of live blocks), a tight fixed-size
// loop, and a Python program (small dicts, lists and numpy arrays made and
// dropped), each run as a child process plain, under the library passive,
// under it with heap perturbation active, and under it recording the
// memory-layout fingerprint with every allocation a candidate for keeping
// (fp_threshold=0), and under it with OS entropy, the wall clock and
// directory order pinned ("seeds"). Children are pinned to one CPU and the variants
// alternate within every round (in a rotating order), so all see the same
// machine state; the ratios are per round. The fingerprint's memory is
// checked too: the storm child's peak RSS at two allocation counts, which
// must not grow with the count.
//
//   bench_preload [--rounds N] [--calls N] [--cpu C] [--library PATH]
//                 [--python PATH] [--python-repeat N]
//
// Fingerprint files go to a temporary folder, removed at the end.
//
// The C++ loops time themselves; the Python child is timed from fork to
// exit, start-up included, and its calls are the allocations an active run
// reports (one free assumed for each). It runs with PYTHONMALLOC=malloc:
// with pymalloc, objects of 512 bytes and less never reach malloc, and the
// library would see too few calls to measure. Python is left out, with a
// note, when the interpreter or numpy is missing.
//
// Google Benchmark measures inside one process; here each variant needs its
// own process with its own LD_PRELOAD, so the driver runs them itself.
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

// Builds and drops small dicts and lists (mostly pymalloc, their larger
// tables the C allocator) and numpy arrays of 0.5 to 32 KiB (malloc).
const char kPythonWorkload[] = R"(
import sys
import numpy as np
keys = [f"k{i}" for i in range(24)]
total = 0
for r in range(int(sys.argv[1])):
    rows = [dict(zip(keys[: 4 + i % 20], range(i, i + 24))) for i in range(3000)]
    lists = [list(range(i % 120)) for i in range(3000)]
    arrays = [np.empty(64 + (i * 37) % 4000) for i in range(300)]
    total += len(rows) + len(lists) + sum(a.size for a in arrays)
    del rows, lists, arrays
print(total)
)";

struct Variant {
  const char* name;
  bool preload;
  const char* config;  // MEMDET_PRELOAD, or null for none
};

// The fingerprint variant's directory is appended to its config.
std::string g_fingerprint_config;

constexpr int kVariantCount = 5;
const Variant kVariants[kVariantCount] = {
    {"plain", false, nullptr},
    {"passive", true, nullptr},
    {"active", true, "heap=16;heap_random=1;seed=1"},
    {"fingerprint", true, "fp_threshold=0"},
    // The missed-seed sources pinned: they add nothing to allocation, so
    // this should cost what the passive library does.
    {"seeds", true,
     "entropy=1;lineage=0000000000000000;clock=counter;clock_epoch=946684800;fileorder=sorted"},
};

std::vector<std::string> child_environment(const std::string& library, const Variant& variant,
                                           const std::string& report) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "LD_PRELOAD=", 11) != 0 &&
        std::strncmp(*entry, "MEMDET_PRELOAD=", 15) != 0 &&
        std::strncmp(*entry, "PYTHONMALLOC=", 13) != 0) {
      env.emplace_back(*entry);
    }
  }
  if (variant.preload) {
    env.push_back("LD_PRELOAD=" + library);
  }
  if (variant.config != nullptr) {
    std::string config = variant.config;
    if (std::strcmp(variant.name, "fingerprint") == 0) {
      config += ";" + g_fingerprint_config;
    }
    if (!report.empty()) {
      config += ";report=" + report;
    }
    env.push_back("MEMDET_PRELOAD=" + config);
  }
  return env;
}

struct ChildResult {
  double self_ns;  // what the child printed
  double wall_ns;  // fork to exit
  pid_t pid;
  long max_rss_kb;  // the child's peak resident set
};

// Runs `argv` on `cpu` with `env`; the child's first line of stdout must be
// a number. Exits the benchmark when the child fails.
ChildResult run_pinned(std::vector<std::string> argv, std::vector<std::string> env, int cpu,
                       const char* what) {
  std::vector<char*> envp;
  for (std::string& entry : env) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (std::string& arg : argv) {
    args.push_back(arg.data());
  }
  args.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  uint64_t started = now_ns();
  pid_t pid = ::fork();
  if (pid == 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<size_t>(cpu), &set);
    ::sched_setaffinity(0, sizeof set, &set);
    ::dup2(pipe_fds[1], 1);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string text;
  char chunk[256];
  for (ssize_t got; (got = ::read(pipe_fds[0], chunk, sizeof chunk)) > 0;) {
    text.append(chunk, static_cast<size_t>(got));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  uint64_t wall = now_ns() - started;
  if (text.empty() || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "%s child failed\n", what);
    std::exit(1);
  }
  return {std::strtod(text.c_str(), nullptr), static_cast<double>(wall), pid, usage.ru_maxrss};
}

// Runs this program as a child on `cpu`; returns the loop's time in ns.
double run_child(const std::string& self, const std::string& library, const Variant& variant,
                 const char* loop, uint64_t pairs, int cpu) {
  std::string what = std::string(variant.name) + " " + loop;
  return run_pinned({self, "--child", loop, std::to_string(pairs)},
                    child_environment(library, variant, ""), cpu, what.c_str())
      .self_ns;
}

std::vector<std::string> python_command(const std::string& python, int repeat) {
  return {python, "-c", kPythonWorkload, std::to_string(repeat)};
}

std::vector<std::string> python_environment(const std::string& library, const Variant& variant,
                                            const std::string& report) {
  std::vector<std::string> env = child_environment(library, variant, report);
  env.push_back("PYTHONMALLOC=malloc");
  return env;
}

// The allocation count an active run reports, or 0 without a report.
uint64_t python_allocations(const std::string& python, int repeat, const std::string& library,
                            int cpu) {
  char directory[] = "/tmp/bench_preload.XXXXXX";
  if (::mkdtemp(directory) == nullptr) {
    return 0;
  }
  std::string prefix = std::string(directory) + "/report";
  ChildResult result =
      run_pinned(python_command(python, repeat), python_environment(library, kVariants[2], prefix),
                 cpu, "python report");
  std::string path = prefix + "." + std::to_string(result.pid);
  uint64_t allocations = 0;
  std::ifstream report(path);
  for (std::string line; std::getline(report, line);) {
    if (line.rfind("allocations\t", 0) == 0) {
      allocations = std::strtoull(line.c_str() + 12, nullptr, 10);
    }
  }
  ::unlink(path.c_str());
  ::rmdir(directory);
  return allocations;
}

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  double at = q * static_cast<double>(values.size() - 1);
  auto low = static_cast<size_t>(at);
  size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (values[high] - values[low]) * (at - static_cast<double>(low));
}

struct Summary {
  double median;
  double low;
  double high;
  double iqr;
  double added;  // median of per-round differences, per call
};

// Per-round ratios to plain (times[0]) and added ns per call.
Summary summarise(const std::vector<double>& variant, const std::vector<double>& plain,
                  double calls) {
  std::vector<double> ratios;
  std::vector<double> added;
  for (size_t round = 0; round < plain.size(); ++round) {
    ratios.push_back(variant[round] / plain[round]);
    added.push_back((variant[round] - plain[round]) / calls);
  }
  return {quantile(ratios, 0.5), quantile(ratios, 0), quantile(ratios, 1),
          quantile(ratios, 0.75) - quantile(ratios, 0.25), quantile(added, 0.5)};
}

void print_variants(const std::vector<double> (&times)[kVariantCount], double calls) {
  for (int v = 1; v < kVariantCount; ++v) {
    Summary summary = summarise(times[v], times[0], calls);
    std::printf("  %-11s x%.3f [%.3f, %.3f] IQR %.3f   %+.2f ns per call\n", kVariants[v].name,
                summary.median, summary.low, summary.high, summary.iqr, summary.added);
  }
}

bool python_usable(const std::string& python) {
  if (::access(python.c_str(), X_OK) != 0) {
    return false;
  }
  std::string command = python + " -c 'import numpy' >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
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
  std::string python = "/usr/bin/python3";
  int python_repeat = 60;
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
    } else if (option == "--python") {
      python = argv[i + 1];
    } else if (option == "--python-repeat") {
      python_repeat = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr,
                   "usage: bench_preload [--rounds N] [--calls N] [--cpu C] [--library PATH]\n"
                   "                     [--python PATH] [--python-repeat N]\n");
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

  char fingerprints[] = "/tmp/bench_preload_fp.XXXXXX";
  if (::mkdtemp(fingerprints) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  g_fingerprint_config = std::string("fingerprint=") + fingerprints;
  // Each fingerprinted child leaves two files; they go as they come.
  auto clear_fingerprints = [&] {
    std::string command = std::string("rm -f ") + fingerprints + "/fingerprint.*";
    if (std::system(command.c_str()) != 0) {
      std::fprintf(stderr, "could not clear %s\n", fingerprints);
    }
  };

  std::printf("%llu malloc+free pairs per child (%llu calls), %d rounds, CPU %d\n",
              static_cast<unsigned long long>(calls), static_cast<unsigned long long>(2 * calls),
              rounds, cpu);
  std::printf("ratio to plain per round (median [min, max], IQR) and added ns per call (median)\n");
  for (const char* loop : {"storm", "fixed"}) {
    std::vector<double> times[kVariantCount];
    for (int round = 0; round < rounds; ++round) {
      for (int k = 0; k < kVariantCount; ++k) {
        int v = (round + k) % kVariantCount;
        times[v].push_back(run_child(self, library, kVariants[v], loop, calls, cpu));
      }
      clear_fingerprints();
    }
    std::printf("%s: plain median %.2f ns per pair\n", loop,
                quantile(times[0], 0.5) / static_cast<double>(calls));
    print_variants(times, static_cast<double>(2 * calls));
  }

  // Peak RSS of the storm at two counts, plain and fingerprinted: the
  // fingerprint's buffers are fixed, so the difference must not grow.
  for (uint64_t pairs : {calls / 10, calls}) {
    long rss[2] = {};
    for (int i = 0; i < 2; ++i) {
      const Variant& variant = kVariants[i == 0 ? 0 : 3];
      rss[i] = run_pinned({self, "--child", "storm", std::to_string(pairs)},
                          child_environment(library, variant, ""), cpu, "rss")
                   .max_rss_kb;
    }
    clear_fingerprints();
    std::printf("storm peak RSS at %llu pairs: plain %ld kB, fingerprint %ld kB (+%ld kB)\n",
                static_cast<unsigned long long>(pairs), rss[0], rss[1], rss[1] - rss[0]);
  }

  if (!python_usable(python)) {
    std::printf("python: left out (%s or its numpy is missing)\n", python.c_str());
    ::rmdir(fingerprints);
    return 0;
  }
  uint64_t allocations = python_allocations(python, python_repeat, library, cpu);
  std::vector<double> times[kVariantCount];
  for (int round = 0; round < rounds; ++round) {
    for (int k = 0; k < kVariantCount; ++k) {
      int v = (round + k) % kVariantCount;
      std::string what = std::string(kVariants[v].name) + " python";
      times[v].push_back(run_pinned(python_command(python, python_repeat),
                                    python_environment(library, kVariants[v], ""), cpu,
                                    what.c_str())
                             .wall_ns);
    }
    clear_fingerprints();
  }
  std::printf(
      "python: plain median %.3f s per run, %llu allocations through the library "
      "(calls: twice that)\n",
      quantile(times[0], 0.5) / 1e9, static_cast<unsigned long long>(allocations));
  print_variants(times, allocations > 0 ? 2.0 * static_cast<double>(allocations) : 1.0);
  ::rmdir(fingerprints);
  return 0;
}
