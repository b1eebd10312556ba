// Many threads allocating, growing and freeing blocks of random sizes through
// every allocation function, handing blocks to each other to free. Every
// block carries a pattern that is checked before it is freed, grown or
// handed over. Prints one checksum, which depends only on the seed: the same
// line with and without the preload library, over any allocator.
//   stress_malloc [--no-pvalloc]   (jemalloc alone lacks pvalloc)
#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

constexpr int kThreads = 4;
constexpr int kOperations = 200000;
constexpr int kSlots = 256;
constexpr int kExchange = 64;

bool g_use_pvalloc = true;
std::atomic<void*> g_exchange[kExchange];
std::atomic<uint64_t> g_errors{0};
std::atomic<uint64_t> g_checksum{0};

struct Block {
  unsigned char* data = nullptr;
  size_t size = 0;
  unsigned char pattern = 0;
};

// The first 16 bytes of a handed-over block say how to check it.
struct Handoff {
  uint64_t size;
  uint64_t pattern;
};

uint64_t next(uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

size_t random_size(uint64_t& state) {
  uint64_t pick = next(state) % 100;
  if (pick < 70) {
    return 16 + next(state) % 256;
  }
  if (pick < 97) {
    return 16 + next(state) % 16384;
  }
  return 16 + next(state) % (4u << 20);
}

void fill(Block& block) {
  for (size_t i = 0; i < block.size; i += 61) {
    block.data[i] = static_cast<unsigned char>(block.pattern + i);
  }
}

// Checks the pattern at every 61st byte from `start` on.
bool intact(const unsigned char* data, size_t size, unsigned char pattern, size_t start = 0) {
  for (size_t i = start; i < size; i += 61) {
    if (data[i] != static_cast<unsigned char>(pattern + i)) {
      return false;
    }
  }
  return true;
}

void* allocate(uint64_t& state, size_t size, bool& zeroed) {
  zeroed = false;
  void* pointer = nullptr;
  switch (next(state) % 8) {
    case 0:
      zeroed = true;
      return std::calloc(1, size);
    case 1:
      return ::posix_memalign(&pointer, 64, size) == 0 ? pointer : nullptr;
    case 2:
      return std::aligned_alloc(32, (size + 31) & ~size_t{31});
    case 3:
      return ::memalign(128, size);
    case 4:
      return ::valloc(size);
    case 5:
      if (g_use_pvalloc) {
        return ::pvalloc(size);
      }
      return ::valloc(size);
    default:
      return std::malloc(size);
  }
}

void check_and_free(Block& block) {
  if (!intact(block.data, block.size, block.pattern)) {
    g_errors.fetch_add(1);
  }
  std::free(block.data);
  block = Block{};
}

void* run(void* argument) {
  uint64_t state = 0x9e3779b97f4a7c15ULL * (reinterpret_cast<uintptr_t>(argument) + 1);
  Block slots[kSlots];
  uint64_t checksum = 0;
  for (int op = 0; op < kOperations; ++op) {
    Block& block = slots[next(state) % kSlots];
    uint64_t action = next(state) % 10;
    if (block.data == nullptr) {
      bool zeroed = false;
      block.size = random_size(state);
      block.data = static_cast<unsigned char*>(allocate(state, block.size, zeroed));
      if (block.data == nullptr) {
        g_errors.fetch_add(1);
        continue;
      }
      if (zeroed && (block.data[0] != 0 || block.data[block.size - 1] != 0)) {
        g_errors.fetch_add(1);
      }
      block.pattern = static_cast<unsigned char>(next(state));
      fill(block);
      checksum += block.size * 31 + block.pattern;
    } else if (action < 3) {
      // Grow or shrink; what was kept must survive the move.
      size_t size = random_size(state);
      auto* moved = static_cast<unsigned char*>(std::realloc(block.data, size));
      if (moved == nullptr) {
        g_errors.fetch_add(1);
        continue;
      }
      size_t kept = size < block.size ? size : block.size;
      if (!intact(moved, kept, block.pattern)) {
        g_errors.fetch_add(1);
      }
      block.data = moved;
      block.size = size;
      fill(block);
      checksum += size;
    } else if (action < 5) {
      // Hand the block to whichever thread takes it next.
      Handoff handoff{block.size, block.pattern};
      if (!intact(block.data, block.size, block.pattern)) {
        g_errors.fetch_add(1);
      }
      std::memcpy(block.data, &handoff, sizeof handoff);
      void* previous = g_exchange[next(state) % kExchange].exchange(block.data);
      block = Block{};
      if (previous != nullptr) {
        Handoff other;
        std::memcpy(&other, previous, sizeof other);
        auto* data = static_cast<unsigned char*>(previous);
        // The handoff record overwrote the first 16 bytes; byte 61 on is the pattern.
        if (other.size < 16 ||
            !intact(data, other.size, static_cast<unsigned char>(other.pattern), 61)) {
          g_errors.fetch_add(1);
        }
        std::free(previous);
      }
    } else {
      check_and_free(block);
    }
  }
  for (Block& block : slots) {
    if (block.data != nullptr) {
      check_and_free(block);
    }
  }
  g_checksum.fetch_add(checksum);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--no-pvalloc") {
      g_use_pvalloc = false;
    }
  }
  pthread_t threads[kThreads];
  for (uintptr_t i = 0; i < kThreads; ++i) {
    if (::pthread_create(&threads[i], nullptr, run, reinterpret_cast<void*>(i)) != 0) {
      return 1;
    }
  }
  for (pthread_t thread : threads) {
    ::pthread_join(thread, nullptr);
  }
  for (auto& slot : g_exchange) {
    std::free(slot.exchange(nullptr));
  }
  std::printf("checksum %llu errors %llu\n", static_cast<unsigned long long>(g_checksum.load()),
              static_cast<unsigned long long>(g_errors.load()));
  return g_errors.load() == 0 ? 0 : 1;
}
