#include "compare/digest.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// This header turns the XXH3_* names into macros for the dispatching entry
// points (the plain functions are the SSE2 baseline, about half as fast), so
// it is included in this one file only.
#include <xxh_x86dispatch.h>

namespace memdet::compare {
namespace {

std::string to_hex(XXH128_hash_t hash) {
  char text[33];
  std::snprintf(text, sizeof text, "%016" PRIx64 "%016" PRIx64, static_cast<uint64_t>(hash.high64),
                static_cast<uint64_t>(hash.low64));
  return text;
}

}  // namespace

Result<std::string> digest_file(const std::string& path) {
  // O_NONBLOCK: a FIFO or device in an artifact's place must not stall the
  // open, and only a regular file has an end to read to.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return make_error(path + ": " + std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return make_error(path + ": not a regular file");
  }

  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  // Streaming keeps memory constant whatever the artifact's size; 1 MiB reads
  // keep the hash, not the system calls, the bottleneck. A small file gets a
  // buffer its own size, left unfilled: on the launch path each program is
  // hashed, and zeroing a megabyte cost more than hashing a small binary.
  size_t capacity = std::clamp<size_t>(static_cast<size_t>(info.st_size) + 1, 4096, 1 << 20);
  auto buffer = std::make_unique_for_overwrite<char[]>(capacity);
  for (;;) {
    ssize_t got = ::read(fd, buffer.get(), capacity);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      int saved = errno;
      XXH3_freeState(state);
      ::close(fd);
      return make_error(path + ": " + std::strerror(saved));
    }
    if (got == 0) {
      break;
    }
    XXH3_128bits_update(state, buffer.get(), static_cast<size_t>(got));
  }

  XXH128_hash_t hash = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  ::close(fd);
  return to_hex(hash);
}

Digester::Digester() : state_(XXH3_createState()) {
  XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_));
}

Digester::~Digester() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Digester::update(std::string_view bytes) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), bytes.data(), bytes.size());
}

std::string Digester::finish() {
  return to_hex(XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_)));
}

std::string digest_bytes(std::string_view bytes) {
  return to_hex(XXH3_128bits(bytes.data(), bytes.size()));
}

}  // namespace memdet::compare
