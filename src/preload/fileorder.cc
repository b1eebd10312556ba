// fileorder=: every directory listing the workload makes comes out in one
// chosen order, byte order of the names or a keyed hash of them
// (CONTRACT.md, "File order"). A DIR* serves a snapshot of the whole
// directory, ordered once; scandir, glob and fts reorder what libc built,
// because their internal reads of the directory never reach our readdir;
// nftw and ftw are walked here, as glibc walks them, over the snapshots.
#include "preload/fileorder.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fts.h>
#include <ftw.h>
#include <glob.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
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
  return !g_forked && launched_lineage(g_config.lineage) &&
         ordinal >= g_config.fileorder_window_low && ordinal <= g_config.fileorder_window_high;
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

enum class Api { kReaddir, kScandir, kGlob, kFts, kNftw, kFtw };

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
    case Api::kNftw:
      return "nftw";
    case Api::kFtw:
      return "ftw";
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
// the table full, or no memory. `api` names the listing in the report.
Snapshot* snapshot_of(DIR* dir, const void* caller, Api api = Api::kReaddir) {
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
  note_listing(ordinal, api, entries, caller,
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

// ---------------------------------------------------------------------------
// nftw and ftw, walked here: glibc's walk (io/ftw.c) reads with its
// internal readdir, which no hook sees, so the walk is done again over
// opendir/fdopendir and the ordered snapshots, step for step as glibc's.

static_assert(sizeof(struct stat) == sizeof(struct stat64));

// The walker's callback in the form the caller gave it.
struct Callback {
  __nftw_func_t nftw = nullptr;
  __nftw64_func_t nftw64 = nullptr;
  __ftw_func_t ftw = nullptr;
  __ftw64_func_t ftw64 = nullptr;
};

// One private anonymous mapping that grows with mremap; addressed by
// offset where it may grow meanwhile, because growing may move it.
struct Region {
  char* base = nullptr;
  size_t capacity = 0;

  // At least `size` bytes; false (errno ENOMEM) when they cannot be mapped.
  bool reserve(size_t size) {
    if (size <= capacity) {
      return true;
    }
    size_t wanted = capacity == 0 ? 16 * 1024 : capacity;
    while (wanted < size) {
      wanted *= 2;
    }
    void* grown = base == nullptr ? ::mmap(nullptr, wanted, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                  : ::mremap(base, capacity, wanted, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) {
      errno = ENOMEM;
      return false;
    }
    base = static_cast<char*>(grown);
    capacity = wanted;
    return true;
  }

  void drop() {
    if (base != nullptr) {
      ::munmap(base, capacity);
    }
    base = nullptr;
    capacity = 0;
  }
};

// A directory being walked. Its stream stays open, for fstatat, openat and
// fchdir relative to it, until a descendant needs the descriptor.
struct Level {
  DIR* dir = nullptr;       // null once closed
  int fd = -1;              // dirfd(dir) while open
  Level* deeper = nullptr;  // the level below it on the path walked now
};

// The (device, inode) of a directory already walked, in an open-addressed
// table; used false marks a free cell.
struct Known {
  dev_t device;
  ino64_t inode;
  bool used;
};

std::atomic<void*> g_next_open{nullptr};
std::atomic<void*> g_next_openat{nullptr};
std::atomic<void*> g_next_close{nullptr};

struct Walk {
  Callback callback;
  Api api = Api::kNftw;
  int flags = 0;
  const void* caller = nullptr;
  struct FTW ftw = {0, 0};
  dev_t device = 0;  // of the starting directory, for FTW_MOUNT

  // glibc keeps at most `descriptors` streams in a ring and closes the
  // oldest to open another; the open ones are always the deepest levels on
  // the path, so a count and the shallowest of them say the same.
  size_t streams_allowed = 1;
  size_t streams_open = 0;
  Level* shallowest_open = nullptr;

  Region path;   // the path of the object visited, what the callback gets
  Region names;  // each level's names, NUL-terminated, one level above the other
  size_t names_used = 0;
  Region known;  // known_cells Known cells, a power of two of them
  size_t known_cells = 0;
  size_t known_count = 0;
};

int call(Walk& walk, const struct stat64* st, int flag) {
  const char* path = walk.path.base;
  const auto* plain = reinterpret_cast<const struct stat*>(st);
  if (walk.callback.nftw != nullptr) {
    return walk.callback.nftw(path, plain, flag, &walk.ftw);
  }
  if (walk.callback.nftw64 != nullptr) {
    return walk.callback.nftw64(path, st, flag, &walk.ftw);
  }
  if (walk.callback.ftw != nullptr) {
    return walk.callback.ftw(path, plain, flag);
  }
  return walk.callback.ftw64(path, st, flag);
}

// The typeflag an entry is given: ftw knows no FTW_SL, FTW_SLN or FTW_DP.
int entry_flag(const Walk& walk, int flag) {
  if (walk.api == Api::kNftw) {
    return flag;
  }
  switch (flag) {
    case FTW_SL:
      return FTW_F;
    case FTW_DP:
      return FTW_D;
    case FTW_SLN:
      return FTW_NS;
    default:
      return flag;
  }
}

size_t known_mask(const Walk& walk) { return walk.known_cells - 1; }

size_t known_cell(const Walk& walk, dev_t device, ino64_t inode) {
  return static_cast<size_t>(mix64(inode ^ mix64(device))) & known_mask(walk);
}

bool is_known(const Walk& walk, const struct stat64& st) {
  if (walk.known_cells == 0) {
    return false;
  }
  const auto* cells = reinterpret_cast<const Known*>(walk.known.base);
  for (size_t at = known_cell(walk, st.st_dev, st.st_ino); cells[at].used;
       at = (at + 1) & known_mask(walk)) {
    if (cells[at].device == st.st_dev && cells[at].inode == st.st_ino) {
      return true;
    }
  }
  return false;
}

void insert_known(Walk& walk, dev_t device, ino64_t inode) {
  auto* cells = reinterpret_cast<Known*>(walk.known.base);
  size_t at = known_cell(walk, device, inode);
  while (cells[at].used) {
    at = (at + 1) & known_mask(walk);
  }
  cells[at] = Known{device, inode, true};
  ++walk.known_count;
}

// Remembers a directory walked: 0, or -1 (ENOMEM) as glibc's add_object.
int remember(Walk& walk, const struct stat64& st) {
  if ((walk.known_count + 1) * 2 > walk.known_cells) {
    // Twice the cells (mapped zeroed, so all free), and everything again.
    Region old = walk.known;
    size_t old_cells = walk.known_cells;
    size_t cells = old_cells == 0 ? 1024 : 2 * old_cells;
    Region grown;
    if (!grown.reserve(cells * sizeof(Known))) {
      return -1;
    }
    walk.known = grown;
    walk.known_cells = cells;
    walk.known_count = 0;
    const auto* old_known = reinterpret_cast<const Known*>(old.base);
    for (size_t i = 0; i < old_cells; ++i) {
      if (old_known[i].used) {
        insert_known(walk, old_known[i].device, old_known[i].inode);
      }
    }
    old.drop();
  }
  insert_known(walk, st.st_dev, st.st_ino);
  return 0;
}

void close_stream(Level* level) {
  int saved_errno = errno;
  MEMDET_NEXT(closedir)(level->dir);
  errno = saved_errno;
  level->dir = nullptr;
  level->fd = -1;
}

// Opens the stream of the directory the path names, below `parent` (null
// for the start). Returns false with errno from the open that failed.
bool open_level(Walk& walk, Level* parent, Level* level) {
  if (walk.streams_open == walk.streams_allowed) {
    Level* oldest = walk.shallowest_open;
    close_stream(oldest);
    --walk.streams_open;
    walk.shallowest_open = walk.streams_open == 0 ? nullptr : oldest->deeper;
  }

  const char* name = walk.path.base + walk.ftw.base;
  if (parent != nullptr && parent->fd != -1) {
    int fd = MEMDET_NEXT(openat)(parent->fd, name, O_RDONLY | O_DIRECTORY | O_NDELAY);
    if (fd != -1) {
      level->dir = ::fdopendir(fd);
      if (level->dir == nullptr) {
        int saved_errno = errno;
        MEMDET_NEXT(close)(fd);
        errno = saved_errno;
      }
    }
  } else {
    if ((walk.flags & FTW_CHDIR) == 0) {
      name = walk.path.base;
    } else if (name[0] == '\0') {
      name = ".";
    }
    level->dir = ::opendir(name);
  }
  if (level->dir == nullptr) {
    return false;
  }

  level->fd = ::dirfd(level->dir);
  ++walk.streams_open;
  if (walk.streams_open == 1) {
    walk.shallowest_open = level;
  }
  if (parent != nullptr) {
    parent->deeper = level;
  }
  return true;
}

// The directory's names other than . and .., in the library's order, onto
// the names stack (each NUL-terminated). The listing is one snapshot,
// dropped at once: the stream stays open only for its descriptor.
bool read_names(Walk& walk, DIR* dir) {
  Snapshot* snapshot = snapshot_of(dir, walk.caller, walk.api);
  int saved_errno = errno;
  bool fits = true;
  for (;;) {
    // A stream the table had no room for is read as it comes (and counted).
    struct dirent64* entry = snapshot != nullptr ? serve(snapshot) : MEMDET_NEXT(readdir64)(dir);
    if (entry == nullptr) {
      break;
    }
    if (is_dot(entry->d_name)) {
      continue;
    }
    size_t size = prim::length(entry->d_name) + 1;
    if (!walk.names.reserve(walk.names_used + size)) {
      fits = false;
      break;
    }
    std::memcpy(walk.names.base + walk.names_used, entry->d_name, size);
    walk.names_used += size;
  }
  if (snapshot != nullptr) {
    release(snapshot);
  }
  errno = fits ? saved_errno : ENOMEM;
  return fits;
}

int walk_directory(Walk& walk, const struct stat64* st, Level* parent);

// glibc's process_entry: the entry of `level` named at `name_offset` on
// the names stack.
int visit_entry(Walk& walk, Level* level, size_t name_offset, size_t name_length) {
  size_t needed = static_cast<size_t>(walk.ftw.base) + name_length + 2;
  if (walk.path.capacity < needed && !walk.path.reserve(2 * needed)) {
    return -1;
  }
  char* name = walk.path.base + walk.ftw.base;
  std::memcpy(name, walk.names.base + name_offset, name_length);
  name[name_length] = '\0';

  // Where fstatat cannot be used, the path is taken from the working
  // directory with FTW_CHDIR, else whole.
  const bool physical = (walk.flags & FTW_PHYS) != 0;
  const char* stat_path = (walk.flags & FTW_CHDIR) != 0 ? name : walk.path.base;
  struct stat64 st;
  std::memset(&st, 0, sizeof st);
  int status = level->fd != -1
                   ? ::fstatat64(level->fd, name, &st, physical ? AT_SYMLINK_NOFOLLOW : 0)
                   : (physical ? ::lstat64(stat_path, &st) : ::stat64(stat_path, &st));

  int result = 0;
  int flag = FTW_F;
  if (status < 0) {
    if (errno != EACCES && errno != ENOENT) {
      result = -1;
    } else if (physical) {
      flag = FTW_NS;
    } else {
      // A dangling symbolic link: reported with what lstat says of it.
      status = level->fd != -1 ? ::fstatat64(level->fd, name, &st, AT_SYMLINK_NOFOLLOW)
                               : ::lstat64(stat_path, &st);
      flag = status == 0 && S_ISLNK(st.st_mode) ? FTW_SLN : FTW_NS;
    }
  } else if (S_ISDIR(st.st_mode)) {
    flag = FTW_D;
  } else if (S_ISLNK(st.st_mode)) {
    flag = FTW_SL;
  }

  const bool same_device = (walk.flags & FTW_MOUNT) == 0 || st.st_dev == walk.device;
  if (result == 0 && (flag == FTW_NS || same_device)) {
    if (flag != FTW_D) {
      result = call(walk, &st, entry_flag(walk, flag));
    } else if (physical) {
      result = walk_directory(walk, &st, level);
    } else if (!is_known(walk, st)) {
      result = remember(walk, st);
      if (result == 0) {
        result = walk_directory(walk, &st, level);
      }
    }
  }

  if ((walk.flags & FTW_ACTIONRETVAL) != 0 && result == FTW_SKIP_SUBTREE) {
    result = 0;
  }
  return result;
}

// Closes a level's stream if a descendant has not closed it already.
void leave_level(Walk& walk, Level* level) {
  if (level->dir == nullptr) {
    return;
  }
  close_stream(level);
  --walk.streams_open;
  if (walk.streams_open == 0) {
    walk.shallowest_open = nullptr;
  }
}

// glibc's ftw_dir: the directory the path names, with `st` its stat.
int walk_directory(Walk& walk, const struct stat64* st, Level* parent) {
  const int previous_base = walk.ftw.base;
  Level level;
  if (!open_level(walk, parent, &level)) {
    return errno == EACCES ? call(walk, st, FTW_DNR) : -1;
  }

  int result = 0;
  if ((walk.flags & FTW_DEPTH) == 0) {
    result = call(walk, st, FTW_D);
    if (result != 0) {
      leave_level(walk, &level);
      return result;
    }
  }
  if ((walk.flags & FTW_CHDIR) != 0 && ::fchdir(level.fd) < 0) {
    leave_level(walk, &level);
    return -1;
  }

  // The entries' paths: this one's, a slash (unless it ends in one), a name.
  ++walk.ftw.level;
  char* end = walk.path.base + prim::length(walk.path.base);
  if (end[-1] != '/') {
    *end++ = '/';
  }
  walk.ftw.base = static_cast<int>(end - walk.path.base);

  // Read whole where glibc starts reading, then visited in order.
  const size_t first_name = walk.names_used;
  if (!read_names(walk, level.dir)) {
    result = -1;
  }
  const size_t names_end = walk.names_used;
  for (size_t at = first_name; at < names_end && result == 0;) {
    size_t name_length = prim::length(walk.names.base + at);
    result = visit_entry(walk, &level, at, name_length);
    at += name_length + 1;
  }
  walk.names_used = first_name;
  leave_level(walk, &level);

  if ((walk.flags & FTW_ACTIONRETVAL) != 0 && result == FTW_SKIP_SIBLINGS) {
    result = 0;
  }
  walk.path.base[walk.ftw.base - 1] = '\0';
  --walk.ftw.level;
  walk.ftw.base = previous_base;

  if (result == 0 && (walk.flags & FTW_DEPTH) != 0) {
    result = call(walk, st, FTW_DP);
  }

  const bool going_on =
      result == 0 || ((walk.flags & FTW_ACTIONRETVAL) != 0 && result != -1 && result != FTW_STOP);
  if (parent != nullptr && (walk.flags & FTW_CHDIR) != 0 && going_on) {
    // Back to the parent: by its descriptor while it is open, else by
    // "..", which from a directory reached through a symbolic link is not
    // where the walk came from (as in glibc).
    bool back = parent->dir != nullptr && ::fchdir(parent->fd) == 0;
    if (!back && ::chdir(walk.ftw.base == 1 ? "/" : "..") < 0) {
      result = -1;
    }
  }
  return result;
}

// glibc's ftw_startup. Returns false, having changed nothing, for the one
// case it does not walk: FTW_CHDIR with a working directory it cannot open
// (glibc then goes back to it by name, with getcwd's malloc).
bool walk_tree(Walk& walk, const char* start, int descriptors, int* result) {
  if (start[0] == '\0') {
    errno = ENOENT;
    *result = -1;
    return true;
  }
  int start_fd = -1;
  if ((walk.flags & FTW_CHDIR) != 0) {
    start_fd = MEMDET_NEXT(open)(".", O_RDONLY | O_DIRECTORY);
    if (start_fd == -1) {
      return false;
    }
  }

  walk.streams_allowed = descriptors < 1 ? 1 : static_cast<size_t>(descriptors);
  if (start_fd != -1 && walk.streams_allowed > 1) {
    --walk.streams_allowed;  // the descriptor of the working directory
  }
  size_t start_length = prim::length(start);
  size_t path_size = 2 * start_length > PATH_MAX ? 2 * start_length : PATH_MAX;
  if (!walk.path.reserve(path_size + 1)) {
    if (start_fd != -1) {
      MEMDET_NEXT(close)(start_fd);
    }
    errno = ENOMEM;
    *result = -1;
    return true;
  }

  // The path without trailing slashes (but "/" stays), and where its last
  // name starts.
  char* path = walk.path.base;
  std::memcpy(path, start, start_length + 1);
  char* end = path + start_length;
  while (end > path + 1 && end[-1] == '/') {
    --end;
  }
  *end = '\0';
  while (end > path && end[-1] != '/') {
    --end;
  }
  walk.ftw.base = static_cast<int>(end - path);
  walk.ftw.level = 0;

  int status = 0;
  if (start_fd != -1 && walk.ftw.base > 0) {
    if (walk.ftw.base == 1) {
      status = ::chdir("/");
    } else {
      char slash = path[walk.ftw.base - 1];
      path[walk.ftw.base - 1] = '\0';
      status = ::chdir(path);
      path[walk.ftw.base - 1] = slash;
    }
  }

  if (status == 0) {
    const char* name = path;
    if (start_fd != -1) {
      name = path + walk.ftw.base;
      name = name[0] == '\0' ? "." : name;
    }
    const bool physical = (walk.flags & FTW_PHYS) != 0;
    struct stat64 st;
    std::memset(&st, 0, sizeof st);
    if ((physical ? ::lstat64(name, &st) : ::stat64(name, &st)) < 0) {
      if (!physical && errno == ENOENT && ::lstat64(name, &st) == 0 && S_ISLNK(st.st_mode)) {
        status = call(walk, &st, entry_flag(walk, FTW_SLN));
      } else {
        status = -1;  // nothing to tell the callback
      }
    } else if (S_ISDIR(st.st_mode)) {
      walk.device = st.st_dev;
      if (!physical) {
        status = remember(walk, st);
      }
      if (status == 0) {
        status = walk_directory(walk, &st, nullptr);
      }
    } else {
      status = call(walk, &st, entry_flag(walk, S_ISLNK(st.st_mode) ? FTW_SL : FTW_F));
    }
    if ((walk.flags & FTW_ACTIONRETVAL) != 0 &&
        (status == FTW_SKIP_SUBTREE || status == FTW_SKIP_SIBLINGS)) {
      status = 0;
    }
  }

  int saved_errno = errno;
  if (start_fd != -1) {
    ::fchdir(start_fd);
    MEMDET_NEXT(close)(start_fd);
  }
  walk.path.drop();
  walk.names.drop();
  walk.known.drop();
  errno = saved_errno;
  *result = status;
  return true;
}

// nftw and nftw64 reject flags glibc's default version does not know.
constexpr int kWalkFlags = FTW_PHYS | FTW_MOUNT | FTW_CHDIR | FTW_DEPTH | FTW_ACTIONRETVAL;

// Serves one walk; false when it passes through (walk_tree).
bool ordered_walk(const char* start, const Callback& callback, Api api, int descriptors, int flags,
                  const void* caller, int* result) {
  if ((flags & ~kWalkFlags) != 0) {
    errno = EINVAL;
    *result = -1;
    return true;
  }
  Walk walk;
  walk.callback = callback;
  walk.api = api;
  walk.flags = flags;
  walk.caller = caller;
  return walk_tree(walk, start, descriptors, result);
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

// Walked by the library over its ordered snapshots (walk_tree); the one
// case it does not walk passes through, counted.
MEMDET_EXPORT int nftw(const char* directory, __nftw_func_t function, int descriptors, int flags) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::Callback callback;
    callback.nftw = function;
    int result = 0;
    if (memdet::preload::ordered_walk(directory, callback, memdet::preload::Api::kNftw, descriptors,
                                      flags, __builtin_return_address(0), &result)) {
      return result;
    }
    memdet::preload::g_unseen_nftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(nftw)(directory, function, descriptors, flags);
}

MEMDET_EXPORT int nftw64(const char* directory, __nftw64_func_t function, int descriptors,
                         int flags) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::Callback callback;
    callback.nftw64 = function;
    int result = 0;
    if (memdet::preload::ordered_walk(directory, callback, memdet::preload::Api::kNftw, descriptors,
                                      flags, __builtin_return_address(0), &result)) {
      return result;
    }
    memdet::preload::g_unseen_nftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(nftw64)(directory, function, descriptors, flags);
}

MEMDET_EXPORT int ftw(const char* directory, __ftw_func_t function, int descriptors) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::Callback callback;
    callback.ftw = function;
    int result = 0;
    if (memdet::preload::ordered_walk(directory, callback, memdet::preload::Api::kFtw, descriptors,
                                      0, __builtin_return_address(0), &result)) {
      return result;
    }
    memdet::preload::g_unseen_ftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(ftw)(directory, function, descriptors);
}

MEMDET_EXPORT int ftw64(const char* directory, __ftw64_func_t function, int descriptors) {
  if (MEMDET_UNLIKELY(ordering())) {
    memdet::preload::Callback callback;
    callback.ftw64 = function;
    int result = 0;
    if (memdet::preload::ordered_walk(directory, callback, memdet::preload::Api::kFtw, descriptors,
                                      0, __builtin_return_address(0), &result)) {
      return result;
    }
    memdet::preload::g_unseen_ftw.fetch_add(1, std::memory_order_relaxed);
  }
  return MEMDET_NEXT(ftw64)(directory, function, descriptors);
}

}  // extern "C"
