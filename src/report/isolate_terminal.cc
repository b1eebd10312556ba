#include "report/isolate_terminal.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "compare/finding_report.h"
#include "core/text.h"
#include "measure/rank_test.h"
#include "report/check_terminal.h"

namespace memdet::report {
namespace {

using protocol::FactorFinding;
using protocol::IsolateVerdict;

std::string percent(double rate) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f %%", 100.0 * rate);
  return text;
}

// "aslr", "aslr and cpu", "entropy, aslr and cpu".
std::string listed(const std::vector<std::string>& names) {
  if (names.size() < 2) {
    return join(names);
  }
  return join({names.begin(), names.end() - 1}) + " and " + names.back();
}

// The pinned values of every factor but `except`, as the pool held them;
// one the pool's runs could not hold is named apart.
std::string pinned_values(const protocol::IsolateReport& report, const std::string& except) {
  std::vector<std::string> values;
  std::vector<std::string> not_held;
  for (const factors::ProfileEntry& entry : report.pinned.entries) {
    if (entry.mode == factors::Mode::kPin && entry.applied == factors::Applied::kApplied &&
        except != entry.factor->name()) {
      if (report.not_held(entry.factor->name()).empty()) {
        values.push_back(std::string(entry.factor->name()) + "=" + entry.reference);
      } else {
        not_held.push_back(entry.factor->name());
      }
    }
  }
  return join(values) + (not_held.empty() ? "" : "; NOT held: " + join(not_held));
}

// One line per factor the pool's runs could not hold, with why.
void print_not_held(const protocol::IsolateReport& report, std::FILE* out) {
  for (const factors::ProfileEntry& entry : report.pinned.entries) {
    if (entry.mode != factors::Mode::kPin || entry.applied != factors::Applied::kApplied) {
      continue;
    }
    const std::string why = report.not_held(entry.factor->name());
    if (!why.empty()) {
      std::fprintf(out, "%s",
                   wrapped(std::string(entry.factor->name()) +
                               " could not be pinned in the pool's runs, so it may be the "
                               "cause: " +
                               why,
                           "  ")
                       .c_str());
    }
  }
}

std::string status_text(const FactorFinding& finding) {
  switch (finding.status) {
    case FactorFinding::Status::kUntried:
      return "not tried";
    case FactorFinding::Status::kUndecided:
      return "undecided";
    case FactorFinding::Status::kNoEffect:
      return "no";
    case FactorFinding::Status::kAllValues:
      return "no (all values)";
    case FactorFinding::Status::kUnconfirmed:
      return "unconfirmed";
    case FactorFinding::Status::kFailed:
      return "run failed";
    case FactorFinding::Status::kUnused:
      return "unused";
    case FactorFinding::Status::kChanges:
      switch (finding.cause) {
        case FactorFinding::Cause::kValue:
          return "YES (value)";
        case FactorFinding::Cause::kTiming:
          return "YES (timing)";
        case FactorFinding::Cause::kLayout:
          return "YES (layout)";
        case FactorFinding::Cause::kNone:
          return "YES";
      }
  }
  return "?";
}

std::string cause_text(const protocol::IsolateReport& report, const FactorFinding& finding) {
  std::string value;
  auto runs = report.factor_runs(finding.name);
  for (const protocol::RunRecord* run : runs) {
    for (const factors::FactorRecord& record : run->factors.records) {
      if (record.name == finding.name && run->perturbed == finding.value) {
        value = record.value;
      }
    }
  }
  switch (finding.cause) {
    case FactorFinding::Cause::kValue:
      return "depends on the value of " + finding.name + " (" + finding.name + "=" + value +
             " gave another result, and its replays repeated it)";
    case FactorFinding::Cause::kTiming:
      return "changes with " + finding.name + " (" + finding.name + "=" + value +
             "), but its replays differed from each other: timing under it";
    case FactorFinding::Cause::kLayout:
      return "layout-dependent (not replayable)";
    case FactorFinding::Cause::kNone:
      break;
  }
  return "changes the result";
}

// For each factor that changed the result, where its first differing run's
// allocations parted from the pool's (with --fingerprint).
void print_fingerprints(const protocol::IsolateReport& report, std::FILE* out) {
  for (const FactorFinding& finding : report.findings.factors) {
    if (finding.status != FactorFinding::Status::kChanges) {
      continue;
    }
    for (const protocol::RunRecord* run : report.factor_runs(finding.name)) {
      if (run->outcome < 0 || run->outcome == report.campaign.reference) {
        continue;
      }
      const protocol::OutcomeGroup& group =
          report.campaign.outcomes[static_cast<size_t>(run->outcome)];
      for (const std::string& line : group.fingerprint_lines) {
        std::fprintf(out, "%s",
                     wrapped("fingerprint, " + finding.name + ": " + line, "  ").c_str());
      }
      break;
    }
  }
}

// One line per factor whose counters moved against the pool's, and one for
// those too few runs could judge.
void print_counter_changes(const protocol::IsolateReport& report, std::FILE* out) {
  std::vector<std::string> unjudged;
  for (const protocol::CounterChange& change : report.counter_changes) {
    if (!change.judged) {
      unjudged.push_back(change.factor);
      continue;
    }
    if (!change.flagged) {
      continue;
    }
    char line[256];
    std::snprintf(line, sizeof line,
                  "counters: %s moved %s (median %.6g%s%s against the pool's %.6g; rank test "
                  "p = %.3g over %d against %d runs, %d counters tested)%s",
                  change.factor.c_str(), change.counter.c_str(), change.perturbed_median,
                  change.unit.empty() ? "" : " ", change.unit.c_str(), change.pool_median, change.p,
                  change.perturbed_runs, change.pool_runs, change.counters_tested,
                  change.results_same ? ": timing varied, results did not" : "");
    std::fprintf(out, "%s", wrapped(line, "  ").c_str());
  }
  if (!unjudged.empty()) {
    std::fprintf(
        out, "%s",
        wrapped("counters: not judged for " + join(unjudged) + " (fewer than " +
                    std::to_string(measure::kRankTestMinimum) + " runs with counters on a side)",
                "  ")
            .c_str());
  }
}

// How the first outcome that is not the pool's differs from it, as check
// shows it; isolate.json has every outcome's comparison.
void print_first_difference(const protocol::IsolateReport& report, std::FILE* out) {
  const protocol::CheckReport& campaign = report.campaign;
  for (const protocol::RunRecord& run : campaign.runs) {
    if (run.outcome < 0 || run.outcome == campaign.reference || campaign.reference < 0 ||
        campaign.outcomes[static_cast<size_t>(run.outcome)].within_tolerance) {
      continue;
    }
    const protocol::OutcomeGroup& group = campaign.outcomes[static_cast<size_t>(run.outcome)];
    std::fprintf(out, "\nhow run %s (%s) differs from the pool's outcome:\n", run.label.c_str(),
                 run.phase.c_str());
    for (const protocol::ArtifactComparison& comparison : group.vs_reference) {
      print_artifact_comparison(comparison, out);
    }
    return;
  }
}

void print_factor_table(const protocol::IsolateReport& report, std::FILE* out) {
  bool tried = std::any_of(report.findings.factors.begin(), report.findings.factors.end(),
                           [](const FactorFinding& finding) { return finding.runs > 0; });
  if (!tried) {
    if (!report.findings.factors.empty()) {
      std::fprintf(out, "no factor was perturbed: the campaign ended before any\n");
    }
    return;
  }
  std::fprintf(out, "\n  %-10s %-16s %4s  %-15s %6s  %s\n", "factor", "values tried", "runs",
               "changed?", "bound", "max diff");
  std::vector<std::string> untested;
  for (const FactorFinding& finding : report.findings.factors) {
    std::string values = join(report.values_tried(finding.name), ",");
    if (values.size() > 16) {
      values = values.substr(0, 13) + "...";
    }
    std::string bound = "-";
    if (finding.status == FactorFinding::Status::kNoEffect) {
      bound = "<" + percent(finding.bound);
    }
    std::string spread = finding.differing > 0 ? factor_spread(report, finding.name) : "-";
    std::string status = status_text(finding);
    std::vector<std::string> unproven = report.unproven(finding.name);
    if (!unproven.empty() && (finding.status == FactorFinding::Status::kNoEffect ||
                              finding.status == FactorFinding::Status::kAllValues)) {
      status = static_cast<int>(unproven.size()) == finding.runs ? "NOT TESTED" : "no, partly";
      bound = "-";
      untested.push_back(finding.name + ": " + std::to_string(unproven.size()) + " of " +
                         std::to_string(finding.runs) + " perturbed run" +
                         (finding.runs == 1 ? "" : "s") + " did not test it (" + unproven.front() +
                         ")");
    }
    if (finding.status == FactorFinding::Status::kUnused) {
      for (const protocol::RunRecord* run : report.factor_runs(finding.name)) {
        for (const factors::FactorRecord& record : run->factors.records) {
          if (record.name == finding.name && untested.size() < 64) {
            untested.push_back(finding.name + ": unused, so not tried further (" + record.observed +
                               ")");
          }
        }
        break;
      }
    }
    std::fprintf(out, "  %-10s %-16s %4d  %-15s %6s  %s\n", finding.name.c_str(), values.c_str(),
                 finding.runs, status.c_str(), bound.c_str(), spread.c_str());
  }
  for (const std::string& line : untested) {
    std::fprintf(out, "%s", wrapped(line, "  ").c_str());
  }
  print_counter_changes(report, out);
  print_fingerprints(report, out);
  for (const protocol::SkippedFactor& skipped : report.skipped) {
    std::fprintf(out, "%s", wrapped(skipped.name + " not tried: " + skipped.reason, "  ").c_str());
  }
  std::fprintf(out, "%s",
               wrapped("bound: with every perturbed run matching the pool, the factor's effect "
                       "rate is below this (95 %); all values: each value the factor has on "
                       "this host was tried once; max diff: the largest difference of a "
                       "perturbed run from the pool",
                       "  ")
                   .c_str());
}

void print_cure(const protocol::IsolateReport& report, std::FILE* out) {
  if (!report.cure) {
    return;
  }
  const protocol::CureFinding& cure = *report.cure;
  if (!cure.not_tried.empty()) {
    std::fprintf(out, "%s", wrapped("--try-fix: not tried: " + cure.not_tried, "").c_str());
    return;
  }
  char price[64] = "";
  if (cure.price > 0) {
    std::snprintf(price, sizeof price, "; wall time %.2fx the free runs'", cure.price);
  }
  std::string line = "--try-fix: " + cure.cure + ": ";
  if (cure.applied == 0) {
    line +=
        "not applied: the start-up hook never ran (python -I or -S ignores PYTHONPATH and "
        "sitecustomize, and a program that does not import torch through Python never "
        "reaches it)";
  } else if (!cure.refused.empty()) {
    line += "PyTorch refused an operation: " + cure.refused;
  } else if (!cure.agreed) {
    line += "the runs still differ with it on";
  } else if (cure.runs >= cure.needed) {
    line += "CURES it: " + std::to_string(cure.runs) + " runs with it on agreed" + price;
  } else {
    line += std::to_string(cure.runs) + " runs with it on agreed, " + std::to_string(cure.needed) +
            " would show it cures the divergence" + price;
  }
  if (cure.applied > 0 && cure.applied < cure.runs) {
    line += " (the hook ran in " + std::to_string(cure.applied) + " of " +
            std::to_string(cure.runs) + " runs)";
  }
  std::fprintf(out, "%s", wrapped(line, "").c_str());
}

// "train.py:12 `rng = np.random.default_rng()`", or the native caller
// with its symbol demangled.
std::string site_text(const protocol::CallSite& site) {
  if (!site.location.empty()) {
    return site.location + (site.line.empty() ? "" : " `" + site.line + "`");
  }
  std::string native = site.caller.substr(0, site.caller.find("|py:"));
  if (native.empty()) {
    return "an unknown caller";
  }
  const size_t colon = native.find(':');
  if (colon != std::string::npos) {
    int status = 0;
    char* plain = abi::__cxa_demangle(native.c_str() + colon + 1, nullptr, nullptr, &status);
    if (status == 0 && plain != nullptr) {
      native = native.substr(0, colon) + " (" + plain + ")";
    }
    std::free(plain);
  }
  return native;
}

// The cure for a missed seed, in the terms of the read that mattered.
std::string seed_cure(const protocol::IsolateReport& report) {
  bool python = false;
  bool native = false;
  bool torch = false;
  bool random_device = false;
  bool clock = false;
  for (const protocol::SeedRead& read : report.seed_reads) {
    clock = clock || read.factor == "clock";
    random_device = random_device || read.source == "random_device";
    torch = torch || read.site.caller.find("libc10") != std::string::npos;
    python = python || read.site.caller.find("|py:") != std::string::npos;
    native = native || (read.found && read.site.caller.find("|py:") == std::string::npos);
  }
  std::string cure = "pass an explicit, fixed seed to the generator that missed it";
  if (torch) {
    cure += ": torch.manual_seed(SEED) before torch draws";
  } else if (python) {
    cure += ": for numpy np.random.default_rng(SEED), for Python's random random.seed(SEED)";
  } else if (random_device) {
    cure +=
        ": seed the engine with a fixed value (std::mt19937 engine(SEED)) instead of "
        "std::random_device";
  } else if (!native) {
    cure +=
        ": for numpy np.random.default_rng(SEED), for torch torch.manual_seed(SEED), for "
        "Python's random random.seed(SEED)";
  }
  if (clock) {
    cure +=
        "; never a seed taken from the clock. If the program only prints the time, "
        "--mask the timestamps instead";
  }
  return cure + ".";
}

void print_seed_reads(const protocol::IsolateReport& report, std::FILE* out) {
  for (const protocol::SeedRead& read : report.seed_reads) {
    const std::string what = read.factor == "entropy" ? "entropy read" : "wall-clock read";
    if (!read.found) {
      std::fprintf(out, "%s",
                   wrapped("the " + what + " that matters was not named (" +
                               std::to_string(read.runs) + " runs): " + read.note,
                           "  ")
                       .c_str());
      continue;
    }
    const std::string runs = std::to_string(read.runs) + " run" + (read.runs == 1 ? "" : "s");
    std::string line = "the " + what + " that matters: read " + std::to_string(read.ordinal) +
                       " of " + std::to_string(read.reads) +
                       (read.source.empty() ? "" : " (" + read.source + ")") + ", from " +
                       site_text(read.site) + "; " +
                       (read.reads == 1 ? "confirmed in " + runs + " that moved it alone"
                                        : "found in " + runs + " that moved only some reads");
    if (!read.note.empty()) {
      line += " (" + read.note + ")";
    }
    std::fprintf(out, "%s", wrapped(line + ".", "  ").c_str());
  }
}

void print_listings(const protocol::IsolateReport& report, std::FILE* out) {
  if (report.listings.empty()) {
    return;
  }
  const std::optional<protocol::SeedRead>& search = report.listing_search;
  if (search && search->found) {
    const std::string runs = std::to_string(search->runs) + " run" + (search->runs == 1 ? "" : "s");
    std::fprintf(
        out, "%s",
        wrapped(search->reads == 1
                    ? "the listing that matters, the program's only one, confirmed in " + runs + ":"
                    : "the listing that matters, found in " + runs +
                          " that reordered only some of the " + std::to_string(search->reads) +
                          " listings:",
                "  ")
            .c_str());
  } else {
    std::string why = search && !search->note.empty() ? " (" + search->note + ")" : "";
    std::fprintf(
        out, "%s",
        wrapped("no one listing was found to matter alone" + why + "; the listings it could be:",
                "  ")
            .c_str());
  }
  for (const protocol::Listing& listing : report.listings) {
    std::fprintf(
        out, "%s",
        wrapped(listing.directory + " (" + listing.api + ", " + std::to_string(listing.entries) +
                    " entries), from " + site_text(listing.site),
                "    ")
            .c_str());
  }
}

// The search over sets of factors: each set tested, what it found, or
// what it still needed when the campaign stopped.
void print_search(const protocol::IsolateReport& report, std::FILE* out) {
  if (!report.findings.search) {
    return;
  }
  const protocol::SetSearchFinding& search = *report.findings.search;
  std::fprintf(out, "%s",
               wrapped("sets of the factors that vary when free (" + listed(search.candidates) +
                           "), each pinned with the rest free until " +
                           std::to_string(search.needed) + " runs agree or two differ:",
                       "  ")
                   .c_str());
  for (const protocol::PinnedSetTest& test : search.tests) {
    const std::string runs = std::to_string(test.runs) + (test.runs == 1 ? " run" : " runs");
    const std::string result = test.shown ? "enough (" + runs + " agreed)"
                               : test.refuted
                                   ? "NOT enough (runs differed within " + runs + ")"
                                   : "not shown yet (" + std::to_string(test.runs) + " of " +
                                         std::to_string(search.needed) + " runs made)";
    std::fprintf(out, "%s", wrapped(join(test.pinned, "+") + ": " + result, "    ").c_str());
  }
  if (!search.complete) {
    std::fprintf(out, "%s",
                 wrapped("the search is unfinished: " + join(search.testing, "+") +
                             " needs at least " + std::to_string(search.needs) +
                             " more agreeing run" + (search.needs == 1 ? "" : "s") +
                             ", and other sets may follow; the fewest factors shown enough so "
                             "far: " +
                             (search.narrowed == search.candidates ? std::string("every factor")
                                                                   : listed(search.narrowed)),
                         "  ")
                     .c_str());
  } else if (search.found.empty()) {
    std::fprintf(out, "%s",
                 wrapped("pinning " + listed(search.candidates) +
                             " with the other factors free is NOT enough: only every factor "
                             "pinned together is.",
                         "  ")
                     .c_str());
  } else {
    std::string price;
    if (report.search_price > 0) {
      char text[64];
      std::snprintf(text, sizeof text, " (wall time %.2fx the free runs')", report.search_price);
      price = text;
    }
    std::fprintf(
        out, "%s",
        wrapped("pinning " + listed(search.found) + (search.found.size() == 1 ? "" : " together") +
                    ", the rest free, is enough" + price +
                    (search.found.size() == 1 ? "." : "; leaving any one of them free was not."),
                "  ")
            .c_str());
  }
}

void print_verdict(const protocol::IsolateReport& report, std::FILE* out) {
  const protocol::IsolateFindings& found = report.findings;
  // The causes, and the factors whose value the result merely depends on.
  std::vector<std::string> blamed;
  std::vector<const FactorFinding*> values;
  for (size_t i = 0; i < found.factors.size() && i < report.settings.factors.size(); ++i) {
    const FactorFinding& finding = found.factors[i];
    if (protocol::explains_divergence(finding, report.settings.factors[i])) {
      blamed.push_back(finding.name);
    } else if (finding.status == FactorFinding::Status::kChanges) {
      values.push_back(&finding);
    }
  }
  switch (found.verdict) {
    case IsolateVerdict::kWorkloadFailed:
      std::fprintf(out,
                   "verdict: the workload FAILED in %d of %d free runs, before any factor "
                   "was tried.\n",
                   found.free_failed, found.free_runs);
      for (const protocol::RunRecord& run : report.campaign.runs) {
        if (!run.completed()) {
          std::fprintf(
              out, "%s",
              wrapped(
                  "run " + run.label + ": " + run_status(run) +
                      (run.launch.succeeded() ? "" : "; its stderr: " + run.dir + "/stderr.txt"),
                  "  ")
                  .c_str());
          break;
        }
      }
      return;
    case IsolateVerdict::kNotExplained:
      if (report.seed_sources_held()) {
        std::fprintf(out,
                     "verdict: NOT MEMORY: SCHEDULING INSIDE THE PROGRAM: with every factor\n"
                     "  pinned, OS entropy and the wall clock included\n"
                     "%s"
                     "  %d runs gave %d different outcomes. What varies is the order in which\n"
                     "  the program's threads or kernels do their work (atomics, work\n"
                     "  stealing, timing-based autotuning, non-deterministic kernels), or a\n"
                     "  value memdet cannot pin (the process id, the monotonic clock or the\n"
                     "  CPU's cycle counter). For PyTorch try\n"
                     "  torch.use_deterministic_algorithms(True); for TensorFlow\n"
                     "  TF_DETERMINISTIC_OPS=1; elsewhere, reductions in a fixed order.\n",
                     wrapped("(" + pinned_values(report, "") + ")", "  ").c_str(), found.pool_runs,
                     found.pool_outcomes);
        return;
      }
      std::fprintf(out,
                   "verdict: NOT EXPLAINED by any factor memdet pins: with every factor pinned\n"
                   "%s"
                   "  %d runs gave %d different outcomes. What varies is something memdet\n"
                   "  does not hold: most often scheduling inside the program (atomics, work\n"
                   "  stealing, timing-based autotuning, non-deterministic kernels), or a\n"
                   "  value it reads that memdet does not pin (the process id, the monotonic\n"
                   "  clock or the CPU's cycle counter, a seed drawn in a way the preload\n"
                   "  library cannot see). For PyTorch try\n"
                   "  torch.use_deterministic_algorithms(True); for TensorFlow\n"
                   "  TF_DETERMINISTIC_OPS=1; elsewhere, reductions in a fixed order.\n",
                   wrapped("(" + pinned_values(report, "") + ")", "  ").c_str(), found.pool_runs,
                   found.pool_outcomes);
      print_not_held(report, out);
      return;
    case IsolateVerdict::kUninitialised: {
      const FactorFinding* uninit = found.find("uninit");
      std::string value;
      for (const protocol::RunRecord* run : report.factor_runs("uninit")) {
        for (const factors::FactorRecord& record : run->factors.records) {
          if (uninit != nullptr && record.name == "uninit" && run->perturbed == uninit->value) {
            value = record.value;
          }
        }
      }
      std::fprintf(out, "%s",
                   wrapped("verdict: READS UNINITIALISED MEMORY: the result moves with the byte "
                           "that fills fresh allocations (uninit=" +
                               value +
                               " gave another result, and its replays repeated it). Any layout "
                               "factor can then change it too; fix the read before trusting "
                               "other findings.",
                           "")
                       .c_str());
      break;
    }
    case IsolateVerdict::kMissedSeed: {
      std::vector<std::string> sources;
      for (const std::string& name : blamed) {
        if (name == "entropy") {
          sources.push_back("OS entropy");
        } else if (name == "clock") {
          sources.push_back("the wall clock");
        }
      }
      std::fprintf(
          out, "%s",
          wrapped("verdict: MISSED SEED: the result follows " + join(sources, " and ") +
                      ". With every factor pinned the runs agree; another " + join(blamed, " or ") +
                      " value gives another result, and its replays repeat it.",
                  "")
              .c_str());
      print_seed_reads(report, out);
      for (const std::string& name : blamed) {
        if (name != "entropy" && name != "clock") {
          std::fprintf(
              out, "%s",
              wrapped("also: " + name + " " + cause_text(report, *found.find(name)), "  ").c_str());
        }
      }
      std::fprintf(out, "%s", wrapped("cure: " + seed_cure(report), "  ").c_str());
      break;
    }
    case IsolateVerdict::kDirectoryOrder:
      std::fprintf(out, "%s",
                   wrapped("verdict: REPRODUCIBLE AS RUN, BUT DEPENDS ON DIRECTORY ORDER: " +
                               std::to_string(found.free_runs) +
                               " free runs agreed, but another order of a directory listing "
                               "gave another result, and its replays repeated it. Another "
                               "machine or file system lists in another order, so the result "
                               "will differ there.",
                           "")
                       .c_str());
      print_listings(report, out);
      std::fprintf(out, "%s",
                   wrapped("cure: sort the listing (sorted(os.listdir(d)), "
                           "sorted(glob.glob(p)), sorted(os.scandir(d), key=lambda e: e.name), "
                           "or sort the entries of a directory_iterator).",
                           "  ")
                       .c_str());
      break;
    case IsolateVerdict::kLayoutDependent:
      if (blamed.empty() && found.search && !found.search->found.empty()) {
        // No factor is blamed alone: the set is the finding.
        const std::vector<std::string>& set = found.search->found;
        const std::string alone =
            set.size() == 1   ? "; its own perturbation was not shown to change the result: it "
                                "matters while left free."
            : set.size() == 2 ? "; neither alone was shown to change the result."
                              : "; none alone was shown to change the result.";
        std::fprintf(out, "%s",
                     wrapped("verdict: LAYOUT/TIMING-DEPENDENT: " + listed(set) +
                                 (set.size() == 1 ? "" : ", found together") +
                                 ": the free runs differ, and pinning " +
                                 (set.size() == 1 ? "it" : "them together") + " is enough" + alone,
                             "")
                         .c_str());
      } else if (blamed.empty()) {
        std::fprintf(out,
                     "verdict: LAYOUT/TIMING-DEPENDENT: the free runs differ, and with every\n"
                     "  factor pinned they agree, but no single factor's perturbation changed\n"
                     "  the result: a combination of them does.\n");
      } else {
        std::fprintf(out, "verdict: LAYOUT/TIMING-DEPENDENT: %s\n", join(blamed).c_str());
      }
      for (const FactorFinding& finding : found.factors) {
        if (std::find(blamed.begin(), blamed.end(), finding.name) != blamed.end()) {
          std::fprintf(out, "%s",
                       wrapped(finding.name + " " + cause_text(report, finding) + ", with " +
                                   pinned_values(report, finding.name),
                               "  ")
                           .c_str());
        }
      }
      break;
    case IsolateVerdict::kRareDivergence: {
      int differing = 0;
      int runs = 0;
      for (const FactorFinding& finding : found.factors) {
        differing += finding.differing;
        runs += finding.runs;
      }
      std::fprintf(out,
                   "verdict: NOT REPRODUCIBLE: RARE DIVERGENCE: the free runs agreed, but %d of "
                   "%d\n  perturbed runs differed and their confirmations did not: no factor "
                   "explains it.\n",
                   differing, runs);
      break;
    }
    case IsolateVerdict::kInconclusive:
      std::fprintf(out, "verdict: INCONCLUSIVE");
      if (found.pool_failed > 0) {
        std::fprintf(out, ": with every factor pinned the workload failed (%d run%s)\n",
                     found.pool_failed, found.pool_failed == 1 ? "" : "s");
      } else if (found.budget_exhausted) {
        std::fprintf(out, ": the budget of %d runs ran out%s\n", report.settings.budget,
                     found.free_differing > 0 ? "; the free runs differ" : "");
      } else if (found.free_differing > 0) {
        std::fprintf(out, ": the free runs differ, and no factor explains it\n");
      } else {
        std::fprintf(out, "\n");
      }
      for (const FactorFinding& finding : found.factors) {
        if (finding.status != FactorFinding::Status::kFailed) {
          continue;
        }
        for (const protocol::RunRecord* run : report.factor_runs(finding.name)) {
          if (!run->completed()) {
            std::fprintf(out, "%s",
                         wrapped("the workload FAILED with " + finding.name + " perturbed: run " +
                                     run->label + ", " + run_status(*run) +
                                     "; its stderr: " + run->dir + "/stderr.txt",
                                 "  ")
                             .c_str());
            break;
          }
        }
      }
      for (const FactorFinding& finding : found.factors) {
        if (finding.needs > 0 && (finding.status == FactorFinding::Status::kUndecided ||
                                  finding.status == FactorFinding::Status::kUntried)) {
          std::fprintf(out, "  %s needs at least %d more run%s\n", finding.name.c_str(),
                       finding.needs, finding.needs == 1 ? "" : "s");
        }
      }
      break;
    case IsolateVerdict::kReproducible:
      std::fprintf(out,
                   "verdict: REPRODUCIBLE AS RUN: %d free runs agreed (a further run differs "
                   "with\n  probability below %s, 95 %% confidence), and no factor's "
                   "perturbation\n  changed the result%s.\n",
                   found.free_runs, percent(protocol::no_difference_bound(found.free_runs)).c_str(),
                   values.empty() ? "" : " through layout or timing");
      break;
  }
  // Value findings attach to whichever verdict stands.
  for (const FactorFinding* finding : values) {
    if ((found.verdict == IsolateVerdict::kUninitialised && finding->name == "uninit") ||
        (found.verdict == IsolateVerdict::kDirectoryOrder && finding->name == "fileorder")) {
      continue;
    }
    std::string lead = found.verdict == IsolateVerdict::kReproducible ? "but" : "also:";
    std::fprintf(out, "%s",
                 wrapped(lead + " the result " + cause_text(report, *finding) + ", with " +
                             pinned_values(report, finding->name),
                         "  ")
                     .c_str());
    if (finding->name == "fileorder") {
      print_listings(report, out);
    }
  }
  if (found.verdict != IsolateVerdict::kMissedSeed) {
    print_seed_reads(report, out);
  }
  if (found.enough) {
    const protocol::EnoughFinding& enough = *found.enough;
    std::string what =
        enough.pinned.empty() ? std::string("every factor") : join(enough.pinned, " and ");
    if (enough.shown) {
      std::string price;
      if (report.enough_price > 0) {
        char text[64];
        std::snprintf(text, sizeof text, " (wall time %.2fx the free runs')", report.enough_price);
        price = text;
      }
      std::string how = enough.pinned.empty()
                            ? "the " + std::to_string(enough.runs) + " pinned runs agreed"
                            : std::to_string(enough.runs) + " runs with " +
                                  (enough.pinned.size() == 1 ? "it" : "them") +
                                  " pinned and the rest free agreed" + price;
      std::fprintf(out, "%s",
                   wrapped("pinning " + what + (enough.pinned.empty() ? " together" : "") +
                               " is enough: " + how + ".",
                           "  ")
                       .c_str());
    } else if (enough.refuted) {
      std::fprintf(out,
                   "  pinning %s is NOT enough: with it pinned and the rest free, runs "
                   "still differed.\n",
                   what.c_str());
    } else {
      std::fprintf(out,
                   "  whether pinning %s is enough is not shown: %d agreeing runs are needed, "
                   "%d made.\n",
                   what.c_str(), enough.needed, enough.runs);
    }
  }
  print_search(report, out);
  const compare::Tolerance& tolerance = report.campaign.options.tolerance;
  if (protocol::has_tolerance(tolerance)) {
    std::fprintf(out, "%s",
                 wrapped("runs whose tensors differ within the tolerance (" +
                             compare::tolerance_text(tolerance) +
                             ") counted as one result; text and other files as written.",
                         "  ")
                     .c_str());
  }
}

}  // namespace

std::string factor_spread(const protocol::IsolateReport& report, const std::string& factor) {
  uint64_t ulp = 0;
  bool has_ulp = false;
  double rel = 0;
  bool numbers = false;
  std::vector<int> seen;
  for (const protocol::RunRecord* run : report.factor_runs(factor)) {
    if (run->outcome < 0 || run->outcome == report.campaign.reference ||
        std::find(seen.begin(), seen.end(), run->outcome) != seen.end()) {
      continue;
    }
    seen.push_back(run->outcome);
    const protocol::OutcomeGroup& group =
        report.campaign.outcomes[static_cast<size_t>(run->outcome)];
    for (const protocol::ArtifactComparison& comparison : group.vs_reference) {
      if (comparison.numeric && comparison.numeric->differing > 0) {
        numbers = true;
        rel = std::max(rel, comparison.numeric->max_rel);
        if (comparison.numeric->has_ulp) {
          has_ulp = true;
          ulp = std::max(ulp, comparison.numeric->max_ulp);
        }
      }
      if (comparison.text && comparison.text->numbers_differing > 0) {
        numbers = true;
        rel = std::max(rel, comparison.text->max_rel);
        if (comparison.text->ulp_numbers > 0) {
          has_ulp = true;
          ulp = std::max(ulp, comparison.text->max_ulp);
        }
      }
    }
  }
  if (seen.empty()) {
    return "failed";
  }
  if (!numbers) {
    return "bytes";
  }
  char text[64];
  if (has_ulp) {
    if (ulp < 100000) {
      std::snprintf(text, sizeof text, "%llu ULP, rel %.2g", static_cast<unsigned long long>(ulp),
                    rel);
    } else {
      std::snprintf(text, sizeof text, "%.2g ULP, rel %.2g", static_cast<double>(ulp), rel);
    }
  } else {
    std::snprintf(text, sizeof text, "rel %.2g", rel);
  }
  return text;
}

std::string isolate_progress_what(const protocol::IsolateProgress& progress) {
  const protocol::IsolateStep& step = progress.step;
  std::string what = protocol::isolate_phase_name(step.phase);
  if (step.phase == protocol::IsolatePhase::kFactor) {
    for (const factors::FactorRecord& record : progress.run.factors.records) {
      if (record.name == step.factor) {
        what = step.factor + "=" + record.value;
      }
    }
    if (step.confirmation) {
      what += " (again)";
    }
  } else if (step.phase == protocol::IsolatePhase::kEnough) {
    what = "pinned " + (step.pinned.empty() ? std::string("all") : join(step.pinned, "+"));
  }
  return what;
}

void print_isolate_progress(const protocol::IsolateProgress& progress, std::FILE* out) {
  const protocol::RunRecord& run = progress.run;
  const protocol::IsolateStep& step = progress.step;
  const std::string what = isolate_progress_what(progress);
  const std::string status = run_status(run);
  std::string against;
  if (run.completed() && !progress.findings.reference.empty() &&
      (step.phase == protocol::IsolatePhase::kFactor ||
       step.phase == protocol::IsolatePhase::kPinned)) {
    against = progress.outcome == progress.findings.reference ? "  as pool" : "  DIFFERS from pool";
  }
  std::fprintf(out, "  run %s %-24s %8.2f s  %s%s\n", run.label.c_str(), what.c_str(),
               run.launch.wall_seconds, status.c_str(), against.c_str());
  for (const std::string& problem : run.factor_problems) {
    std::fprintf(out, "%s", wrapped(problem, "    ").c_str());
  }
  for (const launch::LeftBehind& process : run.launch.left_behind) {
    std::fprintf(out, "    left behind: pid %d (%s), ended by memdet\n", process.pid,
                 process.command.c_str());
  }
  std::fflush(out);
}

void print_isolate_summary(const protocol::IsolateReport& report, std::FILE* out) {
  const protocol::IsolateFindings& found = report.findings;
  std::fprintf(out, "\nmemdet isolate: %zu runs", report.steps.size());
  if (report.settings.budget > 0) {
    std::fprintf(out, " (budget %d)", report.settings.budget);
  }
  std::fprintf(out, "\nrecords: %s\n", report.campaign.campaign_dir.c_str());
  auto runs = [](int count) { return std::to_string(count) + (count == 1 ? " run" : " runs"); };
  std::string free = "free: " + runs(found.free_runs) +
                     (found.free_runs < 2 ? ""
                      : found.free_differing > 0
                          ? ", " + std::to_string(found.free_differing) + " differ from the first"
                          : ", all agree");
  std::string pool = found.pool_runs == 0 ? "pinned pool: not run"
                                          : "pinned pool: " + runs(found.pool_runs) +
                                                (found.pool_outcomes > 1 ? ", they differ"
                                                 : found.pool_failed > 0 ? ", a run failed"
                                                                         : ", all agree");
  std::fprintf(out, "%s; %s\n", free.c_str(), pool.c_str());
  if (!report.findings.reference.empty()) {
    std::fprintf(out, "%s", wrapped("pinned: " + pinned_values(report, ""), "").c_str());
    // Free runs that agree among themselves but not with the pool: pinning
    // moved a value the result depends on.
    const auto& made = report.campaign.runs;
    if (found.free_differing == 0 && !made.empty() && made.front().outcome >= 0 &&
        made.front().outcome != report.campaign.reference &&
        !report.campaign.outcomes[static_cast<size_t>(made.front().outcome)].within_tolerance) {
      std::fprintf(out, "%s",
                   wrapped("the pinned runs give another result than the free runs: pinning "
                           "moved something the result depends on (see the value findings)",
                           "")
                       .c_str());
    }
  }
  print_factor_table(report, out);
  print_first_difference(report, out);

  std::fprintf(out, "\n");
  print_isolate_verdict(report, out);
}

void print_isolate_verdict(const protocol::IsolateReport& report, std::FILE* out) {
  if (!report.input_error.empty()) {
    std::fprintf(out, "verdict: cannot judge: %s\n", printable(report.input_error).c_str());
    return;
  }
  print_verdict(report, out);
  print_cure(report, out);
  if (report.interrupted_by != 0) {
    std::fprintf(out, "interrupted by %s: the records of the runs so far are kept\n",
                 strsignal(report.interrupted_by));
  }
}

}  // namespace memdet::report
