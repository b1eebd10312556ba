#include "factors/profile.h"

#include <sys/random.h>

#include <algorithm>
#include <ctime>

namespace memdet::factors {
namespace {

struct Parsed {
  std::string name;
  std::string value;
  bool empty_value = false;  // "F=": a value was meant but none given
};

Parsed split_request(const std::string& text) {
  size_t equals = text.find('=');
  if (equals == std::string::npos) {
    return {text, {}, false};
  }
  return {text.substr(0, equals), text.substr(equals + 1), equals + 1 == text.size()};
}

std::string known_names() {
  std::string names;
  for (const Factor* factor : all_factors()) {
    names += (names.empty() ? "" : ", ") + std::string(factor->name());
  }
  return names;
}

Result<ProfileEntry*> entry_for(Profile& profile, const std::string& name, const char* flag) {
  for (ProfileEntry& entry : profile.entries) {
    if (name == entry.factor->name()) {
      return &entry;
    }
  }
  return make_error(std::string(flag) + " " + name + ": unknown factor (known: " + known_names() +
                    ", all)");
}

// Resolves one entry's value against the host; explicit requests that the
// host cannot give are errors, implied ones are recorded as not applicable.
Status resolve_entry(ProfileEntry& entry, const std::string& value, const Host& host) {
  const Factor& factor = *entry.factor;
  Resolution resolution = factor.resolve(value, host);
  switch (resolution.kind) {
    case Resolution::Kind::kOk:
      entry.reference = resolution.value;
      entry.applied = Applied::kApplied;
      return {};
    case Resolution::Kind::kNotApplicable:
      if (entry.explicit_request) {
        return make_error(std::string(factor.name()) +
                          ": cannot be applied here: " + resolution.reason);
      }
      entry.applied = Applied::kNotApplicable;
      entry.reason = resolution.reason;
      return {};
    case Resolution::Kind::kError:
      if (!entry.explicit_request) {
        entry.applied = Applied::kNotApplicable;
        entry.reason = resolution.reason;
        return {};
      }
      return make_error(std::string(factor.name()) + ": " + resolution.reason);
  }
  return {};
}

Status check_combinations(Profile& profile) {
  ProfileEntry* aslr = const_cast<ProfileEntry*>(profile.find("aslr"));
  ProfileEntry* stack = const_cast<ProfileEntry*>(profile.find("stack"));
  if (stack != nullptr && stack->applied == Applied::kApplied &&
      !(aslr != nullptr && aslr->mode == Mode::kPin && aslr->reference == "off")) {
    const std::string reason = "needs ASLR pinned off (--pin aslr): ASLR moves the stack every run";
    if (stack->explicit_request) {
      return make_error("stack: " + reason);
    }
    stack->applied = Applied::kNotApplicable;
    stack->reason = reason;
  }
  const ProfileEntry* thp = profile.find("thp");
  ProfileEntry* huge = const_cast<ProfileEntry*>(profile.find("hugepages"));
  if (thp != nullptr && huge != nullptr && thp->applied == Applied::kApplied &&
      thp->reference == "never" && huge->applied == Applied::kApplied &&
      (huge->mode == Mode::kPerturb || huge->reference == "huge")) {
    const std::string reason =
        "thp=never leaves only 4 KiB pages, so hugepages cannot take effect (measured: "
        "AnonHugePages 0 after MADV_HUGEPAGE)";
    if (huge->explicit_request) {
      return make_error("hugepages with thp=never: " + reason);
    }
    huge->applied = Applied::kNotApplicable;
    huge->reason = reason;
  }
  return {};
}

// Checks one requested factor: privileges for a system change, the value
// against the host, a perturbation that can really vary here.
Status resolve_one(ProfileEntry& entry, const Selection& selection, const std::string& value,
                   const Host& host) {
  const Factor& factor = *entry.factor;
  if (factor.system_wide() && entry.explicit_request) {
    if (!selection.system) {
      return make_error(std::string(factor.name()) +
                        ": changes a setting of the whole machine; add --system (as root) to "
                        "allow it");
    }
    if (!host.root) {
      return make_error(std::string(factor.name()) +
                        ": changing a system-wide setting needs root; run memdet as root");
    }
  }
  Status status = resolve_entry(entry, value, host);
  if (!status) {
    return status.error();
  }
  if (entry.mode == Mode::kPerturb && entry.applied == Applied::kApplied) {
    if (!factor.accepts_variant(entry.variant)) {
      return make_error("--perturb " + std::string(factor.name()) + "=" + entry.variant +
                        ": unknown perturbation");
    }
    std::string first = factor.perturbed_value(entry.reference, entry.variant, 1, entry.seed, host);
    if (first.empty() || first == entry.reference) {
      return make_error(std::string(factor.name()) +
                        ": cannot vary on this host (no value other than " + entry.reference + ")");
    }
  }
  return {};
}

}  // namespace

Host workload_host(const Profile& profile, const Host& host) {
  LaunchPlan plan;
  for (const ProfileEntry& entry : profile.entries) {
    if (entry.applied == Applied::kApplied && entry.factor->shapes_cpus()) {
      entry.factor->apply(entry.reference, host, plan);
    }
  }
  Host shaped = host;
  if (plan.controls.cpus) {
    shaped.allowed_cpus = *plan.controls.cpus;
  }
  return shaped;
}

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kFree:
      return "free";
    case Mode::kPin:
      return "pinned";
    case Mode::kPerturb:
      return "perturbed";
  }
  return "unknown";
}

const char* applied_name(Applied applied) {
  switch (applied) {
    case Applied::kFree:
      return "free";
    case Applied::kApplied:
      return "applied";
    case Applied::kNotApplicable:
      return "not applicable";
    case Applied::kRefused:
      return "refused";
  }
  return "unknown";
}

bool Profile::any_perturbed() const {
  return std::any_of(entries.begin(), entries.end(), [](const ProfileEntry& entry) {
    return entry.mode == Mode::kPerturb && entry.applied == Applied::kApplied;
  });
}

const ProfileEntry* Profile::find(const std::string& name) const {
  for (const ProfileEntry& entry : entries) {
    if (name == entry.factor->name()) {
      return &entry;
    }
  }
  return nullptr;
}

std::vector<SystemWrite> system_writes(const Profile& profile, const Host& host) {
  std::vector<SystemWrite> writes;
  for (const ProfileEntry& entry : profile.entries) {
    if (entry.applied != Applied::kApplied || !entry.explicit_request) {
      continue;
    }
    for (const SystemWrite& write : entry.factor->system_writes(entry.reference, host)) {
      writes.push_back(write);
    }
  }
  return writes;
}

uint64_t fresh_seed() {
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, 0) != sizeof seed) {
    seed = static_cast<uint64_t>(std::time(nullptr));
  }
  return seed;
}

Result<Profile> make_profile(const Selection& selection, const Host& host) {
  Profile profile;
  profile.seed = selection.seed ? *selection.seed : fresh_seed();
  for (const Factor* factor : all_factors()) {
    ProfileEntry entry;
    entry.factor = factor;
    entry.seed = mix_seed(profile.seed, factor->name());
    profile.entries.push_back(entry);
  }

  std::map<std::string, std::string> values;  // explicit values, by factor
  for (const std::string& text : selection.pins) {
    Parsed request = split_request(text);
    if (request.name == "all") {
      if (!request.value.empty()) {
        return make_error("--pin all takes no value");
      }
      for (ProfileEntry& entry : profile.entries) {
        if (entry.factor->in_all() && entry.mode == Mode::kFree) {
          entry.mode = Mode::kPin;
        }
      }
      continue;
    }
    auto entry = entry_for(profile, request.name, "--pin");
    if (!entry) {
      return entry.error();
    }
    if (request.empty_value) {
      return make_error("--pin " + text + ": the value after = is empty");
    }
    if ((*entry)->explicit_request && values[request.name] != request.value) {
      // The same value spelled two ways (heap and heap=0) is no conflict.
      Resolution first = (*entry)->factor->resolve(values[request.name], host);
      Resolution second = (*entry)->factor->resolve(request.value, host);
      if (first.kind != Resolution::Kind::kOk || second.kind != Resolution::Kind::kOk ||
          first.value != second.value) {
        return make_error("--pin " + request.name + ": given twice with different values");
      }
    }
    (*entry)->mode = Mode::kPin;
    (*entry)->explicit_request = true;
    values[request.name] = request.value;
  }
  for (const std::string& text : selection.perturbs) {
    Parsed request = split_request(text);
    auto entry = entry_for(profile, request.name, "--perturb");
    if (!entry) {
      return entry.error();
    }
    const Factor& factor = *(*entry)->factor;
    if (!factor.perturbable()) {
      return make_error("--perturb " + request.name + ": " + request.name +
                        " has no perturbation (pin it, or leave it free)");
    }
    if ((*entry)->explicit_request && (*entry)->mode == Mode::kPin) {
      return make_error("--pin " + request.name + " and --perturb " + request.name +
                        " contradict each other");
    }
    if (request.empty_value) {
      return make_error("--perturb " + text + ": the value after = is empty");
    }
    if ((*entry)->mode == Mode::kPerturb && (*entry)->variant != request.value) {
      return make_error("--perturb " + request.name + ": given twice with different values");
    }
    (*entry)->mode = Mode::kPerturb;
    (*entry)->explicit_request = true;
    (*entry)->variant = request.value;
  }
  for (const auto& [name, value] : selection.replay) {
    auto entry = entry_for(profile, name, "--replay");
    if (!entry) {
      return entry.error();
    }
    (*entry)->mode = Mode::kPin;
    (*entry)->explicit_request = true;
    values[name] = value;
  }

  // CPU-shaping factors first: the others resolve against the CPUs the
  // workload will really have.
  Host shaped = host;
  for (int phase = 0; phase < 2; ++phase) {
    for (ProfileEntry& entry : profile.entries) {
      if (entry.mode == Mode::kFree || entry.factor->shapes_cpus() != (phase == 0)) {
        continue;
      }
      Status status = resolve_one(entry, selection, values[entry.factor->name()], shaped);
      if (!status) {
        return status.error();
      }
    }
    if (phase == 0) {
      shaped = workload_host(profile, host);
    }
  }
  Status combined = check_combinations(profile);
  if (!combined) {
    return combined.error();
  }
  return profile;
}

bool Profile::needs_preload() const {
  return std::any_of(entries.begin(), entries.end(), [](const ProfileEntry& entry) {
    return entry.applied == Applied::kApplied && entry.factor->needs_preload();
  });
}

RunFactors plan_run(const Profile& profile, const Host& host, int perturbed) {
  RunFactors run;
  const Host shaped = workload_host(profile, host);
  std::vector<const ProfileEntry*> order;
  for (const ProfileEntry& entry : profile.entries) {
    if (entry.factor->shapes_cpus()) {
      order.push_back(&entry);
    }
  }
  for (const ProfileEntry& entry : profile.entries) {
    if (!entry.factor->shapes_cpus()) {
      order.push_back(&entry);
    }
  }
  for (const ProfileEntry* each : order) {
    const ProfileEntry& entry = *each;
    const Host& host_seen = entry.factor->shapes_cpus() ? host : shaped;
    if (entry.mode == Mode::kFree) {
      continue;
    }
    FactorRecord record;
    record.name = entry.factor->name();
    record.mode = entry.mode;
    record.reference = entry.reference;
    record.seed = entry.seed;
    record.applied = entry.applied;
    record.reason = entry.reason;
    if (entry.applied == Applied::kApplied) {
      std::string value = entry.reference;
      if (entry.mode == Mode::kPerturb && perturbed > 0) {
        value = entry.factor->perturbed_value(entry.reference, entry.variant, perturbed, entry.seed,
                                              host_seen);
        record.perturbed = true;
      }
      record.value = value;
      entry.factor->apply(value, host_seen, run.plan);
    }
    run.records.push_back(record);
  }
  return run;
}

void verify_run(const Profile& profile, const Observation& seen, RunFactors& run) {
  for (FactorRecord& record : run.records) {
    if (record.applied != Applied::kApplied) {
      continue;
    }
    const ProfileEntry* entry = profile.find(record.name);
    if (entry == nullptr) {
      continue;
    }
    // Without the library's report nothing shows that a factor working
    // inside the program took effect (a static program, or one that ended
    // through _exit): it was not applied, whatever was asked.
    if (entry->factor->needs_preload() && (seen.preload == nullptr || !seen.preload->present)) {
      record.applied = Applied::kRefused;
      record.reason = seen.preload == nullptr
                          ? "the preload library was not loaded"
                          : "the preload library did not report: " + seen.preload->error;
      continue;
    }
    entry->factor->verify(record.value, seen, record);
  }
}

std::vector<std::string> compare_with_reference(const RunFactors& reference, RunFactors& run) {
  std::vector<std::string> problems;
  for (FactorRecord& record : run.records) {
    if (record.applied != Applied::kApplied || record.measured.empty()) {
      continue;
    }
    auto match = std::find_if(reference.records.begin(), reference.records.end(),
                              [&](const FactorRecord& other) { return other.name == record.name; });
    if (match == reference.records.end() || match->measured.empty()) {
      continue;
    }
    bool perturbed = record.perturbed;
    bool same = match->measured == record.measured;
    if (perturbed && same) {
      record.note = "measured the same as the reference run (" + record.measured +
                    "): this run proves nothing about " + record.name;
      problems.push_back(record.name + ": " + record.note);
    } else if (!perturbed && !same) {
      record.note = "measured " + record.measured + ", the reference run " + match->measured +
                    ": not held still";
      problems.push_back(record.name + ": " + record.note);
    }
  }
  return problems;
}

}  // namespace memdet::factors
