// Prints what the heap looks like from the program's side, for the
// heap-class, heap-random and uninit tests:
//   probe_heap classes   one line "<function> <size> <p % 64>" per allocation
//   probe_heap offsets   p % 64 of 200 mixed allocations on one line
//   probe_heap uninit    the bytes fresh memory holds, per function
//   probe_heap count N   N mallocs (and frees) on the main thread, on each of
//                        four joined threads and on two detached ones
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <vector>

namespace {

// Keeps the compiler from pairing and deleting an allocation it can see.
void keep(void* pointer) { asm volatile("" : : "r"(pointer) : "memory"); }

unsigned mod64(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 64; }

const size_t kSizes[] = {1, 7, 16, 24, 100, 255, 1000, 4096, 70000, 3u << 20};

int classes() {
  std::vector<void*> held;
  for (size_t size : kSizes) {
    void* m = std::malloc(size);
    void* c = std::calloc(1, size);
    void* r = std::realloc(std::malloc(8), size);
    void* g = std::realloc(nullptr, size);
    char* n = new char[size];
    auto* o = static_cast<char*>(::operator new(size));
    void* t = ::operator new(size, std::nothrow);
    void* a = std::aligned_alloc(16, (size + 15) & ~size_t{15});
    void* p = nullptr;
    if (::posix_memalign(&p, 16, size) != 0) {
      return 1;
    }
    std::printf("malloc %zu %u\ncalloc %zu %u\nrealloc %zu %u\nrealloc_null %zu %u\n", size,
                mod64(m), size, mod64(c), size, mod64(r), size, mod64(g));
    std::printf("new[] %zu %u\nnew %zu %u\nnew_nothrow %zu %u\n", size, mod64(n), size, mod64(o),
                size, mod64(t));
    std::printf("aligned_alloc16 %zu %u\nposix_memalign16 %zu %u\n", size, mod64(a), size,
                mod64(p));
    held.insert(held.end(), {m, c, r, g, a, p});
    delete[] n;
    ::operator delete(o);
    ::operator delete(t);
  }
  // Over-aligned requests keep their alignment whatever the class.
  void* big = nullptr;
  if (::posix_memalign(&big, 4096, 100) != 0 || reinterpret_cast<uintptr_t>(big) % 4096 != 0) {
    std::printf("posix_memalign4096 misaligned\n");
    return 1;
  }
  void* page = ::valloc(10);
  void* rounded = ::pvalloc(10);
  void* memaligned = ::memalign(128, 10);
  if (reinterpret_cast<uintptr_t>(page) % 4096 != 0 ||
      reinterpret_cast<uintptr_t>(rounded) % 4096 != 0 ||
      reinterpret_cast<uintptr_t>(memaligned) % 128 != 0 || ::malloc_usable_size(rounded) < 4096) {
    std::printf("page-aligned request misaligned\n");
    return 1;
  }
  std::printf("aligned_ok\n");
  held.insert(held.end(), {big, page, rounded, memaligned});
  for (void* pointer : held) {
    std::free(pointer);
  }
  return 0;
}

int offsets() {
  for (int i = 0; i < 200; ++i) {
    void* pointer = std::malloc(static_cast<size_t>(16 + i * 8));
    keep(pointer);
    std::printf("%u%c", mod64(pointer), i == 199 ? '\n' : ' ');
    if (i % 3 == 0) {
      std::free(pointer);
    }
  }
  return 0;
}

// "all=<byte>" when every byte of the block equals the first, else "mixed".
void show(const char* what, const void* pointer, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(pointer);
  bool same = true;
  for (size_t i = 1; i < size; ++i) {
    same = same && bytes[i] == bytes[0];
  }
  if (same) {
    std::printf("%s all=%u\n", what, bytes[0]);
  } else {
    std::printf("%s mixed\n", what);
  }
}

int uninit() {
  constexpr size_t kSize = 4096;
  auto* fresh = static_cast<unsigned char*>(std::malloc(kSize));
  show("malloc", fresh, kSize);

  // Reused memory: dirty it, free it, take it back.
  std::memset(fresh, 0x11, kSize);
  std::free(fresh);
  auto* again = static_cast<unsigned char*>(std::malloc(kSize));
  show("malloc_reused", again, kSize);

  auto* zeroed = static_cast<unsigned char*>(std::calloc(kSize, 1));
  show("calloc", zeroed, kSize);
  std::memset(zeroed, 0x22, kSize);
  std::free(zeroed);
  zeroed = static_cast<unsigned char*>(std::calloc(kSize, 1));
  show("calloc_reused", zeroed, kSize);

  std::memset(again, 0x33, kSize);
  auto* grown = static_cast<unsigned char*>(std::realloc(again, 4 * kSize));
  show("realloc_kept", grown, kSize);
  show("realloc_tail", grown + kSize, 3 * kSize);

  auto* array = new unsigned char[kSize];
  show("new[]", array, kSize);
  void* aligned = nullptr;
  if (::posix_memalign(&aligned, 64, kSize) != 0) {
    return 1;
  }
  show("posix_memalign", aligned, kSize);
  show("memalign", ::memalign(256, kSize), kSize);
  show("valloc", ::valloc(kSize), kSize);
  show("aligned_alloc", std::aligned_alloc(32, kSize), kSize);
  return 0;
}

void* allocate_n(void* opaque) {
  auto count = *static_cast<const long*>(opaque);
  for (long i = 0; i < count; ++i) {
    void* pointer = std::malloc(static_cast<size_t>(8 + i % 500));
    keep(pointer);
    std::free(pointer);
  }
  return nullptr;
}

// The same number of allocations in every thread, whatever N, except for
// the N mallocs themselves: a report's allocation count grows by exactly
// 7 * N between two values of N.
int count(long n) {
  pthread_t joined[4];
  for (pthread_t& thread : joined) {
    if (pthread_create(&thread, nullptr, allocate_n, &n) != 0) {
      return 1;
    }
  }
  for (pthread_t thread : joined) {
    pthread_join(thread, nullptr);
  }
  // Detached: gone (their exit hooks run) before the main thread returns,
  // which the barrier-free wait below makes likely but not certain; their
  // counts must be in the report either way.
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  for (int i = 0; i < 2; ++i) {
    pthread_t thread;
    if (pthread_create(&thread, &attributes, allocate_n, &n) != 0) {
      return 1;
    }
  }
  pthread_attr_destroy(&attributes);
  allocate_n(&n);
  ::usleep(200000);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "classes") {
    return classes();
  }
  if (mode == "offsets") {
    return offsets();
  }
  if (mode == "uninit") {
    return uninit();
  }
  if (mode == "count" && argc > 2) {
    return count(std::atol(argv[2]));
  }
  std::fprintf(stderr, "usage: probe_heap classes|offsets|uninit|count N\n");
  return 2;
}
