#include "preload/report.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "preload/clock.h"
#include "preload/counters.h"
#include "preload/entropy.h"
#include "preload/fileorder.h"
#include "preload/heap.h"
#include "preload/prim.h"
#include "preload/shim.h"
#include "preload/threads.h"

namespace memdet::preload {
namespace {

using prim::Writer;

void write_flag(Writer& out, const char* key, bool value) {
  out.text(key).tab().character(value ? '1' : '0').end();
}

void write_count(Writer& out, const char* key, uint64_t value) {
  out.text(key).tab().number(value).end();
}

// jemalloc's own view of its options: what MALLOC_CONF and the build
// really gave, which is what decides its arenas and hugepage use.
void write_jemalloc_options(Writer& out) {
  auto mallctl = g_lower.mallctl;
  if (mallctl == nullptr) {
    return;
  }
  out.text("jemalloc_opt").tab();
  bool first = true;
  auto name = [&](const char* key) -> Writer& {
    if (!first) {
      out.character(',');
    }
    first = false;
    return out.text(key).character('=');
  };

  unsigned narenas = 0;
  size_t size = sizeof narenas;
  if (mallctl("opt.narenas", &narenas, &size, nullptr, 0) == 0) {
    name("narenas").number(narenas);
  }
  for (const char* key : {"opt.percpu_arena", "opt.thp", "opt.metadata_thp"}) {
    const char* value = nullptr;
    size = sizeof value;
    if (mallctl(key, &value, &size, nullptr, 0) == 0 && value != nullptr) {
      name(key + 4).text(value);
    }
  }
  for (const char* key : {"opt.tcache", "opt.background_thread"}) {
    bool value = false;
    size = sizeof value;
    if (mallctl(key, &value, &size, nullptr, 0) == 0) {
      name(key + 4).character(value ? '1' : '0');
    }
  }
  for (const char* key : {"opt.dirty_decay_ms", "opt.muzzy_decay_ms"}) {
    ssize_t value = 0;
    size = sizeof value;
    if (mallctl(key, &value, &size, nullptr, 0) == 0) {
      name(key + 4).signed_number(value);
    }
  }
  out.end();
}

void write_kb(Writer& out, const char* key, const char* text, const char* field) {
  long value = text == nullptr ? -1 : prim::find_number_field(text, field);
  out.text(key).tab();
  if (value < 0) {
    out.character('-');
  } else {
    out.number(static_cast<uint64_t>(value));
  }
  out.end();
}

void write_memory(Writer& out) {
  char text[8192];
  const char* status = prim::read_file("/proc/self/status", text, sizeof text) > 0 ? text : nullptr;
  write_kb(out, "VmLck", status, "VmLck:");
  write_kb(out, "VmHWM", status, "VmHWM:");
  write_kb(out, "HugetlbPages", status, "HugetlbPages:");

  const char* rollup =
      prim::read_file("/proc/self/smaps_rollup", text, sizeof text) > 0 ? text : nullptr;
  write_kb(out, "AnonHugePages", rollup, "AnonHugePages:");
  write_kb(out, "Private_Hugetlb", rollup, "Private_Hugetlb:");
  write_kb(out, "Shared_Hugetlb", rollup, "Shared_Hugetlb:");
  long peak = g_counters.huge_peak_kb.load(std::memory_order_relaxed);
  if (peak >= 0) {
    out.text("AnonHugePages_peak").tab().number(static_cast<uint64_t>(peak)).end();
  }
}

// Pages per NUMA node, summed over the N<k>=<pages> fields of numa_maps.
constexpr int kMaxNodes = 64;

struct NodePages {
  uint64_t pages[kMaxNodes];
  int highest;
};

void add_numa_line(const char* line, size_t size, void* context) {
  auto& nodes = *static_cast<NodePages*>(context);
  for (size_t i = 0; i + 2 < size; ++i) {
    if (line[i] != ' ' || line[i + 1] != 'N') {
      continue;
    }
    size_t at = i + 2;
    int node = 0;
    bool digits = false;
    while (at < size && line[at] >= '0' && line[at] <= '9') {
      node = node * 10 + (line[at++] - '0');
      digits = true;
    }
    if (!digits || at >= size || line[at] != '=' || node >= kMaxNodes) {
      continue;
    }
    uint64_t pages = 0;
    for (++at; at < size && line[at] >= '0' && line[at] <= '9'; ++at) {
      pages = pages * 10 + static_cast<uint64_t>(line[at] - '0');
    }
    nodes.pages[node] += pages;
    if (node > nodes.highest) {
      nodes.highest = node;
    }
  }
}

void write_numa(Writer& out) {
  NodePages nodes = {};
  nodes.highest = -1;
  out.text("numa_pages").tab();
  if (!prim::for_each_line("/proc/self/numa_maps", add_numa_line, &nodes) || nodes.highest < 0) {
    out.character('-').end();
    return;
  }
  bool first = true;
  for (int node = 0; node <= nodes.highest; ++node) {
    if (nodes.pages[node] == 0) {
      continue;
    }
    if (!first) {
      out.character(',');
    }
    first = false;
    out.character('N').number(static_cast<uint64_t>(node)).character('=').number(nodes.pages[node]);
  }
  out.end();
}

// Builds "/proc/self/task/<tid>/<leaf>".
void task_path(pid_t tid, const char* leaf, char* path, size_t capacity) {
  char digits[prim::kDecimalDigits];
  const size_t count = prim::decimal(static_cast<unsigned>(tid), digits);
  static const char kPrefix[] = "/proc/self/task/";
  size_t used = 0;
  auto append = [&](const char* data, size_t size) {
    for (size_t i = 0; i < size && used + 1 < capacity; ++i) {
      path[used++] = data[i];
    }
  };
  append(kPrefix, sizeof kPrefix - 1);
  append(digits, count);
  append("/", 1);
  append(leaf, prim::length(leaf));
  path[used] = '\0';
}

// The CPU a live task last ran on: field 39 of its stat line.
int task_cpu(pid_t tid) {
  char path[64];
  char stat[1024];
  task_path(tid, "stat", path, sizeof path);
  if (prim::read_file(path, stat, sizeof stat) <= 0) {
    return -1;
  }
  const char* field = std::strrchr(stat, ')');
  if (field == nullptr) {
    return -1;
  }
  // After ") " comes field 3 (state); field 39 is 36 spaces further on.
  for (int spaces = 0; spaces < 37 && *field != '\0'; ++field) {
    spaces += *field == ' ';
  }
  int cpu = 0;
  bool digits = false;
  for (; *field >= '0' && *field <= '9'; ++field) {
    cpu = cpu * 10 + (*field - '0');
    digits = true;
  }
  return digits ? cpu : -1;
}

void write_cpu(Writer& out, int cpu) {
  if (cpu < 0) {
    out.character('-');
  } else {
    out.number(static_cast<uint64_t>(cpu));
  }
}

// What the program set through the interposed thread-count setters.
void write_count_setting(Writer& out) {
  CountSetting setting = thread_count_setting();
  write_count(out, "threads_set_calls", setting.calls);
  if (setting.calls == 0) {
    return;
  }
  out.text("threads_set_by").tab().text(count_setter_name(setting.last_setter)).end();
  out.text("threads_set").tab().signed_number(setting.last).end();
  out.text("threads_set_low").tab().signed_number(setting.low).end();
  out.text("threads_set_high").tab().signed_number(setting.high).end();
}

void write_threads(Writer& out) {
  write_count(out, "threads_created", g_counters.threads_created.load(std::memory_order_relaxed));
  if (!g_config.logs_threads()) {
    return;
  }
  write_count_setting(out);
  ThreadRecord* records = thread_records();
  size_t count = thread_record_count();
  for (size_t i = 0; i < count; ++i) {
    ThreadRecord& record = records[i];
    pid_t tid = record.tid.load(std::memory_order_acquire);
    bool exited = record.exited.load(std::memory_order_acquire);
    if (tid == 0 && exited) {
      continue;  // pthread_create failed
    }
    int last = exited ? record.last_cpu.load(std::memory_order_relaxed) : task_cpu(tid);
    if (last < 0) {
      last = record.last_cpu.load(std::memory_order_relaxed);
    }
    out.text("thread").tab().text(record.ordinal).tab().number(static_cast<uint64_t>(tid)).tab();
    write_cpu(out, tid == 0 ? -1 : record.assigned_cpu);
    out.tab();
    write_cpu(out, last);
    out.tab().character(record.collision ? '1' : '0').end();
  }
}

bool created_by_shim(pid_t tid) {
  ThreadRecord* records = thread_records();
  size_t count = thread_record_count();
  for (size_t i = 0; i < count; ++i) {
    if (records[i].tid.load(std::memory_order_acquire) == tid) {
      return true;
    }
  }
  return false;
}

// Tasks that did not come through pthread_create (a raw clone, or a thread
// of a runtime that bypasses libc): never pinned, so worth naming.
void write_unpinned_tasks(Writer& out) {
  if (!g_config.logs_threads()) {
    return;
  }
  int fd = ::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return;
  }
  pid_t main_tid = ::getpid();
  alignas(8) char entries[4096];
  for (;;) {
    long got = ::syscall(SYS_getdents64, fd, entries, sizeof entries);
    if (got <= 0) {
      break;
    }
    for (long at = 0; at < got;) {
      auto* entry = reinterpret_cast<struct dirent64*>(entries + at);
      at += entry->d_reclen;
      pid_t tid = 0;
      for (const char* c = entry->d_name; *c >= '0' && *c <= '9'; ++c) {
        tid = tid * 10 + (*c - '0');
      }
      if (tid == 0 || tid == main_tid || created_by_shim(tid)) {
        continue;
      }
      char path[64];
      char comm[64];
      task_path(tid, "comm", path, sizeof path);
      ssize_t size = prim::read_file(path, comm, sizeof comm);
      if (size <= 0) {
        continue;  // it exited meanwhile
      }
      if (comm[size - 1] == '\n') {
        comm[--size] = '\0';
      }
      out.text("unpinned_task").tab().number(static_cast<uint64_t>(tid)).tab().text(comm).end();
    }
  }
  ::close(fd);
}

const char* hugepages_name() {
  switch (g_config.hugepages) {
    case Hugepages::kHuge:
      return "huge";
    case Hugepages::kSmall:
      return "small";
    case Hugepages::kHugetlb:
      return g_config.hugetlb_shift == 30 ? "hugetlb-1G" : "hugetlb-2M";
    case Hugepages::kUnset:
      break;
  }
  return "-";
}

int open_report() {
  char path[kMaxValue + 32];
  size_t used = prim::length(g_config.report_prefix);
  std::memcpy(path, g_config.report_prefix, used);
  path[used++] = '.';
  char digits[16];
  size_t count = 0;
  auto pid = static_cast<unsigned>(::getpid());
  do {
    digits[sizeof digits - 1 - count++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0);
  std::memcpy(path + used, digits + sizeof digits - count, count);
  path[used + count] = '\0';

  int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    prim::warn("memdet preload: cannot write the report (is its directory there?)");
  }
  return fd;
}

}  // namespace

void write_numa_pages(Writer& out) { write_numa(out); }

void write_report() {
  if (!is_active() || g_config.report_prefix[0] == '\0') {
    return;
  }
  int saved_errno = errno;
  int fd = open_report();
  if (fd < 0) {
    errno = saved_errno;
    return;
  }
  Writer out(fd);

  out.text("memdet-preload\t1\n");
  out.text("active\t1\n");
  out.text("lower_allocator").tab().text(g_lower.library != nullptr ? g_lower.library : "-").end();
  write_flag(out, "lower_consistent", g_lower.consistent);
  write_jemalloc_options(out);

  out.text("heap_class").tab();
  if (g_config.heap_class >= 0) {
    out.number(static_cast<uint64_t>(g_config.heap_class));
  } else {
    out.character('-');
  }
  out.end();
  write_flag(out, "heap_random", g_config.heap_random);
  // Every counted allocation lands in one bin, so the bins sum to the count.
  CountTotals totals = sum_counters();
  uint64_t allocations = 0;
  for (uint64_t bin : totals.classes) {
    allocations += bin;
  }
  write_count(out, "allocations", allocations);
  out.text("mod64").tab();
  for (size_t bin = 0; bin < kClassBins; ++bin) {
    if (bin > 0) {
      out.character(',');
    }
    out.number(totals.classes[bin]);
  }
  out.end();
  write_count(out, "aligned_requests", totals.aligned_requests);

  if (g_config.uninit >= 0) {
    write_count(out, "uninit", static_cast<uint64_t>(g_config.uninit));
    out.text("uninit_probe").tab().text(heap_uninit_probe() ? "ok" : "bad").end();
  }
  if (g_config.hugepages != Hugepages::kUnset) {
    out.text("hugepages").tab().text(hugepages_name()).end();
    write_count(out, "huge_aligned", g_counters.huge_aligned.load(std::memory_order_relaxed));
    write_count(out, "madvise_suppressed",
                g_counters.madvise_suppressed.load(std::memory_order_relaxed));
  }
  if (g_config.hugepages == Hugepages::kHugetlb) {
    HugetlbCounts hugetlb = heap_hugetlb_counts();
    write_count(out, "hugetlb_page_kB",
                (static_cast<uint64_t>(1) << g_config.hugetlb_shift) / 1024);
    write_count(out, "hugetlb_mapped", hugetlb.mapped);
    write_count(out, "hugetlb_fallbacks", hugetlb.fallbacks);
    if (hugetlb.peak_kb >= 0) {
      write_count(out, "Hugetlb_peak", static_cast<uint64_t>(hugetlb.peak_kb));
    }
  }
  if (g_config.mlock) {
    int result = heap_mlock_result();
    out.text("mlock").tab();
    const char* name = prim::errno_name(result);
    if (result == 0) {
      out.character('0');
    } else if (name != nullptr) {
      out.text(name);
    } else {
      out.text("errno").number(static_cast<uint64_t>(result));
    }
    out.end();
  }

  write_memory(out);
  write_numa_pages(out);
  write_threads(out);
  write_unpinned_tasks(out);
  write_entropy_report(out);
  write_clock_report(out);
  write_fileorder_report(out);

  out.flush();
  ::close(fd);
  errno = saved_errno;
}

}  // namespace memdet::preload
