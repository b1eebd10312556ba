#include "preload/prim.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace memdet::preload::prim {

pid_t thread_id() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t wrote = ::write(fd, data, size);
    if (wrote < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data += wrote;
    size -= static_cast<size_t>(wrote);
  }
  return true;
}

void warn(const char* message) {
  char line[512];
  size_t size = length(message);
  if (size > sizeof line - 1) {
    size = sizeof line - 1;
  }
  std::memcpy(line, message, size);
  line[size++] = '\n';
  int saved = errno;
  write_all(2, line, size);
  errno = saved;
}

void die(const char* message) {
  static const char kPrefix[] = "memdet preload: ";
  write_all(2, kPrefix, sizeof kPrefix - 1);
  warn(message);
  std::abort();
}

ssize_t read_file(const char* path, char* buffer, size_t capacity) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  size_t used = 0;
  while (used + 1 < capacity) {
    ssize_t got = ::read(fd, buffer + used, capacity - 1 - used);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      if (got < 0) {
        ::close(fd);
        return -1;
      }
      break;
    }
    used += static_cast<size_t>(got);
  }
  ::close(fd);
  buffer[used] = '\0';
  return static_cast<ssize_t>(used);
}

bool for_each_line(const char* path, void (*on_line)(const char*, size_t, void*), void* context) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  char buffer[8192];
  size_t used = 0;
  for (;;) {
    ssize_t got = ::read(fd, buffer + used, sizeof buffer - used);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;
    }
    used += static_cast<size_t>(got);

    // Hand over every complete line, then keep the partial one.
    size_t start = 0;
    for (size_t i = 0; i < used; ++i) {
      if (buffer[i] == '\n') {
        on_line(buffer + start, i - start, context);
        start = i + 1;
      }
    }
    if (start == 0 && used == sizeof buffer) {
      on_line(buffer, used, context);
      used = 0;
    } else {
      std::memmove(buffer, buffer + start, used - start);
      used -= start;
    }
  }
  if (used > 0) {
    on_line(buffer, used, context);
  }
  ::close(fd);
  return true;
}

size_t decimal(uint64_t value, char* out) {
  char reversed[kDecimalDigits];
  size_t count = 0;
  do {
    reversed[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  for (size_t i = 0; i < count; ++i) {
    out[i] = reversed[count - 1 - i];
  }
  return count;
}

long find_number_field(const char* text, const char* key) {
  size_t key_size = length(key);
  for (const char* line = text; *line != '\0';) {
    if (std::strncmp(line, key, key_size) == 0) {
      const char* digit = line + key_size;
      while (*digit == ' ' || *digit == '\t') {
        ++digit;
      }
      long value = 0;
      while (*digit >= '0' && *digit <= '9') {
        value = value * 10 + (*digit++ - '0');
      }
      return value;
    }
    const char* next = std::strchr(line, '\n');
    if (next == nullptr) {
      break;
    }
    line = next + 1;
  }
  return -1;
}

const char* errno_name(int error) {
  switch (error) {
    case ENOMEM:
      return "ENOMEM";
    case EPERM:
      return "EPERM";
    case EAGAIN:
      return "EAGAIN";
    case EINVAL:
      return "EINVAL";
    case ENOSYS:
      return "ENOSYS";
    default:
      return nullptr;
  }
}

size_t length(const char* text) {
  size_t size = 0;
  while (text[size] != '\0') {
    ++size;
  }
  return size;
}

bool starts_with(const char* text, const char* prefix) {
  return std::strncmp(text, prefix, length(prefix)) == 0;
}

Writer& Writer::text(const char* value) { return text(value, length(value)); }

Writer& Writer::text(const char* value, size_t size) {
  while (size > 0) {
    if (used_ == sizeof buffer_) {
      flush();
    }
    size_t room = sizeof buffer_ - used_;
    size_t part = size < room ? size : room;
    std::memcpy(buffer_ + used_, value, part);
    used_ += part;
    value += part;
    size -= part;
  }
  return *this;
}

Writer& Writer::character(char value) { return text(&value, 1); }

Writer& Writer::number(uint64_t value) {
  char digits[kDecimalDigits];
  return text(digits, decimal(value, digits));
}

Writer& Writer::signed_number(int64_t value) {
  if (value < 0) {
    character('-');
    return number(static_cast<uint64_t>(0) - static_cast<uint64_t>(value));
  }
  return number(static_cast<uint64_t>(value));
}

Writer& Writer::hex(uint64_t value) {
  static const char kDigits[] = "0123456789abcdef";
  char digits[16];
  size_t count = 0;
  do {
    digits[sizeof digits - 1 - count++] = kDigits[value & 15];
    value >>= 4;
  } while (value > 0);
  return text(digits + sizeof digits - count, count);
}

bool Writer::flush() {
  if (used_ > 0 && !write_all(fd_, buffer_, used_)) {
    failed_ = true;
  }
  used_ = 0;
  return !failed_;
}

}  // namespace memdet::preload::prim
