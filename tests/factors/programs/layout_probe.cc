// Prints what the memory-layout factors move, one "key value" line each:
// where the stack and a fresh allocation start, the allocation's offset mod
// 64, what a fresh allocation holds before it is written, and a float sum
// whose rounding depends on the array's alignment, as in a hand-tuned SIMD
// kernel that adds single elements until its pointer is 64-byte aligned.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

float aligned_kernel_sum(const float* data, size_t count) {
  size_t i = 0;
  float head = 0.0f;
  while (i < count && reinterpret_cast<uintptr_t>(data + i) % 64 != 0) {
    head += data[i++];
  }
  // Sixteen lanes, as one AVX-512 register would hold, summed at the end.
  float lanes[16] = {};
  for (; i + 16 <= count; i += 16) {
    for (int lane = 0; lane < 16; ++lane) {
      lanes[lane] += data[i + lane];
    }
  }
  float tail = 0.0f;
  for (; i < count; ++i) {
    tail += data[i];
  }
  float total = head;
  for (float lane : lanes) {
    total += lane;
  }
  return total + tail;
}

}  // namespace

int main() {
  int on_stack = 0;
  std::printf("stack %p\n", static_cast<void*>(&on_stack));

  unsigned char* fresh = static_cast<unsigned char*>(std::malloc(4096));
  std::printf("heap %p\n", static_cast<void*>(fresh));
  std::printf("heap_mod64 %u\n", static_cast<unsigned>(reinterpret_cast<uintptr_t>(fresh) % 64));
  std::printf("fresh_byte %u\n", static_cast<unsigned>(fresh[100]));
  std::free(fresh);

  const size_t count = 100003;
  float* values = static_cast<float*>(std::malloc(count * sizeof(float)));
  uint32_t state = 12345;
  for (size_t i = 0; i < count; ++i) {
    state = state * 1664525u + 1013904223u;
    values[i] = static_cast<float>(state >> 8) / 16777216.0f + 0.1f;
  }
  std::printf("aligned_sum %.9g\n", static_cast<double>(aligned_kernel_sum(values, count)));
  std::free(values);
  return 0;
}
