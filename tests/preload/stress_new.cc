// C++ allocation through every operator new and delete form, from several
// std::threads: containers, strings, over-aligned types, nothrow and sized
// forms. Prints results that depend only on the computation.
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct alignas(64) Line {
  double values[8];
};

struct alignas(4096) Page {
  unsigned char bytes[4096];
};

uint64_t work(unsigned seed) {
  uint64_t sum = 0;
  std::map<int, std::string> names;
  std::unordered_map<uint64_t, std::vector<int>> buckets;
  for (unsigned i = 0; i < 20000; ++i) {
    unsigned key = (i * 2654435761u + seed) % 5000;
    names[static_cast<int>(key)] = std::to_string(key) + "-" + std::to_string(i);
    buckets[key % 97].push_back(static_cast<int>(i));
    if (i % 7 == 0) {
      names.erase(static_cast<int>((key * 7) % 5000));
    }
  }
  for (const auto& [key, name] : names) {
    sum += static_cast<uint64_t>(key) * name.size();
  }
  for (const auto& [key, values] : buckets) {
    sum += key * values.size();
  }

  std::vector<std::unique_ptr<Line>> lines;
  for (unsigned i = 0; i < 1000; ++i) {
    lines.push_back(std::make_unique<Line>());
    if (reinterpret_cast<uintptr_t>(lines.back().get()) % 64 != 0) {
      return 0;
    }
    lines.back()->values[i % 8] = i;
    sum += static_cast<uint64_t>(lines.back()->values[i % 8]);
  }
  auto pages = std::make_unique<Page[]>(3);
  if (reinterpret_cast<uintptr_t>(pages.get()) % 4096 != 0) {
    return 0;
  }
  pages[2].bytes[4095] = 7;
  sum += pages[2].bytes[4095];

  for (unsigned i = 0; i < 1000; ++i) {
    auto* value = new (std::nothrow) uint64_t[i + 1];
    if (value == nullptr) {
      return 0;
    }
    value[i] = i;
    sum += value[i];
    delete[] value;
    auto* aligned = new (std::align_val_t{256}, std::nothrow) char[i + 1];
    if (aligned == nullptr || reinterpret_cast<uintptr_t>(aligned) % 256 != 0) {
      return 0;
    }
    ::operator delete[](aligned, std::align_val_t{256});
  }
  auto shared = std::make_shared<std::vector<std::string>>(100, "shared");
  sum += shared->size() * shared->front().size();
  return sum;
}

}  // namespace

int main() {
  std::vector<uint64_t> results(4);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < results.size(); ++i) {
    threads.emplace_back([&results, i] { results[i] = work(i); });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  for (uint64_t result : results) {
    std::printf("%llu\n", static_cast<unsigned long long>(result));
  }
  return 0;
}
