// entropy=: every read of OS entropy is served from a counter-mode stream
// keyed by (seed, lineage, the thread's ordinal hash, the thread's read
// count), so a pinned run gets the same bytes whatever the scheduling
// (CONTRACT.md, "Entropy").
//
// The sources are interposed one by one: glibc's getentropy and arc4random
// call its internal getrandom, not the exported one, and libstdc++'s
// random_device uses RDRAND without any system call where the CPU has it.
// Descriptors and FILE streams opened on the random devices are tracked in
// fixed tables and their reads served from the stream.
//
// The passive paths are a load of one gate and a compare before the call
// of the next definition: each gate is zero only once the next definitions
// are resolved and, for the gates that need it, once the mode is decided
// with entropy= off (or no descriptor or stream is tracked).
#undef _FORTIFY_SOURCE
#include "preload/entropy.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

extern char** environ;

#include "preload/caller.h"
#include "preload/shim.h"

extern "C" {
// The fortified entry points, declared by glibc's headers only under
// _FORTIFY_SOURCE.
ssize_t __read_chk(int fd, void* buffer, size_t size, size_t buffer_size);
ssize_t __pread_chk(int fd, void* buffer, size_t size, off_t offset, size_t buffer_size);
ssize_t __pread64_chk(int fd, void* buffer, size_t size, off64_t offset, size_t buffer_size);
int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int directory, const char* path, int flags);
int __openat64_2(int directory, const char* path, int flags);
size_t __fread_chk(void* buffer, size_t buffer_size, size_t size, size_t count, FILE* file);
char* __fgets_chk(char* buffer, size_t buffer_size, int size, FILE* file);
}

namespace memdet::preload {
namespace {

enum class Source : uint8_t {
  kNone,
  kGetrandom,
  kGetentropy,
  kArc4random,
  kSyscall,
  kUrandom,
  kRandom,
  kUuid,
  kRandomDevice,
};

const char* source_name(Source source) {
  switch (source) {
    case Source::kNone:
      break;
    case Source::kGetrandom:
      return "getrandom";
    case Source::kGetentropy:
      return "getentropy";
    case Source::kArc4random:
      return "arc4random";
    case Source::kSyscall:
      return "syscall";
    case Source::kUrandom:
      return "urandom";
    case Source::kRandom:
      return "random";
    case Source::kUuid:
      return "uuid";
    case Source::kRandomDevice:
      return "random_device";
  }
  return "-";
}

// ---------------------------------------------------------------------------
// The definitions beneath the library.

using OpenFunction = int (*)(const char*, int, ...);
using OpenAtFunction = int (*)(int, const char*, int, ...);
using OpenCheckFunction = int (*)(const char*, int);
using OpenAtCheckFunction = int (*)(int, const char*, int);
using FopenFunction = FILE* (*)(const char*, const char*);
using FreopenFunction = FILE* (*)(const char*, const char*, FILE*);
using FcntlFunction = int (*)(int, int, ...);
using GetcFunction = int (*)(FILE*);
using FreadFunction = size_t (*)(void*, size_t, size_t, FILE*);
using RandomDeviceFunction = unsigned (*)(void*);
using SyscallFunction = long (*)(long, long, long, long, long, long, long);
using SpawnFunction = int (*)(pid_t*, const char*, const posix_spawn_file_actions_t*,
                              const posix_spawnattr_t*, char* const*, char* const*);

struct Next {
  ssize_t (*getrandom)(void*, size_t, unsigned) = nullptr;
  int (*getentropy)(void*, size_t) = nullptr;
  uint32_t (*arc4random)() = nullptr;
  void (*arc4random_buf)(void*, size_t) = nullptr;
  uint32_t (*arc4random_uniform)(uint32_t) = nullptr;
  OpenFunction open = nullptr;
  OpenFunction open64 = nullptr;
  OpenAtFunction openat = nullptr;
  OpenAtFunction openat64 = nullptr;
  OpenCheckFunction open_2 = nullptr;
  OpenCheckFunction open64_2 = nullptr;
  OpenAtCheckFunction openat_2 = nullptr;
  OpenAtCheckFunction openat64_2 = nullptr;
  FopenFunction fopen = nullptr;
  FopenFunction fopen64 = nullptr;
  FreopenFunction freopen = nullptr;
  FreopenFunction freopen64 = nullptr;
  ssize_t (*read)(int, void*, size_t) = nullptr;
  ssize_t (*read_chk)(int, void*, size_t, size_t) = nullptr;
  ssize_t (*readv)(int, const iovec*, int) = nullptr;
  ssize_t (*pread)(int, void*, size_t, off_t) = nullptr;
  ssize_t (*pread64)(int, void*, size_t, off64_t) = nullptr;
  ssize_t (*pread_chk)(int, void*, size_t, off_t, size_t) = nullptr;
  ssize_t (*pread64_chk)(int, void*, size_t, off64_t, size_t) = nullptr;
  int (*close)(int) = nullptr;
  int (*dup)(int) = nullptr;
  int (*dup2)(int, int) = nullptr;
  int (*dup3)(int, int, int) = nullptr;
  FcntlFunction fcntl = nullptr;
  FcntlFunction fcntl64 = nullptr;
  int (*fclose)(FILE*) = nullptr;
  FreadFunction fread = nullptr;
  FreadFunction fread_unlocked = nullptr;
  size_t (*fread_chk)(void*, size_t, size_t, size_t, FILE*) = nullptr;
  GetcFunction fgetc = nullptr;
  GetcFunction getc = nullptr;
  GetcFunction getc_unlocked = nullptr;
  char* (*fgets)(char*, int, FILE*) = nullptr;
  char* (*fgets_chk)(char*, size_t, int, FILE*) = nullptr;
  SpawnFunction posix_spawn = nullptr;
  SpawnFunction posix_spawnp = nullptr;
  int (*system)(const char*) = nullptr;
  FILE* (*popen)(const char*, const char*) = nullptr;
};

Next g_next;

// libstdc++ may arrive later with dlopen: looked up again while absent.
std::atomic<RandomDeviceFunction> g_next_getval{nullptr};
std::atomic<RandomDeviceFunction> g_next_getval_pretr1{nullptr};

// The system call itself, until the next `syscall` is known: the library's
// own code calls ::syscall, possibly before any constructor has run.
long raw_syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6) {
  long result;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  if (result < 0 && result > -4096) {
    errno = static_cast<int>(-result);
    return -1;
  }
  return result;
}

std::atomic<SyscallFunction> g_next_syscall{raw_syscall};

// Zero once the next definitions are resolved and the mode is decided with
// entropy= off: the gate of every source and every open.
std::atomic<int> g_source_gate{1};
// Tracked descriptors (streams), plus one until the next definitions are
// resolved: the gate of read, close, dup (and of stdio).
std::atomic<int> g_fd_gate{1};
std::atomic<int> g_file_gate{1};
std::atomic<bool> g_resolved{false};

template <typename Function>
void find(Function& function, const char* name) {
  function = reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name));
}

// Idempotent: two threads that race here store the same values.
void resolve_next() {
  if (MEMDET_LIKELY(g_resolved.load(std::memory_order_acquire))) {
    return;
  }
  Next& next = g_next;
  find(next.getrandom, "getrandom");
  find(next.getentropy, "getentropy");
  find(next.arc4random, "arc4random");
  find(next.arc4random_buf, "arc4random_buf");
  find(next.arc4random_uniform, "arc4random_uniform");
  find(next.open, "open");
  find(next.open64, "open64");
  find(next.openat, "openat");
  find(next.openat64, "openat64");
  find(next.open_2, "__open_2");
  find(next.open64_2, "__open64_2");
  find(next.openat_2, "__openat_2");
  find(next.openat64_2, "__openat64_2");
  find(next.fopen, "fopen");
  find(next.fopen64, "fopen64");
  find(next.freopen, "freopen");
  find(next.freopen64, "freopen64");
  find(next.read, "read");
  find(next.read_chk, "__read_chk");
  find(next.readv, "readv");
  find(next.pread, "pread");
  find(next.pread64, "pread64");
  find(next.pread_chk, "__pread_chk");
  find(next.pread64_chk, "__pread64_chk");
  find(next.close, "close");
  find(next.dup, "dup");
  find(next.dup2, "dup2");
  find(next.dup3, "dup3");
  find(next.fcntl, "fcntl");
  find(next.fcntl64, "fcntl64");
  find(next.fclose, "fclose");
  find(next.fread, "fread");
  find(next.fread_unlocked, "fread_unlocked");
  find(next.fread_chk, "__fread_chk");
  find(next.fgetc, "fgetc");
  find(next.getc, "getc");
  find(next.getc_unlocked, "getc_unlocked");
  find(next.fgets, "fgets");
  find(next.fgets_chk, "__fgets_chk");
  find(next.posix_spawn, "posix_spawn");
  find(next.posix_spawnp, "posix_spawnp");
  find(next.system, "system");
  find(next.popen, "popen");
  SyscallFunction next_syscall = nullptr;
  find(next_syscall, "syscall");
  if (next_syscall != nullptr) {
    g_next_syscall.store(next_syscall, std::memory_order_release);
  }
  if (!g_resolved.exchange(true, std::memory_order_acq_rel)) {
    g_fd_gate.fetch_sub(1, std::memory_order_acq_rel);
    g_file_gate.fetch_sub(1, std::memory_order_acq_rel);
  }
}

// Whether this call is served from the stream: resolves the next
// definitions and decides the mode first. A call made while the mode is
// being decided (from inside start()) passes through.
bool serving() {
  resolve_next();
  if (start() != Start::kReady) {
    return false;
  }
  bool on = is_active() && g_config.entropy;
  if (!on) {
    g_source_gate.store(0, std::memory_order_release);
  }
  return on;
}

// Resolved when the library is loaded, so that most processes never take
// a slow path at all.
__attribute__((constructor)) void resolve_at_load() { serving(); }

// ---------------------------------------------------------------------------
// The stream.

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
constexpr size_t kLoggedReads = 256;
constexpr size_t kCallerSize = 1024;
constexpr size_t kUuidText = 37;  // 36 characters and a newline

uint64_t g_lineage = 0;
std::atomic<uint64_t> g_reads{0};
std::atomic<uint64_t> g_bytes{0};
std::atomic<uint64_t> g_windowed{0};
std::atomic<uint64_t> g_forks{0};
std::atomic<uint64_t> g_execs{0};

__thread uint64_t t_reads __attribute__((tls_model("initial-exec"))) = 0;
__thread bool t_describing __attribute__((tls_model("initial-exec"))) = false;

struct ReadRecord {
  std::atomic<bool> ready;
  Source source;
  uint64_t bytes;
  char ordinal[kOrdinalSize];
  char caller[kCallerSize];
};
ReadRecord g_log[kLoggedReads];

// A forked or exec'd process's lineage: never 0, which marks the image
// memdet launched. The k-th fork and the k-th exec of one process get
// different lineages. An image the launched process exec'd keeps the
// launched bit; a forked child and everything it execs lose it.
enum class Descent : uint64_t { kFork = 0x632be59bd9b4e019ULL, kExec = 0x8cb92ba72f3d8dd7ULL };

uint64_t mix_lineage(uint64_t lineage, Descent descent, uint64_t count) {
  uint64_t mixed = mix64(lineage ^ mix64(count * kGolden + static_cast<uint64_t>(descent)));
  const bool launched = descent == Descent::kExec && launched_lineage(lineage);
  mixed = launched ? mixed | kLaunchedLineageBit : mixed & ~kLaunchedLineageBit;
  return mixed == 0 ? 1 : mixed;
}

uint64_t stream_key(uint64_t seed, uint64_t read_count) {
  uint64_t key = mix64(seed + kGolden);
  key = mix64(key ^ g_lineage);
  key = mix64(key ^ t_self.ordinal_hash);
  return mix64(key ^ (read_count * kGolden));
}

// One read's bytes: word i of the stream is mix64(key + i * golden).
struct Stream {
  uint64_t key;
  uint64_t words = 0;

  uint64_t word() { return mix64(key + (++words) * kGolden); }
  uint32_t word32() { return static_cast<uint32_t>(word() >> 32); }

  void fill(void* out, size_t size) {
    auto* bytes = static_cast<unsigned char*>(out);
    while (size > 0) {
      uint64_t value = word();
      size_t take = size < sizeof value ? size : sizeof value;
      std::memcpy(bytes, &value, take);
      bytes += take;
      size -= take;
    }
  }
};

struct Read {
  uint64_t ordinal;
  Stream stream;
};

Read begin_read() {
  uint64_t ordinal = g_reads.fetch_add(1, std::memory_order_relaxed) + 1;
  const Config& config = g_config;
  bool windowed = launched_lineage(g_lineage) && config.entropy_window_low != 0 &&
                  ordinal >= config.entropy_window_low && ordinal <= config.entropy_window_high;
  if (windowed) {
    g_windowed.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t seed = windowed ? config.entropy_window_seed : config.entropy_seed;
  return Read{ordinal, Stream{stream_key(seed, t_reads++)}};
}

void finish_read(const Read& read, Source source, uint64_t bytes, const void* caller) {
  g_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (read.ordinal > kLoggedReads) {
    return;
  }
  ReadRecord& record = g_log[read.ordinal - 1];
  record.source = source;
  record.bytes = bytes;
  std::memcpy(record.ordinal, t_self.ordinal, kOrdinalSize);
  if (t_describing) {
    // A read made by the caller description itself (the interpreter's
    // calls): its caller is not looked at again.
    std::memcpy(record.caller, "-", 2);
  } else {
    t_describing = true;
    describe_caller(caller, record.caller, sizeof record.caller, PythonFrames::kTakeLock);
    t_describing = false;
  }
  record.ready.store(true, std::memory_order_release);
}

void serve_bytes(Source source, void* buffer, size_t size, const void* caller) {
  Read read = begin_read();
  read.stream.fill(buffer, size);
  finish_read(read, source, size, caller);
}

uint32_t serve_word(Source source, const void* caller) {
  Read read = begin_read();
  uint32_t value = read.stream.word32();
  finish_read(read, source, sizeof value, caller);
  return value;
}

// A version-4 UUID (RFC 4122) as /proc/sys/kernel/random/uuid prints it.
void uuid_text(Stream& stream, char* out) {
  unsigned char bytes[16];
  stream.fill(bytes, sizeof bytes);
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  static const char kDigits[] = "0123456789abcdef";
  size_t at = 0;
  for (size_t i = 0; i < sizeof bytes; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out[at++] = '-';
    }
    out[at++] = kDigits[bytes[i] >> 4];
    out[at++] = kDigits[bytes[i] & 15];
  }
  out[at] = '\n';
}

// ---------------------------------------------------------------------------
// Tracked descriptors: the source in the low byte, a uuid file's offset in
// the high byte. Descriptors past the table are not tracked.

constexpr int kMaxFds = 65536;
std::atomic<uint16_t> g_fds[kMaxFds];

// The uuid file's identity, for the check at each read.
std::atomic<dev_t> g_uuid_device{0};
std::atomic<ino_t> g_uuid_inode{0};

bool equals(const char* a, const char* b) {
  for (; *a != '\0' && *a == *b; ++a, ++b) {
  }
  return *a == *b;
}

Source path_source(const char* path) {
  if (path == nullptr) {
    return Source::kNone;
  }
  if (equals(path, "/dev/urandom")) {
    return Source::kUrandom;
  }
  if (equals(path, "/dev/random")) {
    return Source::kRandom;
  }
  if (equals(path, "/proc/sys/kernel/random/uuid")) {
    return Source::kUuid;
  }
  return Source::kNone;
}

bool trackable(int fd) { return fd >= 0 && fd < kMaxFds; }

uint16_t fd_entry(int fd) {
  return trackable(fd) ? g_fds[fd].load(std::memory_order_acquire) : uint16_t{0};
}

Source entry_source(uint16_t entry) { return static_cast<Source>(entry & 0xff); }

void adjust_gate(std::atomic<int>& gate, bool was, bool is) {
  if (!was && is) {
    gate.fetch_add(1, std::memory_order_acq_rel);
  } else if (was && !is) {
    gate.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void set_fd(int fd, uint16_t entry) {
  if (!trackable(fd)) {
    return;
  }
  if (entry == 0 && g_fds[fd].load(std::memory_order_relaxed) == 0) {
    return;  // the common case: an untracked descriptor stays so
  }
  uint16_t old = g_fds[fd].exchange(entry, std::memory_order_acq_rel);
  adjust_gate(g_fd_gate, old != 0, entry != 0);
}

// After an open in active mode: the descriptor is tracked when the path is
// one of the random files, and forgotten otherwise (a number reused after
// a close the library did not see).
void note_open(int fd, int directory, const char* path) {
  if (fd < 0) {
    return;
  }
  Source source = Source::kNone;
  if (path != nullptr && (path[0] == '/' || directory == AT_FDCWD)) {
    source = path_source(path);
  }
  if (source == Source::kUuid) {
    struct stat status;
    if (::fstat(fd, &status) == 0) {
      g_uuid_device.store(status.st_dev, std::memory_order_relaxed);
      g_uuid_inode.store(status.st_ino, std::memory_order_relaxed);
    }
  }
  set_fd(fd, static_cast<uint16_t>(source));
}

// A tracked descriptor still names what it was opened on: a number can be
// reused behind the library's back (close_range, a raw close system call).
bool still_random(int fd, Source source) {
  struct stat status;
  if (::fstat(fd, &status) != 0) {
    return false;
  }
  if (source == Source::kUuid) {
    return status.st_dev == g_uuid_device.load(std::memory_order_relaxed) &&
           status.st_ino == g_uuid_inode.load(std::memory_order_relaxed);
  }
  // /dev/random and /dev/urandom: character devices 1:8 and 1:9.
  return S_ISCHR(status.st_mode) && major(status.st_rdev) == 1 &&
         (minor(status.st_rdev) == 8 || minor(status.st_rdev) == 9);
}

// The source to serve a read of `fd` from, or kNone to pass it through.
Source served_fd(int fd) {
  uint16_t entry = fd_entry(fd);
  if (entry == 0) {
    return Source::kNone;
  }
  Source source = entry_source(entry);
  if (!still_random(fd, source)) {
    set_fd(fd, 0);
    return Source::kNone;
  }
  return source;
}

// A read of a tracked descriptor into `vectors`. `position` is pread's
// offset, or -1 for the descriptor's own (only a uuid file has one: the
// kernel makes a fresh UUID at each read and returns it from the offset).
ssize_t serve_fd(int fd, Source source, const iovec* vectors, int count, off64_t position,
                 const void* caller) {
  Read read = begin_read();
  size_t total = 0;
  if (source != Source::kUuid) {
    for (int i = 0; i < count; ++i) {
      read.stream.fill(vectors[i].iov_base, vectors[i].iov_len);
      total += vectors[i].iov_len;
    }
    finish_read(read, source, total, caller);
    return static_cast<ssize_t>(total);
  }

  char line[kUuidText];
  uuid_text(read.stream, line);
  size_t offset = position >= 0 ? static_cast<size_t>(position) : fd_entry(fd) >> 8;
  for (int i = 0; i < count && offset < kUuidText; ++i) {
    size_t take = kUuidText - offset;
    take = take < vectors[i].iov_len ? take : vectors[i].iov_len;
    std::memcpy(vectors[i].iov_base, line + offset, take);
    offset += take;
    total += take;
  }
  if (position < 0) {
    set_fd(fd, static_cast<uint16_t>(
                   static_cast<uint16_t>(source) |
                   (static_cast<uint16_t>(offset < kUuidText ? offset : kUuidText) << 8)));
  }
  finish_read(read, source, total, caller);
  return static_cast<ssize_t>(total);
}

// dup and its kin: the copy reads like the original.
void note_copy(int from, int to) {
  if (to >= 0 && to != from) {
    set_fd(to, fd_entry(from));
  }
}

// ---------------------------------------------------------------------------
// Tracked FILE streams, served from the stream without the real stdio read
// (which would read the descriptor through glibc's internal read). A uuid
// stream holds one line, drawn at its first read, as a buffered stream
// would.

constexpr size_t kMaxFiles = 64;

struct TrackedFile {
  std::atomic<FILE*> file;
  Source source;
  bool drawn;
  uint8_t offset;
  char line[kUuidText];
};
TrackedFile g_files[kMaxFiles];

TrackedFile* find_file(FILE* file) {
  if (file == nullptr) {
    return nullptr;
  }
  for (TrackedFile& tracked : g_files) {
    if (tracked.file.load(std::memory_order_acquire) == file) {
      return &tracked;
    }
  }
  return nullptr;
}

void forget_file(FILE* file) {
  TrackedFile* tracked = find_file(file);
  if (tracked != nullptr) {
    tracked->file.store(nullptr, std::memory_order_release);
    g_file_gate.fetch_sub(1, std::memory_order_acq_rel);
  }
}

// Streams past the table's capacity are not served (their descriptor is
// still tracked for read(2)).
void track_file(FILE* file, Source source) {
  for (TrackedFile& tracked : g_files) {
    FILE* expected = nullptr;
    if (tracked.file.load(std::memory_order_relaxed) == nullptr &&
        tracked.file.compare_exchange_strong(expected, file, std::memory_order_acq_rel)) {
      tracked.source = source;
      tracked.drawn = false;
      tracked.offset = 0;
      g_file_gate.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
  }
}

void note_fopen(FILE* file, const char* path) {
  if (file == nullptr) {
    return;
  }
  forget_file(file);
  int fd = ::fileno(file);
  note_open(fd, AT_FDCWD, path);
  Source source = path_source(path);
  if (source != Source::kNone) {
    track_file(file, source);
  }
}

void mark_end(FILE* file) { file->_flags |= _IO_EOF_SEEN; }

// Up to `size` bytes of a tracked stream's data into `out`; for fgets,
// `stop_at_newline` ends after the first newline. Returns the bytes given.
size_t serve_file(TrackedFile& tracked, FILE* file, char* out, size_t size, bool stop_at_newline,
                  const void* caller) {
  Read read = begin_read();
  size_t given = 0;
  if (tracked.source != Source::kUuid) {
    read.stream.fill(out, size);
    given = size;
    if (stop_at_newline) {
      for (size_t i = 0; i < size; ++i) {
        if (out[i] == '\n') {
          given = i + 1;
          break;
        }
      }
    }
  } else {
    if (!tracked.drawn) {
      uuid_text(read.stream, tracked.line);
      tracked.drawn = true;
    }
    while (given < size && tracked.offset < kUuidText) {
      char c = tracked.line[tracked.offset++];
      out[given++] = c;
      if (stop_at_newline && c == '\n') {
        break;
      }
    }
    if (given < size && !stop_at_newline) {
      mark_end(file);
    }
  }
  finish_read(read, tracked.source, given, caller);
  return given;
}

size_t serve_fread(TrackedFile& tracked, void* buffer, size_t size, size_t count, FILE* file,
                   const void* caller) {
  size_t total = 0;
  if (size == 0 || count == 0 || __builtin_mul_overflow(size, count, &total)) {
    return 0;
  }
  size_t given = serve_file(tracked, file, static_cast<char*>(buffer), total, false, caller);
  return given / size;
}

int serve_getc(TrackedFile& tracked, FILE* file, const void* caller) {
  unsigned char c = 0;
  if (serve_file(tracked, file, reinterpret_cast<char*>(&c), 1, false, caller) == 0) {
    mark_end(file);
    return EOF;
  }
  return c;
}

char* serve_fgets(TrackedFile& tracked, char* buffer, int size, FILE* file, const void* caller) {
  if (size <= 0) {
    return nullptr;
  }
  size_t given = serve_file(tracked, file, buffer, static_cast<size_t>(size - 1), true, caller);
  if (given == 0 && size > 1) {
    mark_end(file);
    return nullptr;
  }
  buffer[given] = '\0';
  return buffer;
}

// ---------------------------------------------------------------------------
// Fork and exec.

void before_fork() { g_forks.fetch_add(1, std::memory_order_relaxed); }

void after_fork_in_child() {
  g_lineage = mix_lineage(g_lineage, Descent::kFork, g_forks.load(std::memory_order_relaxed));
  g_forks.store(0, std::memory_order_relaxed);
  g_execs.store(0, std::memory_order_relaxed);
  uint64_t logged = g_reads.load(std::memory_order_relaxed);
  for (size_t i = 0; i < logged && i < kLoggedReads; ++i) {
    g_log[i].ready.store(false, std::memory_order_relaxed);
  }
  g_reads.store(0, std::memory_order_relaxed);
  g_bytes.store(0, std::memory_order_relaxed);
  g_windowed.store(0, std::memory_order_relaxed);
  t_reads = 0;
}

// The digits of the `lineage=` field in MEMDET_PRELOAD's value `text`.
bool find_lineage(char* text, char*& digits, size_t& width) {
  static const char kKey[] = "lineage=";
  char* field = text;
  for (;;) {
    while (*field == ' ') {
      ++field;
    }
    if (prim::starts_with(field, kKey)) {
      digits = field + sizeof kKey - 1;
      width = 0;
      while (width < 16 && ((digits[width] >= '0' && digits[width] <= '9') ||
                            (digits[width] >= 'a' && digits[width] <= 'f') ||
                            (digits[width] >= 'A' && digits[width] <= 'F'))) {
        ++width;
      }
      return width > 0;
    }
    while (*field != '\0' && *field != ';') {
      ++field;
    }
    if (*field == '\0') {
      return false;
    }
    ++field;
  }
}

}  // namespace

namespace {

// Descriptors the image inherited open on a random file (`cmd <
// /dev/urandom`, a parent that opened it before exec): found by their
// /proc/self/fd links, read through a fixed buffer.
void track_inherited() {
  int directory = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory < 0) {
    return;
  }
  alignas(8) char entries[4096];
  for (;;) {
    long got = ::syscall(SYS_getdents64, directory, entries, sizeof entries);
    if (got <= 0) {
      break;
    }
    for (long at = 0; at < got;) {
      auto* entry = reinterpret_cast<struct dirent64*>(entries + at);
      at += entry->d_reclen;
      int fd = 0;
      const char* digit = entry->d_name;
      for (; *digit >= '0' && *digit <= '9' && fd < kMaxFds; ++digit) {
        fd = fd * 10 + (*digit - '0');
      }
      if (*digit != '\0' || digit == entry->d_name || fd == directory || !trackable(fd)) {
        continue;
      }
      char link[32] = "/proc/self/fd/";
      size_t used = prim::length(link);
      used += prim::decimal(static_cast<uint64_t>(fd), link + used);
      link[used] = '\0';
      char target[64];
      ssize_t size = ::readlink(link, target, sizeof target - 1);
      if (size > 0) {
        target[size] = '\0';
        note_open(fd, AT_FDCWD, target);
      }
    }
  }
  ::close(directory);
}

}  // namespace

void start_entropy() {
  g_lineage = g_config.lineage;
  ::pthread_atfork(before_fork, nullptr, after_fork_in_child);
  track_inherited();
}

void write_entropy_report(prim::Writer& out) {
  if (!g_config.entropy) {
    return;
  }
  out.text("entropy").tab().hex(g_config.entropy_seed).end();
  out.text("lineage").tab().hex(g_lineage).end();
  uint64_t reads = g_reads.load(std::memory_order_acquire);
  out.text("entropy_reads").tab().number(reads).end();
  out.text("entropy_bytes").tab().number(g_bytes.load(std::memory_order_relaxed)).end();
  for (size_t i = 0; i < reads && i < kLoggedReads; ++i) {
    const ReadRecord& record = g_log[i];
    if (!record.ready.load(std::memory_order_acquire)) {
      continue;  // still being written by its thread
    }
    out.text("entropy_read").tab().number(i + 1).tab().text(source_name(record.source));
    out.tab().number(record.bytes).tab().text(record.ordinal).tab().text(record.caller).end();
  }
  out.text("entropy_windowed").tab().number(g_windowed.load(std::memory_order_relaxed)).end();
}

ExecEnvironment::ExecEnvironment(char* const* envp, bool spawned) : envp_(envp) {
  if (envp == nullptr || g_source_gate.load(std::memory_order_acquire) == 0 || !serving()) {
    return;
  }
  static const char kName[] = "MEMDET_PRELOAD=";
  size_t count = 0;
  size_t found = SIZE_MAX;
  for (; envp[count] != nullptr; ++count) {
    if (found == SIZE_MAX && prim::starts_with(envp[count], kName)) {
      found = count;
    }
  }
  if (found == SIZE_MAX) {
    return;
  }
  size_t length = prim::length(envp[found]);
  if (length + 1 > sizeof entry_) {
    return;
  }
  std::memcpy(entry_, envp[found], length + 1);
  char* digits = nullptr;
  size_t width = 0;
  if (!find_lineage(entry_ + sizeof kName - 1, digits, width)) {
    return;
  }

  char** table = entries_;
  if (count + 1 > kInlineEntries) {
    size_t size = (count + 1) * sizeof(char*);
    void* block = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) {
      return;
    }
    mapped_ = block;
    mapped_size_ = size;
    table = static_cast<char**>(block);
  }

  // The width is kept: the environment's size must not change.
  uint64_t lineage = spawned ? mix_lineage(g_lineage, Descent::kFork,
                                           g_forks.fetch_add(1, std::memory_order_relaxed) + 1)
                             : mix_lineage(g_lineage, Descent::kExec,
                                           g_execs.fetch_add(1, std::memory_order_relaxed) + 1);
  for (size_t i = width; i > 0; --i) {
    digits[i - 1] = "0123456789abcdef"[lineage & 15];
    lineage >>= 4;
  }
  for (size_t i = 0; i < count; ++i) {
    table[i] = envp[i];
  }
  table[found] = entry_;
  table[count] = nullptr;
  envp_ = table;
}

ExecEnvironment::~ExecEnvironment() {
  if (mapped_ != nullptr) {
    ::munmap(mapped_, mapped_size_);
  }
}

}  // namespace memdet::preload

using memdet::preload::g_file_gate;
using memdet::preload::g_next;
using memdet::preload::g_next_getval;
using memdet::preload::g_next_getval_pretr1;
using memdet::preload::g_next_syscall;
using memdet::preload::g_source_gate;
using memdet::preload::Next;
using memdet::preload::OpenAtFunction;
using memdet::preload::OpenFunction;
using memdet::preload::RandomDeviceFunction;
using memdet::preload::Source;
using memdet::preload::TrackedFile;

namespace {

namespace entropy = memdet::preload;

inline bool sources_passive() { return g_source_gate.load(std::memory_order_acquire) == 0; }
inline bool fds_passive() {
  return memdet::preload::g_fd_gate.load(std::memory_order_acquire) == 0;
}
inline bool files_passive() { return g_file_gate.load(std::memory_order_acquire) == 0; }

bool needs_mode(int flags) { return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE; }

__attribute__((noinline)) ssize_t getrandom_slow(void* buffer, size_t size, unsigned flags,
                                                 const void* caller) {
  // Flags the kernel does not know fail as they would without the library.
  constexpr unsigned kKnownFlags = GRND_NONBLOCK | GRND_RANDOM | 0x0004 /* GRND_INSECURE */;
  if (!entropy::serving() || buffer == nullptr || (flags & ~kKnownFlags) != 0) {
    return g_next.getrandom(buffer, size, flags);
  }
  entropy::serve_bytes(Source::kGetrandom, buffer, size, caller);
  return static_cast<ssize_t>(size);
}

__attribute__((noinline)) int open_slow(OpenFunction next, const char* path, int flags,
                                        mode_t mode) {
  if (!entropy::serving()) {
    return next(path, flags, mode);
  }
  int fd = next(path, flags, mode);
  entropy::note_open(fd, AT_FDCWD, path);
  return fd;
}

__attribute__((noinline)) int openat_slow(OpenAtFunction next, int directory, const char* path,
                                          int flags, mode_t mode) {
  if (!entropy::serving()) {
    return next(directory, path, flags, mode);
  }
  int fd = next(directory, path, flags, mode);
  entropy::note_open(fd, directory, path);
  return fd;
}

__attribute__((noinline)) FILE* fopen_slow(entropy::FopenFunction next, const char* path,
                                           const char* mode) {
  if (!entropy::serving()) {
    return next(path, mode);
  }
  FILE* file = next(path, mode);
  entropy::note_fopen(file, path);
  return file;
}

__attribute__((noinline)) FILE* freopen_slow(entropy::FreopenFunction next, const char* path,
                                             const char* mode, FILE* stream) {
  if (!entropy::serving()) {
    return next(path, mode, stream);
  }
  // A null path reopens the same file in another mode.
  TrackedFile* old = entropy::find_file(stream);
  Source kept = old != nullptr ? old->source : Source::kNone;
  entropy::forget_file(stream);
  FILE* file = next(path, mode, stream);
  if (file != nullptr && path == nullptr && kept != Source::kNone) {
    entropy::track_file(file, kept);
  } else {
    entropy::note_fopen(file, path);
  }
  return file;
}

// A read of a descriptor while any is tracked: served when it is tracked
// and the call is well-formed, else passed on by `pass`. Out of line, so
// that the passive path of each hook is only its gate test.
template <typename Pass>
__attribute__((noinline)) ssize_t readv_slow(int fd, const iovec* vectors, int count,
                                             off64_t position, bool well_formed, const void* caller,
                                             Pass pass) {
  entropy::resolve_next();
  Source source = well_formed ? entropy::served_fd(fd) : Source::kNone;
  if (source == Source::kNone) {
    return pass();
  }
  return entropy::serve_fd(fd, source, vectors, count, position, caller);
}

template <typename Pass>
ssize_t read_slow(int fd, void* buffer, size_t size, off64_t position, bool well_formed,
                  const void* caller, Pass pass) {
  iovec vector{buffer, size};
  return readv_slow(fd, &vector, 1, position, well_formed, caller, pass);
}

// A stdio read while any stream is tracked: served by `serve` when `file`
// is tracked, else passed on by `pass`.
template <typename Serve, typename Pass>
__attribute__((noinline)) auto file_slow(FILE* file, Serve serve, Pass pass) {
  entropy::resolve_next();
  TrackedFile* tracked = entropy::find_file(file);
  return tracked != nullptr ? serve(*tracked) : pass();
}

__attribute__((noinline)) int fcntl_slow(entropy::FcntlFunction next, int fd, int command,
                                         void* argument) {
  entropy::resolve_next();
  int result = next(fd, command, argument);
  if (command == F_DUPFD || command == F_DUPFD_CLOEXEC) {
    entropy::note_copy(fd, result);
  }
  return result;
}

RandomDeviceFunction next_random_device(std::atomic<RandomDeviceFunction>& cache,
                                        const char* name) {
  RandomDeviceFunction next = cache.load(std::memory_order_acquire);
  if (next == nullptr) {
    next = reinterpret_cast<RandomDeviceFunction>(::dlsym(RTLD_NEXT, name));
    cache.store(next, std::memory_order_release);
  }
  return next;
}

unsigned random_device(std::atomic<RandomDeviceFunction>& cache, const char* name, void* self,
                       const void* caller) {
  if (!sources_passive() && entropy::serving()) {
    return entropy::serve_word(Source::kRandomDevice, caller);
  }
  RandomDeviceFunction next = next_random_device(cache, name);
  return next != nullptr ? next(self) : 0;
}

}  // namespace

extern "C" {

MEMDET_EXPORT ssize_t getrandom(void* buffer, size_t size, unsigned flags) {
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.getrandom(buffer, size, flags);
  }
  return getrandom_slow(buffer, size, flags, __builtin_return_address(0));
}

MEMDET_EXPORT int getentropy(void* buffer, size_t size) {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    return g_next.getentropy(buffer, size);
  }
  if (size > 256) {
    errno = EIO;  // as glibc: at most 256 bytes a call
    return -1;
  }
  entropy::serve_bytes(Source::kGetentropy, buffer, size, __builtin_return_address(0));
  return 0;
}

MEMDET_EXPORT uint32_t arc4random() noexcept {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    return g_next.arc4random();
  }
  return entropy::serve_word(Source::kArc4random, __builtin_return_address(0));
}

MEMDET_EXPORT void arc4random_buf(void* buffer, size_t size) noexcept {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    g_next.arc4random_buf(buffer, size);
    return;
  }
  entropy::serve_bytes(Source::kArc4random, buffer, size, __builtin_return_address(0));
}

MEMDET_EXPORT uint32_t arc4random_uniform(uint32_t upper) noexcept {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    return g_next.arc4random_uniform(upper);
  }
  if (upper <= 1) {
    return 0;  // as glibc: no randomness needed, none read
  }
  // Rejection below 2^32 mod upper keeps the result uniform; every draw
  // belongs to this one read.
  entropy::Read read = entropy::begin_read();
  uint32_t floor = (0U - upper) % upper;
  uint32_t value = read.stream.word32();
  while (value < floor) {
    value = read.stream.word32();
  }
  entropy::finish_read(read, Source::kArc4random, sizeof value, __builtin_return_address(0));
  return value % upper;
}

MEMDET_EXPORT long syscall(long number, ...) noexcept {
  va_list arguments;
  va_start(arguments, number);
  long a1 = va_arg(arguments, long);
  long a2 = va_arg(arguments, long);
  long a3 = va_arg(arguments, long);
  long a4 = va_arg(arguments, long);
  long a5 = va_arg(arguments, long);
  long a6 = va_arg(arguments, long);
  va_end(arguments);
  if (MEMDET_LIKELY(number != SYS_getrandom) || sources_passive() || !entropy::serving() ||
      a1 == 0) {
    return g_next_syscall.load(std::memory_order_acquire)(number, a1, a2, a3, a4, a5, a6);
  }
  auto size = static_cast<size_t>(a2);
  entropy::serve_bytes(Source::kSyscall, reinterpret_cast<void*>(a1), size,
                       __builtin_return_address(0));
  return static_cast<long>(size);
}

MEMDET_EXPORT int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list arguments;
    va_start(arguments, flags);
    mode = static_cast<mode_t>(va_arg(arguments, int));
    va_end(arguments);
  }
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.open(path, flags, mode);
  }
  entropy::resolve_next();
  return open_slow(g_next.open, path, flags, mode);
}

MEMDET_EXPORT int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list arguments;
    va_start(arguments, flags);
    mode = static_cast<mode_t>(va_arg(arguments, int));
    va_end(arguments);
  }
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.open64(path, flags, mode);
  }
  entropy::resolve_next();
  return open_slow(g_next.open64, path, flags, mode);
}

MEMDET_EXPORT int openat(int directory, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list arguments;
    va_start(arguments, flags);
    mode = static_cast<mode_t>(va_arg(arguments, int));
    va_end(arguments);
  }
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.openat(directory, path, flags, mode);
  }
  entropy::resolve_next();
  return openat_slow(g_next.openat, directory, path, flags, mode);
}

MEMDET_EXPORT int openat64(int directory, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (needs_mode(flags)) {
    va_list arguments;
    va_start(arguments, flags);
    mode = static_cast<mode_t>(va_arg(arguments, int));
    va_end(arguments);
  }
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.openat64(directory, path, flags, mode);
  }
  entropy::resolve_next();
  return openat_slow(g_next.openat64, directory, path, flags, mode);
}

MEMDET_EXPORT int __open_2(const char* path, int flags) {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    return g_next.open_2(path, flags);
  }
  int fd = g_next.open_2(path, flags);
  entropy::note_open(fd, AT_FDCWD, path);
  return fd;
}

MEMDET_EXPORT int __open64_2(const char* path, int flags) {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    return g_next.open64_2(path, flags);
  }
  int fd = g_next.open64_2(path, flags);
  entropy::note_open(fd, AT_FDCWD, path);
  return fd;
}

MEMDET_EXPORT int __openat_2(int directory, const char* path, int flags) {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    return g_next.openat_2(directory, path, flags);
  }
  int fd = g_next.openat_2(directory, path, flags);
  entropy::note_open(fd, directory, path);
  return fd;
}

MEMDET_EXPORT int __openat64_2(int directory, const char* path, int flags) {
  if (MEMDET_LIKELY(sources_passive()) || !entropy::serving()) {
    return g_next.openat64_2(directory, path, flags);
  }
  int fd = g_next.openat64_2(directory, path, flags);
  entropy::note_open(fd, directory, path);
  return fd;
}

MEMDET_EXPORT FILE* fopen(const char* path, const char* mode) {
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.fopen(path, mode);
  }
  entropy::resolve_next();
  return fopen_slow(g_next.fopen, path, mode);
}

MEMDET_EXPORT FILE* fopen64(const char* path, const char* mode) {
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.fopen64(path, mode);
  }
  entropy::resolve_next();
  return fopen_slow(g_next.fopen64, path, mode);
}

MEMDET_EXPORT FILE* freopen(const char* path, const char* mode, FILE* stream) {
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.freopen(path, mode, stream);
  }
  entropy::resolve_next();
  return freopen_slow(g_next.freopen, path, mode, stream);
}

MEMDET_EXPORT FILE* freopen64(const char* path, const char* mode, FILE* stream) {
  if (MEMDET_LIKELY(sources_passive())) {
    return g_next.freopen64(path, mode, stream);
  }
  entropy::resolve_next();
  return freopen_slow(g_next.freopen64, path, mode, stream);
}

MEMDET_EXPORT ssize_t read(int fd, void* buffer, size_t size) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.read(fd, buffer, size);
  }
  return read_slow(fd, buffer, size, -1, true, __builtin_return_address(0),
                   [=] { return g_next.read(fd, buffer, size); });
}

// The fortified and the odd calls (a size past the buffer, a negative
// count or offset) go to the next definition, which reports them.
MEMDET_EXPORT ssize_t __read_chk(int fd, void* buffer, size_t size, size_t buffer_size) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.read_chk(fd, buffer, size, buffer_size);
  }
  return read_slow(fd, buffer, size, -1, size <= buffer_size, __builtin_return_address(0),
                   [=] { return g_next.read_chk(fd, buffer, size, buffer_size); });
}

MEMDET_EXPORT ssize_t readv(int fd, const iovec* vectors, int count) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.readv(fd, vectors, count);
  }
  return readv_slow(fd, vectors, count, -1, count >= 0, __builtin_return_address(0),
                    [=] { return g_next.readv(fd, vectors, count); });
}

MEMDET_EXPORT ssize_t pread(int fd, void* buffer, size_t size, off_t offset) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.pread(fd, buffer, size, offset);
  }
  return read_slow(fd, buffer, size, offset, offset >= 0, __builtin_return_address(0),
                   [=] { return g_next.pread(fd, buffer, size, offset); });
}

MEMDET_EXPORT ssize_t pread64(int fd, void* buffer, size_t size, off64_t offset) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.pread64(fd, buffer, size, offset);
  }
  return read_slow(fd, buffer, size, offset, offset >= 0, __builtin_return_address(0),
                   [=] { return g_next.pread64(fd, buffer, size, offset); });
}

MEMDET_EXPORT ssize_t __pread_chk(int fd, void* buffer, size_t size, off_t offset,
                                  size_t buffer_size) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.pread_chk(fd, buffer, size, offset, buffer_size);
  }
  return read_slow(fd, buffer, size, offset, offset >= 0 && size <= buffer_size,
                   __builtin_return_address(0),
                   [=] { return g_next.pread_chk(fd, buffer, size, offset, buffer_size); });
}

MEMDET_EXPORT ssize_t __pread64_chk(int fd, void* buffer, size_t size, off64_t offset,
                                    size_t buffer_size) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.pread64_chk(fd, buffer, size, offset, buffer_size);
  }
  return read_slow(fd, buffer, size, offset, offset >= 0 && size <= buffer_size,
                   __builtin_return_address(0),
                   [=] { return g_next.pread64_chk(fd, buffer, size, offset, buffer_size); });
}

MEMDET_EXPORT int close(int fd) {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.close(fd);
  }
  entropy::resolve_next();
  // Forgotten first: once closed, the number may be reused at once.
  entropy::set_fd(fd, 0);
  return g_next.close(fd);
}

MEMDET_EXPORT int dup(int fd) noexcept {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.dup(fd);
  }
  entropy::resolve_next();
  int copy = g_next.dup(fd);
  entropy::note_copy(fd, copy);
  return copy;
}

MEMDET_EXPORT int dup2(int fd, int target) noexcept {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.dup2(fd, target);
  }
  entropy::resolve_next();
  int copy = g_next.dup2(fd, target);
  entropy::note_copy(fd, copy);
  return copy;
}

MEMDET_EXPORT int dup3(int fd, int target, int flags) noexcept {
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.dup3(fd, target, flags);
  }
  entropy::resolve_next();
  int copy = g_next.dup3(fd, target, flags);
  entropy::note_copy(fd, copy);
  return copy;
}

// The argument is passed on as one word, as glibc's own fcntl reads it.
MEMDET_EXPORT int fcntl(int fd, int command, ...) {
  va_list arguments;
  va_start(arguments, command);
  void* argument = va_arg(arguments, void*);
  va_end(arguments);
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.fcntl(fd, command, argument);
  }
  return fcntl_slow(g_next.fcntl, fd, command, argument);
}

MEMDET_EXPORT int fcntl64(int fd, int command, ...) {
  va_list arguments;
  va_start(arguments, command);
  void* argument = va_arg(arguments, void*);
  va_end(arguments);
  if (MEMDET_LIKELY(fds_passive())) {
    return g_next.fcntl64(fd, command, argument);
  }
  return fcntl_slow(g_next.fcntl64, fd, command, argument);
}

MEMDET_EXPORT int fclose(FILE* file) {
  if (MEMDET_LIKELY(files_passive() && fds_passive())) {
    return g_next.fclose(file);
  }
  entropy::resolve_next();
  entropy::forget_file(file);
  if (file != nullptr) {
    entropy::set_fd(::fileno(file), 0);
  }
  return g_next.fclose(file);
}

MEMDET_EXPORT size_t fread(void* buffer, size_t size, size_t count, FILE* file) {
  if (MEMDET_LIKELY(files_passive())) {
    return g_next.fread(buffer, size, count, file);
  }
  const void* caller = __builtin_return_address(0);
  return file_slow(
      file,
      [=](TrackedFile& tracked) {
        return entropy::serve_fread(tracked, buffer, size, count, file, caller);
      },
      [=] { return g_next.fread(buffer, size, count, file); });
}

MEMDET_EXPORT size_t fread_unlocked(void* buffer, size_t size, size_t count, FILE* file) {
  if (MEMDET_LIKELY(files_passive())) {
    return g_next.fread_unlocked(buffer, size, count, file);
  }
  const void* caller = __builtin_return_address(0);
  return file_slow(
      file,
      [=](TrackedFile& tracked) {
        return entropy::serve_fread(tracked, buffer, size, count, file, caller);
      },
      [=] { return g_next.fread_unlocked(buffer, size, count, file); });
}

// An overflowing request goes to the next definition, which reports it.
MEMDET_EXPORT size_t __fread_chk(void* buffer, size_t buffer_size, size_t size, size_t count,
                                 FILE* file) {
  if (MEMDET_LIKELY(files_passive())) {
    return g_next.fread_chk(buffer, buffer_size, size, count, file);
  }
  const void* caller = __builtin_return_address(0);
  return file_slow(
      file,
      [=](TrackedFile& tracked) {
        size_t total = 0;
        if (__builtin_mul_overflow(size, count, &total) || total > buffer_size) {
          return g_next.fread_chk(buffer, buffer_size, size, count, file);
        }
        return entropy::serve_fread(tracked, buffer, size, count, file, caller);
      },
      [=] { return g_next.fread_chk(buffer, buffer_size, size, count, file); });
}

// fgetc, getc and getc_unlocked: one character, from the stream when the
// FILE is tracked.
static inline int character_hook(int (*next)(FILE*), FILE* file, const void* caller) {
  if (MEMDET_LIKELY(files_passive())) {
    return next(file);
  }
  return file_slow(
      file, [=](TrackedFile& tracked) { return entropy::serve_getc(tracked, file, caller); },
      [=] { return next(file); });
}

MEMDET_EXPORT int fgetc(FILE* file) {
  return character_hook(g_next.fgetc, file, __builtin_return_address(0));
}

MEMDET_EXPORT int getc(FILE* file) {
  return character_hook(g_next.getc, file, __builtin_return_address(0));
}

MEMDET_EXPORT int getc_unlocked(FILE* file) {
  return character_hook(g_next.getc_unlocked, file, __builtin_return_address(0));
}

MEMDET_EXPORT char* fgets(char* buffer, int size, FILE* file) {
  if (MEMDET_LIKELY(files_passive())) {
    return g_next.fgets(buffer, size, file);
  }
  const void* caller = __builtin_return_address(0);
  return file_slow(
      file,
      [=](TrackedFile& tracked) {
        return entropy::serve_fgets(tracked, buffer, size, file, caller);
      },
      [=] { return g_next.fgets(buffer, size, file); });
}

MEMDET_EXPORT char* __fgets_chk(char* buffer, size_t buffer_size, int size, FILE* file) {
  if (MEMDET_LIKELY(files_passive())) {
    return g_next.fgets_chk(buffer, buffer_size, size, file);
  }
  const void* caller = __builtin_return_address(0);
  return file_slow(
      file,
      [=](TrackedFile& tracked) {
        if (size < 0 || static_cast<size_t>(size) > buffer_size) {
          return g_next.fgets_chk(buffer, buffer_size, size, file);
        }
        return entropy::serve_fgets(tracked, buffer, size, file, caller);
      },
      [=] { return g_next.fgets_chk(buffer, buffer_size, size, file); });
}

// glibc's posix_spawn runs its internal execve in the child, past the exec
// hooks: the environment is rewritten here, as an exec would.
MEMDET_EXPORT int posix_spawn(pid_t* pid, const char* path,
                              const posix_spawn_file_actions_t* actions,
                              const posix_spawnattr_t* attributes, char* const argv[],
                              char* const envp[]) {
  entropy::resolve_next();
  entropy::ExecEnvironment environment(envp, true);
  return g_next.posix_spawn(pid, path, actions, attributes, argv, environment.get());
}

MEMDET_EXPORT int posix_spawnp(pid_t* pid, const char* file,
                               const posix_spawn_file_actions_t* actions,
                               const posix_spawnattr_t* attributes, char* const argv[],
                               char* const envp[]) {
  entropy::resolve_next();
  entropy::ExecEnvironment environment(envp, true);
  return g_next.posix_spawnp(pid, file, actions, attributes, argv, environment.get());
}

}  // extern "C"

// system and popen start their shell with glibc's internal posix_spawn and
// the process's own environment: for the call, environ is a copy with the
// child's lineage, and put back after.
namespace {

template <typename Call>
auto with_child_lineage(Call call) {
  using memdet::preload::ExecEnvironment;
  ExecEnvironment child(environ, true);
  char** saved = environ;
  if (child.get() != environ) {
    environ = const_cast<char**>(child.get());
  }
  auto result = call();
  environ = saved;
  return result;
}

}  // namespace

extern "C" {

MEMDET_EXPORT int system(const char* command) {
  entropy::resolve_next();
  return with_child_lineage([&] { return g_next.system(command); });
}

MEMDET_EXPORT FILE* popen(const char* command, const char* mode) {
  entropy::resolve_next();
  return with_child_lineage([&] { return g_next.popen(command, mode); });
}

// std::random_device::_M_getval() and _M_getval_pretr1(): member functions
// of libstdc++, defined here by their mangled names.
MEMDET_EXPORT unsigned _ZNSt13random_device9_M_getvalEv(void* self) {
  return random_device(g_next_getval, "_ZNSt13random_device9_M_getvalEv", self,
                       __builtin_return_address(0));
}

MEMDET_EXPORT unsigned _ZNSt13random_device16_M_getval_pretr1Ev(void* self) {
  return random_device(g_next_getval_pretr1, "_ZNSt13random_device16_M_getval_pretr1Ev", self,
                       __builtin_return_address(0));
}

}  // extern "C"
