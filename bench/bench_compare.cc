// Comparing two float32 checkpoints element by element, against the floor of
// reading both files and comparing their bytes (read + memcmp), and the
// XXH3-128 digest of one file. Both files are in the page cache, so this
// measures memory bandwidth, not the disk.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "compare/digest.h"
#include "compare/npy.h"
#include "core/sys.h"

namespace {

double read_and_memcmp(const std::string& a, const std::string& b) {
  double started = memdet::sys::monotonic_seconds();
  int fa = ::open(a.c_str(), O_RDONLY);
  int fb = ::open(b.c_str(), O_RDONLY);
  std::vector<char> ba(1 << 20), bb(1 << 20);
  size_t differing_chunks = 0;
  for (;;) {
    ssize_t ga = ::read(fa, ba.data(), ba.size());
    ssize_t gb = ::read(fb, bb.data(), bb.size());
    if (ga <= 0 || gb <= 0) {
      break;
    }
    differing_chunks +=
        std::memcmp(ba.data(), bb.data(), static_cast<size_t>(std::min(ga, gb))) != 0;
  }
  ::close(fa);
  ::close(fb);
  if (differing_chunks == 0) {
    std::fprintf(stderr, "files unexpectedly equal\n");
  }
  return memdet::sys::monotonic_seconds() - started;
}

template <typename F>
double best_of(int rounds, F&& body) {
  double best = 1e30;
  for (int i = 0; i < rounds; ++i) {
    best = std::min(best, body());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t elements = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (64ull << 20);
  char dir_template[] = "/tmp/memdet-bench-XXXXXX";
  std::string dir = ::mkdtemp(dir_template);
  std::string a = dir + "/a.npy";
  std::string b = dir + "/b.npy";

  // Every element differs by one ULP, the worst case for the comparison.
  std::vector<float> data(elements);
  for (uint64_t i = 0; i < elements; ++i) {
    data[i] = static_cast<float>(i % 1000) * 0.001f + 1.0f;
  }
  memdet::compare::write_npy_f32(a, data.data(), {elements});
  for (float& value : data) {
    value = std::nextafter(value, 10.0f);
  }
  memdet::compare::write_npy_f32(b, data.data(), {elements});
  data = {};
  const double gigabytes = static_cast<double>(2 * elements * sizeof(float)) / 1e9;

  double floor = best_of(3, [&] { return read_and_memcmp(a, b); });
  double compare = best_of(3, [&] {
    double started = memdet::sys::monotonic_seconds();
    auto diff = memdet::compare::compare_npy(a, b);
    if (!diff || !diff->has_value() || (*diff)->differing != elements) {
      std::fprintf(stderr, "comparison gave a wrong answer\n");
      std::exit(1);
    }
    return memdet::sys::monotonic_seconds() - started;
  });
  double digest = best_of(3, [&] {
    double started = memdet::sys::monotonic_seconds();
    memdet::compare::digest_file(a);
    memdet::compare::digest_file(b);
    return memdet::sys::monotonic_seconds() - started;
  });

  std::printf("two float32 .npy files, %.2f GB together, best of 3\n", gigabytes);
  std::printf("  read + memcmp (floor)    %7.3f s  %6.2f GB/s\n", floor, gigabytes / floor);
  std::printf("  compare_npy              %7.3f s  %6.2f GB/s  x%.2f of the floor's time\n",
              compare, gigabytes / compare, compare / floor);
  std::printf("  XXH3-128 digest of both  %7.3f s  %6.2f GB/s  x%.2f\n", digest, gigabytes / digest,
              digest / floor);

  ::unlink(a.c_str());
  ::unlink(b.c_str());
  ::rmdir(dir.c_str());
  return 0;
}
