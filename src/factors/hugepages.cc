// hugepages: which pages back large allocations. Pinned: small (4 KiB
// pages only: the preload library turns the program's own MADV_HUGEPAGE
// into a no-op, as numpy advises it on large arrays), huge (allocations of
// 2 MiB and more aligned to 2 MiB and advised: transparent huge pages), or
// hugetlb-2M / hugetlb-1G (allocations of at least the page size mapped
// from that hugetlb pool, MAP_HUGETLB; when the pool has no free page they
// get ordinary memory, and the library counts them). hugetlb-SIZE:N also
// sizes the pool to N pages for the campaign (vm nr_hugepages, with
// --system; journaled and put back). Perturbed: small and huge alternate.
// Verified just before exit: AnonHugePages for huge, the process's hugetlb
// use and the fallbacks for hugetlb.
#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "core/sys.h"
#include "core/text.h"
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

constexpr const char* kPools = "/sys/kernel/mm/hugepages";

struct HugetlbValue {
  bool valid = false;
  long long page_kb = 0;
  const char* size = "";     // "2M", "1G"
  long long pool_pages = 0;  // the pool size asked for; 0: the pool as it is
};

// hugetlb-2M, hugetlb-1G, optionally :N.
HugetlbValue parse_hugetlb(const std::string& value) {
  HugetlbValue parsed;
  if (!value.starts_with("hugetlb-")) {
    return parsed;
  }
  std::string rest = value.substr(8);
  std::string count;
  size_t colon = rest.find(':');
  if (colon != std::string::npos) {
    count = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (count.empty() || count.size() > 12 ||
        count.find_first_not_of("0123456789") != std::string::npos) {
      return parsed;
    }
    parsed.pool_pages = std::atoll(count.c_str());
    if (parsed.pool_pages == 0) {
      parsed.pool_pages = -1;  // told apart from "none given" for the message
    }
  }
  if (rest == "2M") {
    parsed.page_kb = 2048;
    parsed.size = "2M";
  } else if (rest == "1G") {
    parsed.page_kb = 1024 * 1024;
    parsed.size = "1G";
  } else {
    return parsed;
  }
  parsed.valid = true;
  return parsed;
}

std::string pool_dir(long long page_kb) {
  return std::string(kPools) + "/hugepages-" + std::to_string(page_kb) + "kB";
}

std::string page_words(long long page_kb) {
  return page_kb >= 1024 * 1024 ? std::to_string(page_kb / (1024 * 1024)) + " GiB"
                                : std::to_string(page_kb / 1024) + " MiB";
}

std::string gib(long long kb) { return std::to_string((kb + 512 * 1024) / (1024 * 1024)) + " GiB"; }

Resolution resolve_hugetlb(const std::string& value, const HugetlbValue& asked, const Host& host) {
  std::string pool = "the " + page_words(asked.page_kb) + " hugetlb pool";
  auto found = host.hugetlb_pools.find(asked.page_kb);
  if (found == host.hugetlb_pools.end()) {
    return not_applicable("this kernel has no " + page_words(asked.page_kb) + " hugetlb pool (" +
                          pool_dir(asked.page_kb) + ")");
  }
  const HugetlbPool& current = found->second;
  std::string base = std::string("hugetlb-") + asked.size;
  std::string nr = pool_dir(asked.page_kb) + "/nr_hugepages";

  if (asked.pool_pages < 0) {
    return bad_request(value + " asks for an empty pool; give at least one page");
  }
  if (asked.pool_pages > 0) {
    if (!host.system_allowed) {
      return bad_request(value + " sizes " + pool + ", a setting of the whole machine; add " +
                         "--system (as root), or size it beforehand and pin " + base);
    }
    if (!host.root) {
      return bad_request(value + " sizes " + pool + ", which needs root");
    }
    if (host.mem_total_kb > 0 && asked.pool_pages > host.mem_total_kb / asked.page_kb) {
      return bad_request(value + " asks for " + gib(asked.pool_pages * asked.page_kb) +
                         " of huge pages; the machine has " + gib(host.mem_total_kb));
    }
    return resolved(base + ":" + std::to_string(asked.pool_pages));
  }

  if (current.pages == 0) {
    return bad_request(pool + " is empty; size it for the run with --pin hugepages=" + base +
                       ":N --system (as root), or beforehand with `echo N > " + nr + "`");
  }
  if (current.free == 0) {
    return bad_request("all " + std::to_string(current.pages) + " pages of " + pool +
                       " are in use; grow it with --pin hugepages=" + base +
                       ":N --system (as root), or with `echo N > " + nr + "`");
  }
  return resolved(base);
}

// The pool's files as they read now, for the record: "-1" when unreadable.
long long pool_number(long long page_kb, const char* file) {
  auto text = sys::read_small_file(pool_dir(page_kb) + "/" + file);
  return text ? std::atoll(text->c_str()) : -1;
}

void verify_hugetlb(const HugetlbValue& asked, const Observation& seen, FactorRecord& record) {
  const PreloadReport& report = *seen.preload;
  long long mapped = report.number("hugetlb_mapped", -1);
  long long fallbacks = report.number("hugetlb_fallbacks", 0);
  long long used_kb = std::max(
      {report.number("Private_Hugetlb", -1) + std::max(0LL, report.number("Shared_Hugetlb", 0)),
       report.number("Hugetlb_peak", -1), report.number("HugetlbPages", -1)});
  std::string pool = page_words(asked.page_kb) + " pool";
  long long pages = pool_number(asked.page_kb, "nr_hugepages");
  std::string pool_note = "the " + pool + " holds " + std::to_string(pages) + " pages";
  if (asked.pool_pages > 0 && pages >= 0 && pages < asked.pool_pages) {
    pool_note += ", of " + std::to_string(asked.pool_pages) +
                 " asked (the kernel found no more free memory to make them from)";
  }
  if (mapped < 0) {
    record.verified = launch::CheckState::kUnread;
    record.observed = "the preload library did not report its hugetlb blocks";
    return;
  }

  record.observed =
      "blocks from the " + pool + ": " + std::to_string(mapped) +
      ", fallen back to ordinary pages: " + std::to_string(fallbacks) + "; hugetlb use " +
      (used_kb < 0 ? std::string("unread") : std::to_string(used_kb) + " kB") + "; " + pool_note;
  if (mapped == 0 && fallbacks > 0) {
    // Nothing came from the pool: the run had ordinary pages, whatever was
    // pinned.
    record.applied = Applied::kRefused;
    record.reason = "the " + pool + " had no room for any allocation of " +
                    page_words(asked.page_kb) + " or more (" + std::to_string(fallbacks) +
                    " got ordinary pages); " + pool_note;
    record.verified = launch::CheckState::kDiffers;
    record.measured = "no hugetlb pages";
    return;
  }
  if (mapped == 0) {
    record.verified = launch::CheckState::kNotObservable;
    record.observed +=
        ": the program made no allocation of " + page_words(asked.page_kb) + " or more";
    return;
  }
  if (fallbacks > 0) {
    record.verified = launch::CheckState::kDiffers;
    record.measured = "hugetlb pages, " + std::to_string(fallbacks) + " fallbacks";
    record.note = "the " + pool + " ran out: some large allocations got ordinary pages";
    return;
  }
  record.measured = "hugetlb pages in use";
  record.verified =
      used_kb > 0 ? launch::CheckState::kVerified : launch::CheckState::kNotObservable;
  if (used_kb <= 0) {
    record.observed += ": the program never touched them";
  }
}

class Hugepages final : public Factor {
 public:
  const char* name() const override { return "hugepages"; }
  const char* summary() const override {
    return "pages for large allocations: pin small (4 KiB only), huge (2 MiB aligned, "
           "MADV_HUGEPAGE), hugetlb-2M or hugetlb-1G (mapped from that hugetlb pool; "
           "hugetlb-2M:N sizes the pool to N pages with --system); perturb switches small and "
           "huge; verified by AnonHugePages or hugetlb use before exit";
  }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    std::string mode = value.empty() ? "small" : value;
    HugetlbValue hugetlb = parse_hugetlb(mode);
    if (hugetlb.valid) {
      return resolve_hugetlb(mode, hugetlb, host);
    }
    if (mode != "small" && mode != "huge") {
      return bad_request("unknown value '" + value +
                         "' (small, huge, hugetlb-2M, hugetlb-1G; hugetlb-2M:N or "
                         "hugetlb-1G:N to size the pool to N pages)");
    }
    if (host.thp_mode.empty()) {
      return not_applicable("this kernel has no transparent huge pages");
    }
    return resolved(mode);
  }

  std::vector<std::string> alternatives(const std::string&, const Host& host) const override {
    if (host.thp_mode == "never") {
      return {"small"};
    }
    return {"small", "huge"};
  }

  std::vector<SystemWrite> system_writes(const std::string& value, const Host&) const override {
    HugetlbValue hugetlb = parse_hugetlb(value);
    if (!hugetlb.valid || hugetlb.pool_pages <= 0) {
      return {};
    }
    return {{pool_dir(hugetlb.page_kb) + "/nr_hugepages", std::to_string(hugetlb.pool_pages)}};
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    // The library needs the page size only; the pool is sized before the run.
    plan.preload["hugepages"] = value.substr(0, value.find(':'));
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    HugetlbValue hugetlb = parse_hugetlb(value);
    if (hugetlb.valid) {
      verify_hugetlb(hugetlb, seen, record);
      return;
    }
    // A program that frees its large arrays before exit (Python does) shows
    // them only in the peak taken before each large free.
    long long huge_kb = std::max(seen.preload->number("AnonHugePages", -1),
                                 seen.preload->number("AnonHugePages_peak", -1));
    long long aligned = seen.preload->number("huge_aligned", 0);
    if (huge_kb < 0) {
      record.verified = launch::CheckState::kUnread;
      record.observed = "AnonHugePages was not read";
      return;
    }
    record.observed = "AnonHugePages " + std::to_string(huge_kb) + " kB";
    record.measured = huge_kb > 0 ? "huge pages in use" : "no huge pages";
    if (value == "small") {
      record.verified = huge_kb == 0 ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
    } else if (huge_kb > 0) {
      record.verified = launch::CheckState::kVerified;
    } else if (aligned == 0) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed += ": the program made no allocation of 2 MiB or more";
    } else {
      record.verified = launch::CheckState::kDiffers;
      record.observed += " after " + std::to_string(aligned) +
                         " advised allocations (the kernel found no free huge page?)";
    }
  }
};

}  // namespace

const Factor& hugepages_factor() {
  static const Hugepages factor;
  return factor;
}

}  // namespace memdet::factors
