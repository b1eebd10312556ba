#include "core/sys.h"

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <sys/stat.h>

namespace memdet::sys {

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return make_error(std::string("pipe: ") + errno_text(errno));
  }
  return Pipe{ScopedFd(fds[0]), ScopedFd(fds[1])};
}

Result<std::string> read_small_file(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return make_error(path + ": " + errno_text(errno));
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      return make_error(path + ": " + errno_text(errno));
    }
    if (got == 0) {
      return text;
    }
    text.append(buffer, static_cast<size_t>(got));
  }
}

Result<std::string> read_prefix(const std::string& path, size_t bytes) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    return make_error(path + ": " + errno_text(errno));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return make_error(path + ": not a regular file");
  }
  std::string text(bytes, '\0');
  size_t have = 0;
  while (have < bytes) {
    ssize_t got = ::read(fd.get(), text.data() + have, bytes - have);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      return make_error(path + ": " + errno_text(errno));
    }
    if (got == 0) {
      break;
    }
    have += static_cast<size_t>(got);
  }
  text.resize(have);
  return text;
}

bool write_all(int fd, const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t put = ::write(fd, bytes, size);
    if (put < 0 && errno == EINTR) {
      continue;
    }
    if (put <= 0) {
      return false;
    }
    bytes += put;
    size -= static_cast<size_t>(put);
  }
  return true;
}

std::string errno_text(int error) { return std::strerror(error); }

double monotonic_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

}  // namespace memdet::sys
