// Thin wrappers over the OS calls memdet makes in more than one place. Each
// states what it needs and how it fails; none throws.
#pragma once

#include <string>
#include <utility>

#include <unistd.h>

#include "core/result.h"

namespace memdet::sys {

// A file descriptor that closes itself. -1 means none.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.fd_, -1));
    }
    return *this;
  }
  ~ScopedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Both ends of a pipe, close-on-exec. Fails with errno's text.
struct Pipe {
  ScopedFd read;
  ScopedFd write;
};
Result<Pipe> make_pipe();

// Whole contents of a small file (under /proc, /sys or a config file).
// Fails when the file cannot be opened or read.
Result<std::string> read_small_file(const std::string& path);

// The first `bytes` bytes of a regular file, fewer when the file is shorter.
// Anything else (a FIFO, a device) is refused without blocking.
Result<std::string> read_prefix(const std::string& path, size_t bytes);

// Writes all of `data`, retrying on EINTR and short writes. Returns false
// with errno set when the descriptor refuses.
bool write_all(int fd, const void* data, size_t size);

// strerror(errno) as a std::string, captured before anything can reset errno.
std::string errno_text(int error);

// Monotonic seconds, for durations and deadlines.
double monotonic_seconds();

}  // namespace memdet::sys
