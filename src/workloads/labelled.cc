#include "workloads/labelled.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <vector>

namespace memdet::workloads {

namespace {

constexpr uint64_t kSeed = 0x6c6162656c6c6564;  // "labelled"
constexpr int kMaxThreads = 256;
// Below glibc's mmap threshold (128 KiB), so the block comes from the heap
// proper, where its offset mod 64 follows the allocations before it.
constexpr size_t kHeapFloats = 16384;
constexpr size_t kAslrObjects = 256;
// Each thread's additions last tens of milliseconds, longer than a
// scheduler's time slice: on a busy machine, where the two threads share a
// CPU, the slices' boundaries, which vary from run to run, still interleave
// them. The values repeat with a period of kAtomicValues, negated every
// other period, so that the total stays near zero and what is left of it is
// mostly the rounding errors, which follow the interleaving.
constexpr size_t kAtomicAdds = 1 << 22;
constexpr size_t kAtomicValues = 1 << 16;
constexpr size_t kThreadsFloats = 1 << 16;
// Above the mmap threshold: a free run gets fresh zeroed pages, the same in
// every run whatever ran before, instead of another block's leftovers.
constexpr size_t kUninitBytes = 1 << 20;
constexpr size_t kUninitStride = 256;
// Small blocks of mixed sizes: each allocator sorts them into its own size
// classes, so their address order is its signature.
constexpr size_t kAllocatorBlocks = 512;
// Values summed in an order drawn from a seed, or in a listing's order.
constexpr size_t kSeededValues = 256;
constexpr size_t kListedValues = 48;

// splitmix64 (Steele, Lea, Flood 2014): output fixed by the algorithm, so
// every build and standard library draws the same values.
uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

struct Line {
  const char* name;
  float value;
};

// A plain sum and a running average with decay, as a smoothed loss or a
// momentum keeps. Sums of the same values in two orders often round to the
// same float; the running average weighs the last values most, so it tells
// nearly every two orders apart.
class Accumulator {
 public:
  void add(float value) {
    sum_ += value;
    average_ = 0.9f * average_ + 0.1f * value;
  }
  std::vector<Line> lines() const { return {{"sum", sum_}, {"average", average_}}; }

 private:
  float sum_ = 0;
  float average_ = 0;
};

Result<std::vector<Line>> heap_sum() {
  const std::vector<float> values = labelled_values(kHeapFloats);
  auto* buffer = static_cast<float*>(std::malloc(kHeapFloats * sizeof(float)));
  if (buffer == nullptr) return make_error("cannot allocate the heap workload's buffer");
  std::copy(values.begin(), values.end(), buffer);
  const float sum = offset_grouped_sum(buffer, kHeapFloats);
  std::free(buffer);
  return std::vector<Line>{{"sum", sum}};
}

// In the executable's own data, so the loader puts them at the PIE base
// plus a fixed offset: ASLR moves them, and no allocator, heap offset or
// stack padding can.
float g_static_values[kAslrObjects];

// A mixing hash, as hash tables made for pointer keys use: libstdc++'s
// std::hash of a pointer is the address itself, whose residues modulo the
// bucket count only rotate when the base moves by a page, and would repeat
// the order in about one run in a hundred.
struct AddressHash {
  size_t operator()(const float* pointer) const {
    return mix(reinterpret_cast<uintptr_t>(pointer));
  }
};

std::vector<Line> aslr_sum() {
  const std::vector<float> values = labelled_values(kAslrObjects);
  std::copy(values.begin(), values.end(), g_static_values);
  std::unordered_set<const float*, AddressHash> objects;
  for (const float& value : g_static_values) objects.insert(&value);

  Accumulator accumulator;
  for (const float* value : objects) accumulator.add(*value);
  return accumulator.lines();
}

Result<std::vector<Line>> atomic_sum() {
  const std::vector<float> values = labelled_values(kAtomicValues);
  float total = 0;
  std::atomic<int> ready{0};
  // Both threads spin until the other has arrived, so that their additions
  // overlap instead of one thread finishing before the other starts.
  const auto add = [&](size_t first, size_t last) {
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    for (size_t i = first; i < last; ++i) {
      const float value = values[i % kAtomicValues];
      std::atomic_ref<float>(total).fetch_add((i / kAtomicValues) % 2 == 0 ? value : -value,
                                              std::memory_order_relaxed);
    }
  };

  std::thread other;
  try {
    other = std::thread(add, kAtomicAdds / 2, kAtomicAdds);
  } catch (const std::system_error& error) {
    return make_error(std::string("cannot start a thread: ") + error.what());
  }
  add(0, kAtomicAdds / 2);
  other.join();
  return std::vector<Line>{{"sum", total}};
}

Result<std::vector<Line>> threads_sum() {
  cpu_set_t mask;
  const int cpus = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : 1;
  const int count = thread_count(std::getenv("OMP_NUM_THREADS"), cpus);
  const std::vector<float> values = labelled_values(kThreadsFloats);
  Result<float> sum = partitioned_sum(values.data(), values.size(), count);
  if (!sum) return sum.error();
  return std::vector<Line>{{"sum", *sum}};
}

Result<std::vector<Line>> uninit_sum() {
  auto* block = static_cast<unsigned char*>(std::malloc(kUninitBytes));
  if (block == nullptr) return make_error("cannot allocate the uninit workload's block");
  // The compiler may assume that memory never written holds whatever suits
  // it and fold the loads below; this says the block may have been written.
  asm volatile("" : : "r"(block) : "memory");

  float sum = 0;
  for (size_t offset = 0; offset < kUninitBytes; offset += kUninitStride) {
    float value;
    std::memcpy(&value, block + offset, sizeof value);
    sum += value;
  }
  std::free(block);
  return std::vector<Line>{{"sum", sum}};
}

Result<std::vector<Line>> allocator_sum() {
  const std::vector<float> values = labelled_values(kAllocatorBlocks);
  // Both vectors are made before the blocks, so that nothing else is
  // allocated between them.
  std::vector<float*> blocks(kAllocatorBlocks, nullptr);
  std::vector<size_t> order(kAllocatorBlocks);
  std::iota(order.begin(), order.end(), 0);

  bool failed = false;
  for (size_t i = 0; i < kAllocatorBlocks; ++i) {
    const size_t bytes = 16 * (1 + mix(kSeed ^ i) % 64);
    blocks[i] = static_cast<float*>(std::malloc(bytes));
    failed |= blocks[i] == nullptr;
    if (blocks[i] != nullptr) *blocks[i] = values[i];
  }

  Accumulator accumulator;
  if (!failed) {
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return reinterpret_cast<uintptr_t>(blocks[a]) < reinterpret_cast<uintptr_t>(blocks[b]);
    });
    for (size_t i : order) accumulator.add(*blocks[i]);
  }
  for (float* block : blocks) std::free(block);
  if (failed) return make_error("cannot allocate the allocator workload's blocks");
  return accumulator.lines();
}

// The values summed in the order a generator seeded with `seed` shuffles
// them into.
std::vector<Line> shuffled_sum(uint64_t seed) {
  const std::vector<float> values = labelled_values(kSeededValues);
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = order.size(); i > 1; --i) {
    seed = mix(seed + i);
    std::swap(order[i - 1], order[seed % i]);
  }
  Accumulator accumulator;
  for (size_t i : order) accumulator.add(values[i]);
  return accumulator.lines();
}

std::vector<Line> entropy_sum() {
  std::random_device device;
  const uint64_t seed = (static_cast<uint64_t>(device()) << 32) | device();
  return shuffled_sum(seed);
}

std::vector<Line> clock_sum() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return shuffled_sum(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
}

// One file per value, named by its index, each holding the value's bits;
// summed in the order the directory lists them. The same directory made the
// same way lists the same way on one file system, and otherwise on another.
Result<std::vector<Line>> listed_sum(const std::string& out_dir) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(out_dir) / "values";
  std::error_code error;
  fs::remove_all(dir, error);
  fs::create_directories(dir, error);
  if (error) return make_error("cannot create " + dir.string() + ": " + error.message());
  const std::vector<float> values = labelled_values(kListedValues);
  for (size_t i = 0; i < values.size(); ++i) {
    std::ofstream file(dir / ("v" + std::to_string(mix(kSeed + i) % 100000)));
    file << values[i] << "\n";
    if (!file) return make_error("cannot write into " + dir.string());
  }
  Accumulator accumulator;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    std::ifstream file(entry.path());
    float value = 0;
    file >> value;
    accumulator.add(value);
  }
  if (error) return make_error("cannot list " + dir.string() + ": " + error.message());
  return accumulator.lines();
}

std::vector<Line> control_sum() {
  float sum = 0;
  for (float value : labelled_values(kHeapFloats)) sum += value;
  return {{"sum", sum}};
}

Result<std::vector<Line>> compute(Cause cause, const std::string& out_dir) {
  switch (cause) {
    case Cause::heap:
      return heap_sum();
    case Cause::aslr:
      return aslr_sum();
    case Cause::atomic:
      return atomic_sum();
    case Cause::threads:
      return threads_sum();
    case Cause::uninit:
      return uninit_sum();
    case Cause::allocator:
      return allocator_sum();
    case Cause::entropy:
      return entropy_sum();
    case Cause::clock:
      return clock_sum();
    case Cause::fileorder:
      return listed_sum(out_dir);
    case Cause::none:
      return control_sum();
  }
  return make_error("unknown cause");
}

Status write_lines(const std::string& path, const std::vector<Line>& lines) {
  std::FILE* file = std::fopen(path.c_str(), "we");
  if (file == nullptr) return make_error("cannot create " + path + ": " + std::strerror(errno));
  bool failed = false;
  for (const Line& line : lines) {
    failed |= std::fprintf(file, "%s %.9g\n", line.name, static_cast<double>(line.value)) < 0;
  }
  failed |= std::fclose(file) != 0;
  if (failed) return make_error("cannot write " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

std::vector<float> labelled_values(size_t count) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) {
    const uint64_t bits = mix(kSeed + 0x9e3779b97f4a7c15 * (i + 1));
    const float unit = static_cast<float>(bits >> 40) * 0x1p-23f - 1.0f;
    values[i] = std::ldexp(unit, static_cast<int>((bits >> 8) % 25) - 12);
  }
  return values;
}

const char* cause_name(Cause cause) {
  switch (cause) {
    case Cause::heap:
      return "heap";
    case Cause::aslr:
      return "aslr";
    case Cause::atomic:
      return "atomic";
    case Cause::threads:
      return "threads";
    case Cause::uninit:
      return "uninit";
    case Cause::allocator:
      return "allocator";
    case Cause::entropy:
      return "entropy";
    case Cause::clock:
      return "clock";
    case Cause::fileorder:
      return "fileorder";
    case Cause::none:
      return "none";
  }
  return "?";
}

std::optional<Cause> parse_cause(std::string_view name) {
  for (Cause cause : kCauses) {
    if (name == cause_name(cause)) return cause;
  }
  return std::nullopt;
}

float offset_grouped_sum(const float* data, size_t count) {
  size_t i = 0;
  float head = 0;
  for (; i < count && reinterpret_cast<uintptr_t>(data + i) % 64 != 0; ++i) head += data[i];

  constexpr size_t kLanes = 64 / sizeof(float);
  float lanes[kLanes] = {};
  for (; i + kLanes <= count; i += kLanes) {
    for (size_t lane = 0; lane < kLanes; ++lane) lanes[lane] += data[i + lane];
  }

  float sum = head;
  for (float lane : lanes) sum += lane;
  for (; i < count; ++i) sum += data[i];
  return sum;
}

Result<float> partitioned_sum(const float* data, size_t count, int parts) {
  const auto n = static_cast<size_t>(std::clamp(parts, 1, kMaxThreads));
  std::vector<float> sums(n, 0.0f);
  const auto sum_part = [&](size_t part) {
    for (size_t i = part * count / n; i < (part + 1) * count / n; ++i) sums[part] += data[i];
  };

  std::vector<std::thread> workers;
  std::string spawn_error;
  for (size_t part = 1; part < n && spawn_error.empty(); ++part) {
    try {
      workers.emplace_back(sum_part, part);
    } catch (const std::system_error& error) {
      spawn_error = error.what();
    }
  }
  sum_part(0);
  for (std::thread& worker : workers) worker.join();
  if (!spawn_error.empty()) return make_error("cannot start a thread: " + spawn_error);

  float sum = 0;
  for (float part : sums) sum += part;
  return sum;
}

int thread_count(const char* omp_num_threads, int affinity_cpus) {
  int count = affinity_cpus;
  if (omp_num_threads != nullptr) {
    // A list ("4,2") sets nested levels; the first is the outer team's.
    char* end = nullptr;
    const long asked = std::strtol(omp_num_threads, &end, 10);
    if (end != omp_num_threads && (*end == '\0' || *end == ',') && asked > 0) {
      count = static_cast<int>(std::min<long>(asked, kMaxThreads));
    }
  }
  return std::clamp(count, 1, kMaxThreads);
}

Status run_labelled(Cause cause, const std::string& out_dir) {
  if (out_dir.empty()) return make_error("canary needs an output directory");
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) return make_error("cannot create " + out_dir + ": " + error.message());

  Result<std::vector<Line>> lines = compute(cause, out_dir);
  if (!lines) return lines.error();
  return write_lines((std::filesystem::path(out_dir) / "result.txt").string(), *lines);
}

}  // namespace memdet::workloads
