// fileorder=: every directory listing the workload makes comes out in one
// chosen order, byte order of the names or a keyed hash of them
// (CONTRACT.md, "File order"). A DIR* serves a snapshot of the whole
// directory, ordered once; scandir, glob and fts reorder what libc built,
// because their internal reads of the directory never reach our readdir.
#include "preload/fileorder.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fts.h>
#include <ftw.h>
#include <glob.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "preload/caller.h"
#include "preload/config.h"
#include "preload/ordinal.h"
#include "preload/prim.h"
#include "preload/shim.h"

namespace memdet::preload {
namespace {

// x86_64 gives struct dirent and struct dirent64 one layout, so the 64-bit
// snapshot serves both readdir and readdir64.
static_assert(sizeof(struct dirent) == sizeof(struct dirent64));
static_assert(offsetof(struct dirent, d_name) == offsetof(struct dirent64, d_name));

// ---------------------------------------------------------------------------
// The functions beneath, looked up at their first call.

template <typename Function>
Function next(std::atomic<void*>& cache, const char* name) {
  void* function = cache.load(std::memory_order_acquire);
  if (MEMDET_UNLIKELY(function == nullptr)) {
    function = ::dlsym(RTLD_NEXT, name);
    if (function == nullptr) {
      prim::die("fileorder: a directory function is missing beneath the shim");
    }
    cache.store(function, std::memory_order_release);
  }
  return reinterpret_cast<Function>(function);
}

#define MEMDET_NEXT(name) \
  memdet::preload::next<decltype(&::name)>(memdet::preload::g_next_##name, #name)

std::atomic<void*> g_next_readdir{nullptr};
std::atomic<void*> g_next_readdir64{nullptr};
std::atomic<void*> g_next_readdir_r{nullptr};
std::atomic<void*> g_next_readdir64_r{nullptr};
std::atomic<void*> g_next_telldir{nullptr};
std::atomic<void*> g_next_seekdir{nullptr};
std::atomic<void*> g_next_rewinddir{nullptr};
std::atomic<void*> g_next_closedir{nullptr};
std::atomic<void*> g_next_scandir{nullptr};
std::atomic<void*> g_next_scandir64{nullptr};
std::atomic<void*> g_next_scandirat{nullptr};
std::atomic<void*> g_next_scandirat64{nullptr};
std::atomic<void*> g_next_glob{nullptr};  // dlsym finds the default version, GLIBC_2.27
std::atomic<void*> g_next_glob64{nullptr};
std::atomic<void*> g_next_fts_open{nullptr};
std::atomic<void*> g_next_fts64_open{nullptr};
std::atomic<void*> g_next_fts_read{nullptr};
std::atomic<void*> g_next_fts64_read{nullptr};
std::atomic<void*> g_next_fts_children{nullptr};
std::atomic<void*> g_next_fts64_children{nullptr};
std::atomic<void*> g_next_nftw{nullptr};
std::atomic<void*> g_next_nftw64{nullptr};
std::atomic<void*> g_next_ftw{nullptr};
std::atomic<void*> g_next_ftw64{nullptr};

// Set by start_fileorder: the only thing the hooks test once the mode is
// decided, so the passive path stays a load and a compare.
bool g_ordering = false;

bool ordering() {
  Mode mode = current_mode();
  if (MEMDET_LIKELY(mode == Mode::kPassive)) {
    return false;
  }
  if (mode != Mode::kActive && start() == Start::kBootstrap) {
    return false;
  }
  return g_ordering;
}

// ---------------------------------------------------------------------------
// The order.

// FNV-1a: the names' hash before the key is mixed in.
uint64_t name_hash(const char* name) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const unsigned char* byte = reinterpret_cast<const unsigned char*>(name); *byte != 0;
       ++byte) {
    hash = (hash ^ *byte) * 0x100000001b3ULL;
  }
  return hash;
}

uint64_t rank(const char* name) { return mix64(g_config.fileorder_key ^ name_hash(name)); }

// Whether the listing being ordered on this thread takes the keyed order;
// set before each sort.
__thread bool t_keyed __attribute__((tls_model("initial-exec"))) = false;

// A forked child is not the image the window counts in.
bool g_forked = false;

bool window_set() { return g_config.fileorder_window_high != 0; }

// The keyed order, for the listing numbered `ordinal`: every listing, or
// with fileorder_window= only those inside it in the root image.
bool keyed_for(uint64_t ordinal) {
  if (g_config.fileorder != FileOrder::kKeyed) {
    return false;
  }
  if (!window_set()) {
    return true;
  }
  return !g_forked && g_config.lineage == 0 && ordinal >= g_config.fileorder_window_low &&
         ordinal <= g_config.fileorder_window_high;
}

// Negative, zero or positive as `a` comes before, with or after `b`.
// strcmp compares the bytes as unsigned char: the same on every machine.
int compare_names(const char* a, const char* b) {
  if (t_keyed) {
    uint64_t rank_a = rank(a);
    uint64_t rank_b = rank(b);
    if (rank_a != rank_b) {
      return rank_a < rank_b ? -1 : 1;
    }
  }
  return std::strcmp(a, b);
}

// The first eight bytes of `name` as a big-endian number, NUL-padded.
uint64_t prefix(const char* name) {
  uint64_t value = 0;
  size_t i = 0;
  for (; i < 8 && name[i] != '\0'; ++i) {
    value = (value << 8) | static_cast<unsigned char>(name[i]);
  }
  return i == 0 ? 0 : value << (8 * (8 - i));
}

bool name_before(const char* a, const char* b) { return compare_names(a, b) < 0; }

bool is_dot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

const char* base_name(const char* path) {
  const char* base = path;
  for (const char* at = path; *at != '\0'; ++at) {
    if (*at == '/' && at[1] != '\0') {
      base = at + 1;
    }
  }
  return base;
}

// ---------------------------------------------------------------------------
// The report's counts and its first listings.

enum class Api { kReaddir, kScandir, kGlob, kFts };

const char* api_name(Api api) {
  switch (api) {
    case Api::kReaddir:
      return "readdir";
    case Api::kScandir:
      return "scandir";
    case Api::kGlob:
      return "glob";
    case Api::kFts:
      return "fts";
  }
  return "?";
}

constexpr size_t kListingsKept = 256;

struct Listing {
  std::atomic<bool> ready;
  uint64_t ordinal;
  Api api;
  uint64_t entries;
  char directory[512];
  char caller[1024];
};

Listing g_listings[kListingsKept];
std::atomic<uint64_t> g_listing_count{0};
std::atomic<uint64_t> g_ordered_count{0};
std::atomic<uint64_t> g_windowed_count{0};  // listings keyed inside fileorder_window

// The next listing's number, from 1, taken before it is ordered.
uint64_t take_ordinal() { return g_listing_count.fetch_add(1, std::memory_order_relaxed) + 1; }

// Sets the order of the listing numbered `ordinal` on this thread.
void order_listing(uint64_t ordinal) {
  t_keyed = keyed_for(ordinal);
  if (t_keyed && window_set()) {
    g_windowed_count.fetch_add(1, std::memory_order_relaxed);
  }
}
std::atomic<uint64_t> g_unseen_readdir{0};  // DIRs passed through: table full or no memory
std::atomic<uint64_t> g_unseen_nftw{0};
std::atomic<uint64_t> g_unseen_ftw{0};

void copy_text(char* out, size_t capacity, const char* text, size_t size) {
  if (size >= capacity) {
    size = capacity - 1;
  }
  for (size_t i = 0; i < size; ++i) {
    char c = text[i];
    out[i] = c == '\t' || c == '\n' ? ' ' : c;
  }
  out[size] = '\0';
}

// Counts a listing of `entries` names other than . and ..; the first
// kListingsKept of two entries or more keep their directory and caller.
// `directory` is called only for those, so the others cost no readlink.
template <typename DirectoryOf>
void note_listing(uint64_t ordinal, Api api, uint64_t entries, const void* caller,
                  DirectoryOf directory_of) {
  if (entries < 2) {
    return;
  }
  uint64_t index = g_ordered_count.fetch_add(1, std::memory_order_relaxed);
  if (index >= kListingsKept) {
    return;
  }
  Listing& listing = g_listings[index];
  listing.ordinal = ordinal;
  listing.api = api;
  listing.entries = entries;
  directory_of(listing.directory, sizeof listing.directory);
  // Python releases its lock around readdir (os.listdir, os.scandir), and
  // the hooks here hold no lock of their own: the walk may take it back.
  describe_caller(caller, listing.caller, sizeof listing.caller, PythonFrames::kTakeLock);
  listing.ready.store(true, std::memory_order_release);
}

void directory_of_stream(DIR* dir, char* out, size_t capacity) {
  char link[48] = "/proc/self/fd/";
  size_t used = prim::length(link);
  used += prim::decimal(static_cast<uint64_t>(::dirfd(dir)), link + used);
  link[used] = '\0';
  ssize_t size = ::readlink(link, out, capacity - 1);
  if (size < 0) {
    copy_text(out, capacity, "?", 1);
  } else {
    copy_text(out, capacity, out, static_cast<size_t>(size));
  }
}

auto directory_named(const char* path) {
  return [path](char* out, size_t capacity) { copy_text(out, capacity, path, prim::length(path)); };
}

// ---------------------------------------------------------------------------
// Snapshots of DIR streams, in a fixed table keyed by the DIR*.

constexpr size_t kSlots = 1024;
constexpr size_t kFirstMapping = 64 * 1024;
constexpr size_t kLongestRecord = sizeof(struct dirent64);

enum SlotState : int { kBuilding, kReady };

// A record's place in the snapshot and its rank, computed once rather
// than at every comparison: the keyed hash, or when sorted the name's
// first eight bytes, which order as strcmp does; equal ranks fall back to
// strcmp.
struct Position {
  uint64_t rank;
  uint64_t offset;
};

struct Snapshot {
  std::atomic<DIR*> dir;  // null: the slot is free
  std::atomic<int> state;
  char* base;  // one private mapping: the records, then their order
  size_t capacity;
  size_t used;
  Position* order;  // the records in the order served
  size_t count;
  size_t cursor;  // the next position served; telldir's value
  int error;      // errno of a failed read, given once the snapshot is served
};

Snapshot g_slots[kSlots];
std::atomic<size_t> g_slots_high{0};  // no slot at or past it was ever taken
// Held only while a free slot is claimed: loads and stores, no calls.
std::atomic<bool> g_claiming{false};

Snapshot* find(DIR* dir) {
  size_t high = g_slots_high.load(std::memory_order_acquire);
  for (size_t i = 0; i < high; ++i) {
    if (g_slots[i].dir.load(std::memory_order_acquire) == dir) {
      // Another thread reading the same stream may still be taking it.
      while (g_slots[i].state.load(std::memory_order_acquire) != kReady) {
        ::sched_yield();
      }
      return &g_slots[i];
    }
  }
  return nullptr;
}

// A slot for `dir`, taken for this thread to fill (*fill true), or the one
// another thread took meanwhile; null when the table is full.
Snapshot* claim(DIR* dir, bool* fill) {
  while (g_claiming.exchange(true, std::memory_order_acquire)) {
    ::sched_yield();
  }
  Snapshot* taken = nullptr;
  size_t high = g_slots_high.load(std::memory_order_relaxed);
  for (size_t i = 0; i < high && taken == nullptr; ++i) {
    if (g_slots[i].dir.load(std::memory_order_relaxed) == dir) {
      g_claiming.store(false, std::memory_order_release);
      *fill = false;
      return find(dir);
    }
  }
  for (size_t i = 0; i < high && taken == nullptr; ++i) {
    if (g_slots[i].dir.load(std::memory_order_relaxed) == nullptr) {
      taken = &g_slots[i];
    }
  }
  if (taken == nullptr && high < kSlots) {
    taken = &g_slots[high];
    g_slots_high.store(high + 1, std::memory_order_release);
  }
  if (taken != nullptr) {
    taken->state.store(kBuilding, std::memory_order_relaxed);
    taken->dir.store(dir, std::memory_order_release);
  }
  g_claiming.store(false, std::memory_order_release);
  *fill = true;
  return taken;
}

void release(Snapshot* snapshot) {
  if (snapshot->base != nullptr) {
    ::munmap(snapshot->base, snapshot->capacity);
  }
  snapshot->base = nullptr;
  snapshot->capacity = 0;
  snapshot->used = 0;
  snapshot->order = nullptr;
  snapshot->count = 0;
  snapshot->cursor = 0;
  snapshot->error = 0;
  snapshot->dir.store(nullptr, std::memory_order_release);
}

bool reserve(Snapshot* snapshot, size_t more) {
  if (snapshot->capacity - snapshot->used >= more) {
    return true;
  }
  size_t capacity = snapshot->capacity * 2;
  while (capacity - snapshot->used < more) {
    capacity *= 2;
  }
  void* grown = ::mremap(snapshot->base, snapshot->capacity, capacity, MREMAP_MAYMOVE);
  if (grown == MAP_FAILED) {
    return false;
  }
  snapshot->base = static_cast<char*>(grown);
  snapshot->capacity = capacity;
  return true;
}

struct dirent64* record_at(const Snapshot* snapshot, size_t position) {
  return reinterpret_cast<struct dirent64*>(snapshot->base + snapshot->order[position].offset);
}

// Reads the stream to its end into the snapshot and orders it. Returns
// false, with the stream back at its start, when the mapping cannot hold
// it: the stream then passes through.
bool fill(Snapshot* snapshot, DIR* dir) {
  void* base =
      ::mmap(nullptr, kFirstMapping, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    return false;
  }
  snapshot->base = static_cast<char*>(base);
  snapshot->capacity = kFirstMapping;

  auto read_next = MEMDET_NEXT(readdir64);
  int saved_errno = errno;
  size_t count = 0;
  for (;;) {
    if (!reserve(snapshot, kLongestRecord)) {
      errno = saved_errno;
      MEMDET_NEXT(rewinddir)(dir);
      return false;
    }
    errno = 0;
    struct dirent64* entry = read_next(dir);
    if (entry == nullptr) {
      snapshot->error = errno;
      break;
    }
    size_t name_size = prim::length(entry->d_name) + 1;
    size_t size = (offsetof(struct dirent64, d_name) + name_size + 7) & ~static_cast<size_t>(7);
    auto* copy = reinterpret_cast<struct dirent64*>(snapshot->base + snapshot->used);
    copy->d_ino = entry->d_ino;
    copy->d_off = 0;
    copy->d_reclen = static_cast<unsigned short>(size);
    copy->d_type = entry->d_type;
    std::memcpy(copy->d_name, entry->d_name, name_size);
    snapshot->used += size;
    ++count;
  }
  errno = saved_errno;

  // The order array after the records (which keep it 8-byte aligned).
  size_t records_end = snapshot->used;
  if (!reserve(snapshot, count * sizeof(Position))) {
    MEMDET_NEXT(rewinddir)(dir);
    return false;
  }
  snapshot->order = reinterpret_cast<Position*>(snapshot->base + records_end);
  const bool keyed = t_keyed;
  size_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto* record = reinterpret_cast<const struct dirent64*>(snapshot->base + offset);
    snapshot->order[i] = Position{keyed ? rank(record->d_name) : prefix(record->d_name), offset};
    offset += record->d_reclen;
  }
  const char* records = snapshot->base;
  std::sort(snapshot->order, snapshot->order + count, [records](Position a, Position b) {
    if (a.rank != b.rank) {
      return a.rank < b.rank;
    }
    return std::strcmp(reinterpret_cast<const struct dirent64*>(records + a.offset)->d_name,
                       reinterpret_cast<const struct dirent64*>(records + b.offset)->d_name) < 0;
  });
  // d_off is the position after the entry, as telldir would give there.
  for (size_t i = 0; i < count; ++i) {
    record_at(snapshot, i)->d_off = static_cast<off64_t>(i + 1);
  }
  snapshot->count = count;
  snapshot->cursor = 0;
  return true;
}

// The snapshot of `dir`, taken now when the stream is at its start; null
// when the stream passes through: already read past its start unordered,
// the table full, or no memory.
Snapshot* snapshot_of(DIR* dir, const void* caller) {
  Snapshot* snapshot = find(dir);
  if (snapshot != nullptr) {
    return snapshot;
  }
  if (MEMDET_NEXT(telldir)(dir) != 0) {
    return nullptr;
  }
  bool to_fill = false;
  snapshot = claim(dir, &to_fill);
  if (snapshot == nullptr) {
    g_unseen_readdir.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (!to_fill) {
    return snapshot;
  }
  const uint64_t ordinal = take_ordinal();
  order_listing(ordinal);
  if (!fill(snapshot, dir)) {
    release(snapshot);
    g_unseen_readdir.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  snapshot->state.store(kReady, std::memory_order_release);

  uint64_t entries = 0;
  for (size_t i = 0; i < snapshot->count; ++i) {
    entries += is_dot(record_at(snapshot, i)->d_name) ? 0 : 1;
  }
  note_listing(ordinal, Api::kReaddir, entries, caller,
               [dir](char* out, size_t capacity) { directory_of_stream(dir, out, capacity); });
  return snapshot;
}

// readdir64 on a snapshot: null at its end, with errno from a failed read
// of the stream, once.
struct dirent64* serve(Snapshot* snapshot) {
  size_t position = snapshot->cursor;
  if (position < snapshot->count) {
    snapshot->cursor = position + 1;
    return record_at(snapshot, position);
  }
  if (snapshot->error != 0) {
    errno = snapshot->error;
    snapshot->error = 0;
  }
  return nullptr;
}

struct dirent64* read_ordered(DIR* dir, const void* caller) {
  Snapshot* snapshot = snapshot_of(dir, caller);
  if (snapshot == nullptr) {
    return MEMDET_NEXT(readdir64)(dir);
  }
  return serve(snapshot);
}

// readdir64_r on a snapshot: the entry copied into the caller's buffer.
int read_ordered_r(DIR* dir, struct dirent64* entry, struct dirent64** result, const void* caller) {
  int saved_errno = errno;
  errno = 0;
  struct dirent64* next_entry = read_ordered(dir, caller);
  int error = errno;
  errno = saved_errno;
  if (next_entry == nullptr) {
    *result = nullptr;
    return error;
  }
  std::memcpy(entry, next_entry, next_entry->d_reclen);
  *result = entry;
  return 0;
}

// ---------------------------------------------------------------------------
// scandir, glob, fts: reorder what libc built.

template <typename Entry>
int reorder_scandir(int count, Entry*** names, const char* directory, const void* caller) {
  if (count <= 0 || names == nullptr || *names == nullptr) {
    return count;
  }
  Entry** list = *names;
  const uint64_t ordinal = take_ordinal();
  order_listing(ordinal);
  std::sort(list, list + count,
            [](const Entry* a, const Entry* b) { return name_before(a->d_name, b->d_name); });
  uint64_t entries = 0;
  for (int i = 0; i < count; ++i) {
    entries += is_dot(list[i]->d_name) ? 0 : 1;
  }
  note_listing(ordinal, Api::kScandir, entries, caller, directory_named(directory));
  return count;
}

template <typename Glob>
int reorder_glob(int result, size_t old_count, const Glob* glob_data, const char* pattern,
                 const void* caller) {
  if (glob_data->gl_pathv == nullptr || glob_data->gl_pathc <= old_count) {
    return result;
  }
  char** first = glob_data->gl_pathv + glob_data->gl_offs + old_count;
  char** last = glob_data->gl_pathv + glob_data->gl_offs + glob_data->gl_pathc;
  const uint64_t ordinal = take_ordinal();
  order_listing(ordinal);
  std::sort(first, last, name_before);
  uint64_t entries = 0;
  for (char** path = first; path != last; ++path) {
    entries += is_dot(base_name(*path)) ? 0 : 1;
  }
  note_listing(ordinal, Api::kGlob, entries, caller, directory_named(pattern));
  return result;
}

template <typename Glob, typename Function>
int ordered_glob(Function real, const char* pattern, int flags, int (*on_error)(const char*, int),
                 Glob* glob_data, const void* caller) {
  if (!ordering() || (flags & GLOB_NOSORT) == 0) {
    return real(pattern, flags, on_error, glob_data);
  }
  size_t old_count = (flags & GLOB_APPEND) != 0 ? glob_data->gl_pathc : 0;
  int result = real(pattern, flags, on_error, glob_data);
  return reorder_glob(result, old_count, glob_data, pattern, caller);
}

// fts sorts each directory's children with fts_compar when it is set.
// Set after fts_open, so the roots keep the order of the argument list as
// they do without a comparator.
template <typename Entry>
int compare_fts(const void* a, const void* b) {
  const Entry* entry_a = *static_cast<const Entry* const*>(a);
  const Entry* entry_b = *static_cast<const Entry* const*>(b);
  return compare_names(entry_a->fts_name, entry_b->fts_name);
}

template <typename Entry>
void note_fts_children(const Entry* first, const void* caller) {
  uint64_t entries = 0;
  for (const Entry* entry = first; entry != nullptr; entry = entry->fts_link) {
    ++entries;
  }
  // fts_path holds the first child's path: its directory is the part
  // before the child's name.
  size_t size =
      first->fts_pathlen > first->fts_namelen ? first->fts_pathlen - first->fts_namelen : 0;
  if (size > 1) {
    --size;  // the slash
  }
  const char* path = first->fts_path;
  note_listing(take_ordinal(), Api::kFts, entries, caller,
               [path, size](char* out, size_t capacity) { copy_text(out, capacity, path, size); });
}

template <typename Stream, typename Entry, typename Function>
Entry* ordered_fts_read(Function real, Stream* stream, const void* caller) {
  if (!ordering() || stream == nullptr || stream->fts_compar != compare_fts<Entry>) {
    return real(stream);
  }
  // fts sorts inside the call, before the listing can be numbered: a
  // window leaves its listings sorted.
  t_keyed = g_config.fileorder == FileOrder::kKeyed && !window_set();
  // A directory in preorder whose children fts_children has not built yet:
  // this call builds them and returns the first.
  Entry* before = stream->fts_cur;
  bool builds = before != nullptr && before->fts_info == FTS_D && stream->fts_child == nullptr;
  Entry* entry = real(stream);
  if (builds && entry != nullptr && entry != before && entry->fts_parent == before) {
    note_fts_children(entry, caller);
  }
  return entry;
}

template <typename Stream, typename Entry, typename Function>
Entry* ordered_fts_children(Function real, Stream* stream, int options, const void* caller) {
  if (!ordering() || stream == nullptr || stream->fts_compar != compare_fts<Entry>) {
    return real(stream, options);
  }
  bool built = stream->fts_child != nullptr;
  t_keyed = g_config.fileorder == FileOrder::kKeyed && !window_set();
  Entry* first = real(stream, options);
  if (!built && first != nullptr) {
    note_fts_children(first, caller);
  }
  return first;
}

}  // namespace

namespace {

// A forked child is a process of its own, with its own report: its
// listings are numbered from 1 again, outside any window. Only the forking
// thread lives on, so a claim another thread held is void.
void after_fork_in_child() {
  g_forked = true;
  g_claiming.store(false, std::memory_order_relaxed);
  g_listing_count.store(0, std::memory_order_relaxed);
  g_ordered_count.store(0, std::memory_order_relaxed);
  g_windowed_count.store(0, std::memory_order_relaxed);
  g_unseen_readdir.store(0, std::memory_order_relaxed);
  g_unseen_nftw.store(0, std::memory_order_relaxed);
  g_unseen_ftw.store(0, std::memory_order_relaxed);
  for (Listing& listing : g_listings) {
    listing.ready.store(false, std::memory_order_relaxed);
  }
}

}  // namespace

void start_fileorder() {
  ::pthread_atfork(nullptr, nullptr, after_fork_in_child);
  g_ordering = true;
}

void write_fileorder_report(prim::Writer& out) {
  if (g_config.fileorder == FileOrder::kUnset) {
    return;
  }
  out.text("fileorder").tab().text(g_config.fileorder == FileOrder::kKeyed ? "keyed" : "sorted");
  out.end();
  out.text("fileorder_listings").tab().number(g_listing_count.load(std::memory_order_relaxed));
  out.end();
  uint64_t ordered = g_ordered_count.load(std::memory_order_relaxed);
  out.text("fileorder_ordered").tab().number(ordered).end();
  for (size_t i = 0; i < ordered && i < kListingsKept; ++i) {
    const Listing& listing = g_listings[i];
    if (!listing.ready.load(std::memory_order_acquire)) {
      continue;
    }
    out.text("fileorder_listing").tab().number(listing.ordinal).tab();
    out.text(api_name(listing.api)).tab().number(listing.entries).tab();
    out.text(listing.directory).tab().text(listing.caller).end();
  }
  if (window_set()) {
    out.text("fileorder_windowed").tab().number(g_windowed_count.load(std::memory_order_relaxed));
    out.end();
  }
  out.text("fileorder_unseen\treaddir\t").number(g_unseen_readdir.load(std::memory_order_relaxed));
  out.end();
  out.text("fileorder_unseen\tnftw\t").number(g_unseen_nftw.load(std::memory_order_relaxed));
  out.end();
  out.text("fileorder_unseen\tftw\t").number(g_unseen_ftw.load(std::memory_order_relaxed));
  out.end();
}

}  // namespace memdet::preload

using memdet::preload::ordering;

extern "C" {

MEMDET_EXPORT struct dirent64* readdir64(DIR* dir) {
  if (MEMDET_LIKELY(!ordering())) {
    return MEMDET_NEXT(readdir64)(dir);
  }
  return memdet::preload::read_ordered(dir, __builtin_return_address(0));
}

MEMDET_EXPORT struct dirent* readdir(DIR* dir) {
  if (MEMDET_LIKELY(!ordering())) {
    return MEMDET_NEXT(readdir)(dir);
  }
  return reinterpret_cast<struct dirent*>(
      memdet::preload::read_ordered(dir, __builtin_return_address(0)));
}

// Deprecated by glibc in favour of readdir, but still called.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

MEMDET_EXPORT int readdir64_r(DIR* dir, struct dirent64* entry, struct dirent64** result) {
  if (MEMDET_LIKELY(!ordering())) {
    return MEMDET_NEXT(readdir64_r)(dir, entry, result);
  }
  return memdet::preload::read_ordered_r(dir, entry, result, __builtin_return_address(0));
}

MEMDET_EXPORT int readdir_r(DIR* dir, struct dirent* entry, struct dirent** result) {
  if (MEMDET_LIKELY(!ordering())) {
    return MEMDET_NEXT(readdir_r)(dir, entry, result);
  }
  return memdet::preload::read_ordered_r(dir, reinterpret_cast<struct dirent64*>(entry),
                                         reinterpret_cast<struct dirent64**>(result),
                                         __builtin_return_address(0));
}

#pragma GCC diagnostic pop

MEMDET_EXPORT long telldir(DIR* dir) noexcept {
  if (MEMDET_LIKELY(!ordering())) {
    return MEMDET_NEXT(telldir)(dir);
  }
  memdet::preload::Snapshot* snapshot =
      memdet::preload::snapshot_of(dir, __builtin_return_address(0));
  if (snapshot == nullptr) {
    return MEMDET_NEXT(telldir)(dir);
  }
  return static_cast<long>(snapshot->cursor);
}

MEMDET_EXPORT void seekdir(DIR* dir, long position) noexcept {
  if (MEMDET_LIKELY(!ordering())) {
    MEMDET_NEXT(seekdir)(dir, position);
    return;
  }
  memdet::preload::Snapshot* snapshot =
      memdet::preload::snapshot_of(dir, __builtin_return_address(0));
  if (snapshot == nullptr) {
    MEMDET_NEXT(seekdir)(dir, position);
    return;
  }
  size_t wanted = position < 0 ? 0 : static_cast<size_t>(position);
  snapshot->cursor = wanted < snapshot->count ? wanted : snapshot->count;
}

MEMDET_EXPORT void rewinddir(DIR* dir) noexcept {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::Snapshot* snapshot = memdet::preload::find(dir);
    if (snapshot != nullptr) {
      memdet::preload::release(snapshot);
    }
  }
  MEMDET_NEXT(rewinddir)(dir);
}

MEMDET_EXPORT int closedir(DIR* dir) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::Snapshot* snapshot = memdet::preload::find(dir);
    if (snapshot != nullptr) {
      memdet::preload::release(snapshot);
    }
  }
  return MEMDET_NEXT(closedir)(dir);
}

MEMDET_EXPORT int scandir(const char* directory, struct dirent*** names,
                          int (*filter)(const struct dirent*),
                          int (*compare)(const struct dirent**, const struct dirent**)) {
  int count = MEMDET_NEXT(scandir)(directory, names, filter, compare);
  if (MEMDET_LIKELY(!ordering()) || compare != nullptr) {
    return count;
  }
  return memdet::preload::reorder_scandir(count, names, directory, __builtin_return_address(0));
}

MEMDET_EXPORT int scandir64(const char* directory, struct dirent64*** names,
                            int (*filter)(const struct dirent64*),
                            int (*compare)(const struct dirent64**, const struct dirent64**)) {
  int count = MEMDET_NEXT(scandir64)(directory, names, filter, compare);
  if (MEMDET_LIKELY(!ordering()) || compare != nullptr) {
    return count;
  }
  return memdet::preload::reorder_scandir(count, names, directory, __builtin_return_address(0));
}

MEMDET_EXPORT int scandirat(int directory_fd, const char* directory, struct dirent*** names,
                            int (*filter)(const struct dirent*),
                            int (*compare)(const struct dirent**, const struct dirent**)) {
  int count = MEMDET_NEXT(scandirat)(directory_fd, directory, names, filter, compare);
  if (MEMDET_LIKELY(!ordering()) || compare != nullptr) {
    return count;
  }
  return memdet::preload::reorder_scandir(count, names, directory, __builtin_return_address(0));
}

MEMDET_EXPORT int scandirat64(int directory_fd, const char* directory, struct dirent64*** names,
                              int (*filter)(const struct dirent64*),
                              int (*compare)(const struct dirent64**, const struct dirent64**)) {
  int count = MEMDET_NEXT(scandirat64)(directory_fd, directory, names, filter, compare);
  if (MEMDET_LIKELY(!ordering()) || compare != nullptr) {
    return count;
  }
  return memdet::preload::reorder_scandir(count, names, directory, __builtin_return_address(0));
}

// Unversioned, so it takes the calls bound to either of glibc's versions
// (GLIBC_2.2.5 and the default GLIBC_2.27); both go on to the default one.
MEMDET_EXPORT int glob(const char* pattern, int flags, int (*on_error)(const char*, int),
                       glob_t* glob_data) noexcept {
  return memdet::preload::ordered_glob(MEMDET_NEXT(glob), pattern, flags, on_error, glob_data,
                                       __builtin_return_address(0));
}

MEMDET_EXPORT int glob64(const char* pattern, int flags, int (*on_error)(const char*, int),
                         glob64_t* glob_data) noexcept {
  return memdet::preload::ordered_glob(MEMDET_NEXT(glob64), pattern, flags, on_error, glob_data,
                                       __builtin_return_address(0));
}

MEMDET_EXPORT FTS* fts_open(char* const* paths, int options,
                            int (*compare)(const FTSENT**, const FTSENT**)) {
  FTS* stream = MEMDET_NEXT(fts_open)(paths, options, compare);
  if (MEMDET_UNLIKELY(ordering()) && stream != nullptr && compare == nullptr) {
    stream->fts_compar = memdet::preload::compare_fts<FTSENT>;
  }
  return stream;
}

MEMDET_EXPORT FTS64* fts64_open(char* const* paths, int options,
                                int (*compare)(const FTSENT64**, const FTSENT64**)) {
  FTS64* stream = MEMDET_NEXT(fts64_open)(paths, options, compare);
  if (MEMDET_UNLIKELY(ordering()) && stream != nullptr && compare == nullptr) {
    stream->fts_compar = memdet::preload::compare_fts<FTSENT64>;
  }
  return stream;
}

MEMDET_EXPORT FTSENT* fts_read(FTS* stream) {
  return memdet::preload::ordered_fts_read<FTS, FTSENT>(MEMDET_NEXT(fts_read), stream,
                                                        __builtin_return_address(0));
}

MEMDET_EXPORT FTSENT64* fts64_read(FTS64* stream) {
  return memdet::preload::ordered_fts_read<FTS64, FTSENT64>(MEMDET_NEXT(fts64_read), stream,
                                                            __builtin_return_address(0));
}

MEMDET_EXPORT FTSENT* fts_children(FTS* stream, int options) {
  return memdet::preload::ordered_fts_children<FTS, FTSENT>(MEMDET_NEXT(fts_children), stream,
                                                            options, __builtin_return_address(0));
}

MEMDET_EXPORT FTSENT64* fts64_children(FTS64* stream, int options) {
  return memdet::preload::ordered_fts_children<FTS64, FTSENT64>(
      MEMDET_NEXT(fts64_children), stream, options, __builtin_return_address(0));
}

// glibc's walks read the directories with its internal readdir, which no
// hook sees: passed through and counted.
MEMDET_EXPORT int nftw(const char* directory, __nftw_func_t function, int descriptors, int flags) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::g_unseen_nftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(nftw)(directory, function, descriptors, flags);
}

MEMDET_EXPORT int nftw64(const char* directory, __nftw64_func_t function, int descriptors,
                         int flags) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::g_unseen_nftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(nftw64)(directory, function, descriptors, flags);
}

MEMDET_EXPORT int ftw(const char* directory, __ftw_func_t function, int descriptors) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::g_unseen_ftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(ftw)(directory, function, descriptors);
}

MEMDET_EXPORT int ftw64(const char* directory, __ftw64_func_t function, int descriptors) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::g_unseen_ftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(ftw64)(directory, function, descriptors);
}

}  // extern "C"
