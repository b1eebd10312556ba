// The OS calls the preload library makes, each a thin wrapper over a system
// call or an allocation-free libc function. None of them allocates, takes a
// lock or touches errno beyond what the underlying call does; the rules at
// the top of hooks.cc explain why.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace memdet::preload::prim {

// The kernel's id of the calling thread. Never fails.
pid_t thread_id();

// Writes all of `size` bytes unless the descriptor fails; retries on EINTR
// and short writes. Returns false on failure, with errno from write(2).
bool write_all(int fd, const char* data, size_t size);

// Writes `message` and a newline to fd 2 as one write.
void warn(const char* message);

// Writes "memdet preload: <message>" to fd 2 and aborts. For conditions the
// library cannot run under (a required lower symbol missing).
[[noreturn]] void die(const char* message);

// Reads at most `capacity - 1` bytes of `path` into `buffer` and terminates
// it. Returns the length read, or -1 when the file cannot be opened or read.
ssize_t read_file(const char* path, char* buffer, size_t capacity);

// Calls `on_line` for every line of `path` (without its newline), reading
// through a fixed buffer; lines longer than the buffer arrive cut. Returns
// false when the file cannot be opened.
bool for_each_line(const char* path, void (*on_line)(const char* line, size_t size, void* context),
                   void* context);

// Writes `value` in decimal to `out`, which holds at least kDecimalDigits
// bytes, without a terminator; returns the number of digits.
constexpr size_t kDecimalDigits = 20;
size_t decimal(uint64_t value, char* out);

// In a /proc "Key:   123 kB" text, the number after `key` (which includes
// the colon), or -1 when the key is absent.
long find_number_field(const char* text, const char* key);

// The name of an errno value the report uses ("ENOMEM"), or null for one it
// does not name.
const char* errno_name(int error);

// Length of a NUL-terminated string; the library is built without builtins,
// so this keeps small loops out of libc calls where it matters for clarity.
size_t length(const char* text);

bool starts_with(const char* text, const char* prefix);

// A fixed-size text buffer that flushes to a descriptor when full. Appends
// never fail; a failed flush drops the text and marks the writer failed.
class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& text(const char* value);
  Writer& text(const char* value, size_t size);
  Writer& character(char value);
  Writer& number(uint64_t value);
  Writer& signed_number(int64_t value);
  Writer& hex(uint64_t value);
  // Ends a report record.
  Writer& tab() { return character('\t'); }
  Writer& end() { return character('\n'); }

  // Writes what is buffered; returns false if any write failed.
  bool flush();

 private:
  int fd_;
  bool failed_ = false;
  size_t used_ = 0;
  char buffer_[8192];
};

}  // namespace memdet::preload::prim
