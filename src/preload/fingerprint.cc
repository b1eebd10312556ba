// The fingerprint's state lives in three places: the running digests in the
// shared live file (so SIGKILL leaves them), the kept entries and
// checkpoints in fixed buffers of this library, and what only the exit can
// see (/proc/self/maps, numa_maps, smaps_rollup, pagemap), read while the
// record is written. Everything here follows the rules at the top of
// hooks.cc; the record writer is also called from a signal handler, so it
// makes system calls only, into fixed buffers.
#include "preload/fingerprint.h"

#include <cpuid.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "preload/prim.h"
#include "preload/report.h"

namespace memdet::preload {

bool g_fingerprinting = false;
LiveFile* g_live = nullptr;
size_t g_rare_size = SIZE_MAX;
uintptr_t g_tracked_low = 0;
uintptr_t g_tracked_span = 0;

namespace {

using prim::Writer;

// Blocks this large or more are candidates for the physical sample.
constexpr size_t kTrackedMin = 256 * 1024;
constexpr size_t kTracked = 8;
// Pages read from pagemap per block: 256 MiB of 4 KiB pages.
constexpr size_t kMaxSampledPages = 65536;
constexpr size_t kLargeEntries = 4096;
constexpr unsigned kMaxColours = 4096;
constexpr unsigned kDefaultColours = 64;
constexpr size_t kPage = 4096;
constexpr size_t kPathSize = kMaxValue + 64;

struct Kept {
  uint64_t address;
  uint64_t word;  // size_word: size << 4 | kind
  uint64_t caller;
};

struct LargeKept {
  Kept entry;
  uint64_t index;  // in its thread's sequence
  uint32_t slot;
};

Kept g_first[kFirstThreads][kFirstEntries];
uint64_t g_checkpoints[kLiveThreads][kCheckpoints];
LargeKept g_large[kLargeEntries];
std::atomic<size_t> g_large_used{0};
LiveThread g_sink;  // threads beyond kLiveThreads digest here, unread

// The largest live blocks, for the physical sample. Changed under a flag
// that is only ever tried, never waited on for long.
struct Tracked {
  uintptr_t address;
  size_t size;
};
Tracked g_tracked[kTracked];
std::atomic<bool> g_tracked_busy{false};

// The physical sample, summed over every block sampled.
struct Physical {
  std::atomic<uint64_t> pages{0};   // present pages read
  std::atomic<uint64_t> hidden{0};  // present, but the frame number reads 0
  std::atomic<uint64_t> blocks{0};  // blocks sampled
  std::atomic<uint64_t> digest{0};  // sum over blocks of each block's frame digest
  std::atomic<bool> unreadable{false};
  std::atomic<uint64_t> colours[kMaxColours];
};
Physical g_physical;
unsigned g_colours = kDefaultColours;

char g_stem_path[kPathSize];  // <dir>/fingerprint.<stem>, without the suffix
size_t g_stem_size = 0;
std::atomic<bool> g_writing{false};

// A fixed-capacity path being built.
class Path {
 public:
  Path& add(const char* text) { return add(text, prim::length(text)); }
  Path& add(const char* text, size_t size) {
    for (size_t i = 0; i < size && used_ + 1 < sizeof text_; ++i) {
      text_[used_++] = text[i];
    }
    text_[used_] = '\0';
    return *this;
  }
  Path& number(uint64_t value) {
    char digits[prim::kDecimalDigits];
    return add(digits, prim::decimal(value, digits));
  }
  const char* c_str() const { return text_; }
  size_t size() const { return used_; }

 private:
  char text_[kPathSize] = {};
  size_t used_ = 0;
};

// <dir>/fingerprint.<pid>.live, or <pid>-<image> when an earlier image of
// this pid (before an exec) left one: O_EXCL picks the first free name.
bool map_live_file() {
  auto pid = static_cast<uint64_t>(::getpid());
  for (uint32_t image = 0; image < 64; ++image) {
    Path stem;
    stem.add(g_config.fingerprint_dir).add("/fingerprint.").number(pid);
    if (image > 0) {
      stem.add("-").number(image);
    }
    Path live;
    live.add(stem.c_str()).add(".live");
    int fd = ::open(live.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
      continue;
    }
    if (fd < 0) {
      return false;
    }
    void* map = MAP_FAILED;
    if (::ftruncate(fd, sizeof(LiveFile)) == 0) {
      map = ::mmap(nullptr, sizeof(LiveFile), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    ::close(fd);
    if (map == MAP_FAILED) {
      return false;
    }
    g_live = static_cast<LiveFile*>(map);
    LiveHeader& header = g_live->header;
    std::memcpy(header.magic, kLiveMagic, sizeof header.magic);
    header.version = kLiveVersion;
    header.state = static_cast<uint32_t>(LiveState::kRunning);
    header.pid = static_cast<int32_t>(pid);
    header.ppid = static_cast<int32_t>(::getppid());
    header.image = image;
    std::memcpy(g_stem_path, stem.c_str(), stem.size() + 1);
    g_stem_size = stem.size();
    return true;
  }
  return false;
}

// Page colours: the LLC's sets times its line size, in pages, from sysfs
// (the guest's view under a hypervisor).
unsigned llc_colours() {
  for (const char* index : {"index3", "index2"}) {
    char sets_text[32];
    char line_text[32];
    Path sets;
    sets.add("/sys/devices/system/cpu/cpu0/cache/").add(index).add("/number_of_sets");
    Path line;
    line.add("/sys/devices/system/cpu/cpu0/cache/").add(index).add("/coherency_line_size");
    if (prim::read_file(sets.c_str(), sets_text, sizeof sets_text) <= 0 ||
        prim::read_file(line.c_str(), line_text, sizeof line_text) <= 0) {
      continue;
    }
    uint64_t set_count = 0;
    uint64_t line_size = 0;
    for (const char* c = sets_text; *c >= '0' && *c <= '9'; ++c) {
      set_count = set_count * 10 + static_cast<uint64_t>(*c - '0');
    }
    for (const char* c = line_text; *c >= '0' && *c <= '9'; ++c) {
      line_size = line_size * 10 + static_cast<uint64_t>(*c - '0');
    }
    uint64_t colours = set_count * line_size / kPage;
    if (colours >= 1) {
      return colours > kMaxColours ? kMaxColours : static_cast<unsigned>(colours);
    }
  }
  return kDefaultColours;
}

// Reads the frames behind [address, address + size) from pagemap into the
// colour histogram. Present pages whose frame number reads 0 are hidden
// (pagemap without CAP_SYS_ADMIN).
void sample_pages(uintptr_t address, size_t size) {
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    g_physical.unreadable.store(true, std::memory_order_relaxed);
    return;
  }
  uintptr_t first = address / kPage;
  uintptr_t last = (address + size + kPage - 1) / kPage;
  if (last - first > kMaxSampledPages) {
    last = first + kMaxSampledPages;
  }
  uint64_t entries[512];
  uint64_t digest = 0;
  uint64_t present = 0;
  uint64_t hidden = 0;
  for (uintptr_t page = first; page < last;) {
    size_t want = last - page < 512 ? last - page : 512;
    ssize_t got =
        ::pread(fd, entries, want * sizeof(uint64_t), static_cast<off_t>(page * sizeof(uint64_t)));
    if (got <= 0) {
      break;
    }
    size_t count = static_cast<size_t>(got) / sizeof(uint64_t);
    for (size_t i = 0; i < count; ++i) {
      uint64_t entry = entries[i];
      if ((entry >> 63) == 0) {
        continue;  // not present: never touched, or swapped out
      }
      uint64_t frame = entry & ((static_cast<uint64_t>(1) << 55) - 1);
      ++present;
      if (frame == 0) {
        ++hidden;
        continue;
      }
      g_physical.colours[frame % g_colours].fetch_add(1, std::memory_order_relaxed);
      digest = digest_step(digest, frame);
    }
    page += count;
  }
  ::close(fd);
  g_physical.pages.fetch_add(present, std::memory_order_relaxed);
  g_physical.hidden.fetch_add(hidden, std::memory_order_relaxed);
  g_physical.digest.fetch_add(digest, std::memory_order_relaxed);
  g_physical.blocks.fetch_add(1, std::memory_order_relaxed);
}

bool try_lock_tracked() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (!g_tracked_busy.exchange(true, std::memory_order_acquire)) {
      return true;
    }
  }
  return false;
}

void unlock_tracked() { g_tracked_busy.store(false, std::memory_order_release); }

// Under the flag: the range the free path tests.
void update_tracked_range() {
  uintptr_t low = UINTPTR_MAX;
  uintptr_t high = 0;
  for (const Tracked& tracked : g_tracked) {
    if (tracked.size == 0) {
      continue;
    }
    low = tracked.address < low ? tracked.address : low;
    high = tracked.address + 1 > high ? tracked.address + 1 : high;
  }
  __atomic_store_n(&g_tracked_span, 0, __ATOMIC_RELAXED);
  if (high > low) {
    __atomic_store_n(&g_tracked_low, low, __ATOMIC_RELAXED);
    __atomic_store_n(&g_tracked_span, high - low, __ATOMIC_RELAXED);
  }
}

// Keeps the block if it is among the kTracked largest seen live.
void track(const void* pointer, size_t size) {
  if (!try_lock_tracked()) {
    return;
  }
  Tracked* smallest = &g_tracked[0];
  for (Tracked& tracked : g_tracked) {
    if (tracked.size < smallest->size) {
      smallest = &tracked;
    }
  }
  if (size > smallest->size) {
    *smallest = {reinterpret_cast<uintptr_t>(pointer), size};
    update_tracked_range();
  }
  unlock_tracked();
}

void after_fork_in_child() {
  // The mapping is the parent's: the child gets a file of its own and
  // starts from zero, as its own report does.
  LiveFile* parent = g_live;
  g_fingerprinting = false;
  t_self.fingerprint = nullptr;
  if (!map_live_file()) {
    prim::warn("memdet preload: cannot create the fingerprint file of a forked child");
    return;
  }
  ::munmap(parent, sizeof(LiveFile));
  std::memset(g_checkpoints, 0, sizeof g_checkpoints);
  g_large_used.store(0, std::memory_order_relaxed);
  for (Tracked& tracked : g_tracked) {
    tracked = {};
  }
  g_tracked_busy.store(false, std::memory_order_relaxed);
  update_tracked_range();
  g_rare_size =
      g_config.fingerprint_threshold < kTrackedMin ? g_config.fingerprint_threshold : kTrackedMin;
  g_physical.pages.store(0, std::memory_order_relaxed);
  g_physical.hidden.store(0, std::memory_order_relaxed);
  g_physical.blocks.store(0, std::memory_order_relaxed);
  g_physical.digest.store(0, std::memory_order_relaxed);
  for (auto& colour : g_physical.colours) {
    colour.store(0, std::memory_order_relaxed);
  }
  g_writing.store(false, std::memory_order_relaxed);
  g_fingerprinting = true;
}

// The fatal signals whose default action ends the process. The handler is
// installed only where the disposition is the default, and only once
// (SA_RESETHAND): it writes the record and raises the signal again, which
// then ends the process as it would have. A program that installs its own
// handler later replaces this one and decides for itself.
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE,  SIGILL,  SIGABRT, SIGTERM,
                                 SIGINT,  SIGHUP, SIGQUIT, SIGXCPU, SIGXFSZ, SIGSYS};

void on_fatal_signal(int signal) {
  int saved = errno;
  write_fingerprint(LiveState::kSignal, signal);
  ::syscall(SYS_tgkill, ::getpid(), prim::thread_id(), signal);
  errno = saved;
}

void install_signal_handlers() {
  for (int signal : kFatalSignals) {
    struct sigaction current {};
    if (::sigaction(signal, nullptr, &current) != 0 || current.sa_handler != SIG_DFL ||
        (current.sa_flags & SA_SIGINFO) != 0) {
      continue;
    }
    struct sigaction action {};
    action.sa_handler = on_fatal_signal;
    action.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    ::sigaction(signal, &action, nullptr);
  }
}

// ---- The record ----

// The executable file mappings, for callers as module + offset.
struct Module {
  uintptr_t start;
  uintptr_t end;
  uintptr_t offset;
  uint32_t path_at;  // into g_module_paths
};
constexpr size_t kMaxModules = 2048;
constexpr size_t kModulePathPool = 256 * 1024;
Module g_modules[kMaxModules];
size_t g_module_count = 0;
char g_module_paths[kModulePathPool];
size_t g_module_paths_used = 0;

struct MapsPass {
  Writer* out;  // null: collect modules only
  uint64_t digest;
  uint64_t regions;
};

uint64_t parse_hex(const char*& at, const char* end) {
  uint64_t value = 0;
  for (; at < end; ++at) {
    char c = *at;
    uint64_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      break;
    }
    value = value << 4 | digit;
  }
  return value;
}

void skip_field(const char*& at, const char* end) {
  while (at < end && *at != ' ') {
    ++at;
  }
  while (at < end && *at == ' ') {
    ++at;
  }
}

// One line of /proc/self/maps: "start-end perms offset dev inode   path".
void on_maps_line(const char* line, size_t size, void* context) {
  auto& pass = *static_cast<MapsPass*>(context);
  const char* at = line;
  const char* end = line + size;
  uintptr_t start = parse_hex(at, end);
  ++at;
  uintptr_t stop = parse_hex(at, end);
  while (at < end && *at == ' ') {
    ++at;
  }
  const char* perms = at;
  skip_field(at, end);
  const char* offset_text = at;
  uintptr_t offset = parse_hex(offset_text, end);
  skip_field(at, end);  // offset
  skip_field(at, end);  // dev
  skip_field(at, end);  // inode, and the spaces before the path
  const char* path = at;
  size_t path_size = static_cast<size_t>(end - at);

  // The live file is named by pid: it would make every run differ.
  auto live = reinterpret_cast<uintptr_t>(g_live);
  if (start == live) {
    return;
  }
  // The run directory is normalised, so runs in two directories compare.
  size_t dir_size = prim::length(g_config.fingerprint_dir);
  bool in_run = path_size >= dir_size &&
                std::memcmp(path, g_config.fingerprint_dir, dir_size) == 0 &&
                (path_size == dir_size || path[dir_size] == '/');
  const char* shown = in_run ? path + dir_size : path;
  size_t shown_size = in_run ? path_size - dir_size : path_size;

  if (pass.out == nullptr) {
    if (perms + 2 < end && perms[2] == 'x' && path_size > 0 && path[0] != '[' &&
        g_module_count < kMaxModules && g_module_paths_used + shown_size + 6 < kModulePathPool) {
      Module& module = g_modules[g_module_count++];
      module = {start, stop, offset, static_cast<uint32_t>(g_module_paths_used)};
      char* pool = g_module_paths + g_module_paths_used;
      size_t used = 0;
      if (in_run) {
        std::memcpy(pool, "<run>", 5);
        used = 5;
      }
      std::memcpy(pool + used, shown, shown_size);
      pool[used + shown_size] = '\0';
      g_module_paths_used += used + shown_size + 1;
    }
    return;
  }

  uint64_t digest = digest_step(pass.digest, start);
  digest = digest_step(digest, stop - start);
  for (size_t i = 0; i < 4 && perms + i < end; ++i) {
    digest = digest_step(digest, static_cast<uint64_t>(perms[i]));
  }
  if (in_run) {
    digest = digest_step(digest, '<');
  }
  for (size_t i = 0; i < shown_size; ++i) {
    digest = digest_step(digest, static_cast<unsigned char>(shown[i]));
  }
  pass.digest = digest;
  ++pass.regions;

  Writer& out = *pass.out;
  out.text("region").tab().hex(start).tab().number(stop - start).tab().text(perms, 4).tab();
  if (in_run) {
    out.text("<run>");
  }
  if (shown_size == 0 && !in_run) {
    out.character('-');
  } else {
    out.text(shown, shown_size);
  }
  out.end();
}

void write_caller(Writer& out, uint64_t caller) {
  for (size_t i = 0; i < g_module_count; ++i) {
    const Module& module = g_modules[i];
    if (caller >= module.start && caller < module.end) {
      out.text(g_module_paths + module.path_at)
          .text("+0x")
          .hex(caller - module.start + module.offset);
      return;
    }
  }
  out.text("0x").hex(caller);
}

void write_kept(Writer& out, const char* key, const char* ordinal, uint64_t index,
                const Kept& kept) {
  out.text(key).tab().text(ordinal).tab().number(index).tab();
  out.number(kept.word & 15).tab().number(kept.word >> 4).tab().hex(kept.address).tab();
  out.number(kept.address % kPage).tab();
  write_caller(out, kept.caller);
  out.end();
}

const char* state_name(LiveState state) {
  switch (state) {
    case LiveState::kRunning:
      return "running";
    case LiveState::kExit:
      return "exit";
    case LiveState::kUnderscoreExit:
      return "_exit";
    case LiveState::kExec:
      return "exec";
    case LiveState::kSignal:
      return "signal";
  }
  return "running";
}

void write_threads(Writer& out) {
  const LiveHeader& header = g_live->header;
  uint64_t threads = __atomic_load_n(&g_live->header.threads, __ATOMIC_ACQUIRE);
  threads = threads < kLiveThreads ? threads : kLiveThreads;
  out.text("global_count")
      .tab()
      .number(__atomic_load_n(&header.global_count, __ATOMIC_RELAXED))
      .end();
  out.text("global_digest")
      .tab()
      .hex(__atomic_load_n(&header.global_digest, __ATOMIC_RELAXED))
      .end();
  out.text("untracked_threads").tab().number(header.untracked_threads).end();
  for (uint64_t slot = 0; slot < threads; ++slot) {
    const LiveThread& thread = g_live->threads[slot];
    uint64_t count = thread.count;
    out.text("thread").tab().text(thread.ordinal).tab().number(count).tab();
    out.hex(thread.size_digest).tab().hex(thread.address_digest).end();
    for (size_t k = 0; k < kCheckpoints && (static_cast<uint64_t>(1) << k) <= count; ++k) {
      out.text("checkpoint").tab().text(thread.ordinal).tab();
      out.number(static_cast<uint64_t>(1) << k).tab().hex(g_checkpoints[slot][k]).end();
    }
    if (slot < kFirstThreads) {
      for (uint64_t i = 0; i < kFirstEntries && i < count; ++i) {
        write_kept(out, "first", thread.ordinal, i, g_first[slot][i]);
      }
    }
  }
  size_t large = g_large_used.load(std::memory_order_acquire);
  large = large < kLargeEntries ? large : kLargeEntries;
  for (size_t i = 0; i < large; ++i) {
    const LargeKept& kept = g_large[i];
    if (kept.entry.word == 0) {
      continue;  // taken, not yet written
    }
    write_kept(out, "large", g_live->threads[kept.slot].ordinal, kept.index, kept.entry);
  }
}

void write_rollup(Writer& out) {
  char text[4096];
  bool read = prim::read_file("/proc/self/smaps_rollup", text, sizeof text) > 0;
  for (const char* field : {"Rss:", "Anonymous:", "AnonHugePages:"}) {
    long value = read ? prim::find_number_field(text, field) : -1;
    out.text("rollup_").text(field, prim::length(field) - 1).text("_kB").tab();
    if (value < 0) {
      out.character('-');
    } else {
      out.number(static_cast<uint64_t>(value));
    }
    out.end();
  }
}

void write_hypervisor(Writer& out) {
  unsigned eax = 0;
  unsigned ebx = 0;
  unsigned ecx = 0;
  unsigned edx = 0;
  out.text("hypervisor").tab();
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & (1u << 31)) == 0) {
    out.text("none").end();
    return;
  }
  __cpuid(0x40000000, eax, ebx, ecx, edx);
  char vendor[13];
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &ecx, 4);
  std::memcpy(vendor + 8, &edx, 4);
  vendor[12] = '\0';
  size_t size = 0;
  while (size < 12 && vendor[size] >= ' ' && vendor[size] <= '~') {
    ++size;
  }
  if (size == 0) {
    out.text("unknown");
  } else {
    out.text(vendor, size);
  }
  out.end();
}

void write_physical(Writer& out) {
  // The blocks still live are sampled now; those freed were sampled then.
  if (try_lock_tracked()) {
    for (Tracked& tracked : g_tracked) {
      if (tracked.size != 0) {
        sample_pages(tracked.address, tracked.size);
        tracked = {};
      }
    }
    update_tracked_range();
    unlock_tracked();
  }
  uint64_t pages = g_physical.pages.load(std::memory_order_relaxed);
  uint64_t hidden = g_physical.hidden.load(std::memory_order_relaxed);
  const char* status = "none";  // no block large enough, or none touched
  if (g_physical.unreadable.load(std::memory_order_relaxed)) {
    status = "unreadable";
  } else if (pages > 0 && hidden == pages) {
    status = "hidden";
  } else if (pages > 0) {
    status = "readable";
  }
  out.text("physical").tab().text(status).end();
  out.text("physical_blocks").tab().number(g_physical.blocks.load(std::memory_order_relaxed)).end();
  out.text("physical_pages").tab().number(pages).end();
  out.text("physical_hidden").tab().number(hidden).end();
  out.text("colours").tab().number(g_colours).end();
  if (pages > hidden) {
    out.text("colour_pages").tab();
    for (unsigned colour = 0; colour < g_colours; ++colour) {
      if (colour > 0) {
        out.character(',');
      }
      out.number(g_physical.colours[colour].load(std::memory_order_relaxed));
    }
    out.end();
    out.text("frame_digest").tab().hex(g_physical.digest.load(std::memory_order_relaxed)).end();
  }
}

}  // namespace

void start_fingerprint() {
  if (!map_live_file()) {
    prim::warn("memdet preload: cannot create the fingerprint file (is its directory there?)");
    return;
  }
  g_colours = g_config.fingerprint_colours != 0 ? g_config.fingerprint_colours : llc_colours();
  g_rare_size =
      g_config.fingerprint_threshold < kTrackedMin ? g_config.fingerprint_threshold : kTrackedMin;
  ::pthread_atfork(nullptr, nullptr, after_fork_in_child);
  install_signal_handlers();
  g_fingerprinting = true;
}

LiveThread* attach_fingerprint_thread() {
  uint64_t slot = __atomic_fetch_add(&g_live->header.threads, 1, __ATOMIC_ACQ_REL);
  if (slot >= kLiveThreads) {
    __atomic_fetch_add(&g_live->header.untracked_threads, 1, __ATOMIC_RELAXED);
    t_self.fingerprint = &g_sink;
    return &g_sink;
  }
  LiveThread* thread = &g_live->threads[slot];
  size_t size = prim::length(t_self.ordinal);
  size = size < kLiveOrdinalSize - 1 ? size : kLiveOrdinalSize - 1;
  std::memcpy(thread->ordinal, t_self.ordinal, size);
  thread->ordinal[size] = '\0';
  t_self.fingerprint = thread;
  return thread;
}

void note_rare(LiveThread* thread, uint64_t index, const void* pointer, size_t size, uint64_t word,
               const void* caller) {
  if (thread == &g_sink) {
    return;
  }
  auto slot = static_cast<size_t>(thread - g_live->threads);
  Kept kept = {reinterpret_cast<uintptr_t>(pointer), word, reinterpret_cast<uintptr_t>(caller)};
  if (index < kFirstEntries && slot < kFirstThreads) {
    g_first[slot][index] = kept;
  }
  uint64_t count = index + 1;
  if ((count & index) == 0) {
    auto k = static_cast<size_t>(__builtin_ctzll(count));
    if (k < kCheckpoints) {
      g_checkpoints[slot][k] = thread->size_digest;
    }
  }
  if (size >= g_config.fingerprint_threshold &&
      g_large_used.load(std::memory_order_relaxed) < kLargeEntries) {
    size_t at = g_large_used.fetch_add(1, std::memory_order_acq_rel);
    if (at < kLargeEntries) {
      g_large[at].index = index;
      g_large[at].slot = static_cast<uint32_t>(slot);
      g_large[at].entry.address = kept.address;
      g_large[at].entry.caller = kept.caller;
      __atomic_store_n(&g_large[at].entry.word, word, __ATOMIC_RELEASE);
    }
    if (at + 1 >= kLargeEntries) {
      // Full: from now on only blocks for the physical sample come here.
      g_rare_size = kTrackedMin;
    }
  }
  if (size >= kTrackedMin) {
    track(pointer, size);
  }
}

void release_tracked(const void* pointer) {
  auto address = reinterpret_cast<uintptr_t>(pointer);
  if (!try_lock_tracked()) {
    return;
  }
  size_t size = 0;
  for (Tracked& tracked : g_tracked) {
    if (tracked.size != 0 && tracked.address == address) {
      size = tracked.size;
      tracked = {};
      update_tracked_range();
      break;
    }
  }
  unlock_tracked();
  if (size != 0) {
    sample_pages(address, size);
  }
}

void write_fingerprint(LiveState state, int signal) {
  // A vfork child, or a child made by a raw clone, still sees the parent's
  // file: it has no record of its own to write.
  if (!g_fingerprinting || g_live->header.pid != ::getpid() ||
      g_writing.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  int saved_errno = errno;
  LiveHeader& header = g_live->header;
  header.signal = static_cast<uint32_t>(signal);
  __atomic_store_n(&header.state, static_cast<uint32_t>(state), __ATOMIC_RELEASE);

  Path path;
  path.add(g_stem_path, g_stem_size).add(".txt");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    prim::warn("memdet preload: cannot write the fingerprint record");
    g_writing.store(false, std::memory_order_release);
    errno = saved_errno;
    return;
  }
  Writer out(fd);
  out.text("memdet-fingerprint\t1\n");
  out.text("pid").tab().number(static_cast<uint64_t>(header.pid)).end();
  out.text("ppid").tab().number(static_cast<uint64_t>(header.ppid)).end();
  out.text("image").tab().number(header.image).end();
  char exe[4096];
  ssize_t exe_size = ::readlink("/proc/self/exe", exe, sizeof exe);
  out.text("exe").tab();
  if (exe_size > 0) {
    out.text(exe, static_cast<size_t>(exe_size));
  } else {
    out.character('-');
  }
  out.end();
  out.text("end").tab().text(state_name(state));
  if (state == LiveState::kSignal) {
    out.tab().number(static_cast<uint64_t>(signal));
  }
  out.end();
  out.text("threshold").tab().number(g_config.fingerprint_threshold).end();

  // Modules first: the kept entries name their callers by them.
  g_module_count = 0;
  g_module_paths_used = 0;
  MapsPass modules = {nullptr, 0, 0};
  prim::for_each_line("/proc/self/maps", on_maps_line, &modules);
  write_threads(out);

  MapsPass layout = {&out, 0, 0};
  bool maps = prim::for_each_line("/proc/self/maps", on_maps_line, &layout);
  out.text("maps_regions").tab().number(layout.regions).end();
  out.text("maps_digest").tab();
  if (maps) {
    out.hex(layout.digest);
  } else {
    out.character('-');
  }
  out.end();

  write_numa_pages(out);
  write_rollup(out);
  write_physical(out);
  write_hypervisor(out);
  out.text("end_of_record\t1\n");
  out.flush();
  ::close(fd);
  g_writing.store(false, std::memory_order_release);
  errno = saved_errno;
}

void fingerprint_exec_failed() {
  if (g_fingerprinting) {
    __atomic_store_n(&g_live->header.state, static_cast<uint32_t>(LiveState::kRunning),
                     __ATOMIC_RELEASE);
  }
}

}  // namespace memdet::preload
