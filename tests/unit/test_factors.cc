// The factor framework against a synthetic host: what --pin and --perturb
// resolve to, which values perturbed runs take, and which requests fail.
// Nothing here reads the machine the tests run on.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "factors/profile.h"

namespace memdet::factors {
namespace {

launch::CpuSet cpus(const std::string& list) { return *launch::parse_cpu_list(list); }

// Four CPUs on two nodes, THP in madvise mode, three allocators, no
// privileges.
Host synthetic_host() {
  Host host;
  host.allowed_cpus = cpus("0-3");
  host.nodes = {{0, cpus("0-1")}, {1, cpus("2-3")}};
  host.thp_mode = "madvise";
  host.allocators = {{"glibc", ""},
                     {"jemalloc", "/synthetic/libjemalloc.so.2"},
                     {"tcmalloc", "/synthetic/libtcmalloc_minimal.so.4"}};
  host.preload_library = "/synthetic/libmemdet_preload.so";
  return host;
}

Host one_node_host() {
  Host host = synthetic_host();
  host.nodes = {{0, cpus("0-3")}};
  return host;
}

Result<Profile> profile_for(const Host& host, std::vector<std::string> pins,
                            std::vector<std::string> perturbs = {}, uint64_t seed = 1) {
  Selection selection;
  selection.pins = std::move(pins);
  selection.perturbs = std::move(perturbs);
  selection.seed = seed;
  return make_profile(selection, host);
}

const FactorRecord* record_of(const RunFactors& run, const std::string& name) {
  for (const FactorRecord& record : run.records) {
    if (record.name == name) {
      return &record;
    }
  }
  return nullptr;
}

// The pins a factor needs beside its own perturbation.
std::vector<std::string> companions(const std::string& name) {
  if (name == "stack") {
    return {"aslr"};
  }
  return {};
}

// The values of perturbed runs 1..count of `request`.
std::vector<std::string> perturbed_values(const Host& host, const std::string& request, int count,
                                          uint64_t seed = 1) {
  std::string name = request.substr(0, request.find('='));
  auto profile = profile_for(host, companions(name), {request}, seed);
  EXPECT_TRUE(profile.ok()) << request << ": " << profile.error().message;
  std::vector<std::string> values;
  if (!profile) {
    return values;
  }
  for (int k = 1; k <= count; ++k) {
    RunFactors run = plan_run(*profile, host, k);
    const FactorRecord* record = record_of(run, name);
    EXPECT_NE(record, nullptr) << request;
    values.push_back(record != nullptr ? record->value : "");
  }
  return values;
}

std::string reference_of(const Host& host, const std::string& request) {
  std::string name = request.substr(0, request.find('='));
  auto profile = profile_for(host, companions(name), {request});
  return profile ? profile->find(name)->reference : "";
}

// Asserts that the first `space` perturbed values are the expected ones,
// each once, and that run space + 1 starts the round again.
void expect_cycle(const std::string& request, std::set<std::string> expected) {
  Host host = synthetic_host();
  const int space = static_cast<int>(expected.size());
  std::vector<std::string> values = perturbed_values(host, request, space + 1);
  ASSERT_EQ(values.size(), static_cast<size_t>(space + 1));
  std::set<std::string> first_round(values.begin(), values.begin() + space);
  EXPECT_EQ(first_round, expected) << request;
  EXPECT_EQ(values[space], values[0]) << request;
}

TEST(Factors, PerturbedValuesDifferFromTheReference) {
  Host host = synthetic_host();
  int checked = 0;
  for (const Factor* factor : all_factors()) {
    if (!factor->perturbable()) {
      continue;
    }
    std::string name = factor->name();
    std::string reference = reference_of(host, name);
    ASSERT_FALSE(reference.empty()) << name;
    for (const std::string& value : perturbed_values(host, name, 40)) {
      EXPECT_NE(value, reference) << name;
      EXPECT_FALSE(value.empty()) << name;
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Factors, AReferenceRunTakesThePinnedValue) {
  Host host = synthetic_host();
  auto profile = profile_for(host, {"aslr"}, {"heap", "stack", "env", "noise"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  RunFactors reference = plan_run(*profile, host, 0);
  for (const FactorRecord& record : reference.records) {
    EXPECT_EQ(record.value, record.reference) << record.name;
    EXPECT_FALSE(record.perturbed) << record.name;
  }
  RunFactors perturbed = plan_run(*profile, host, 1);
  EXPECT_TRUE(record_of(perturbed, "heap")->perturbed);
  EXPECT_FALSE(record_of(perturbed, "aslr")->perturbed);
}

TEST(Factors, SmallSpacesAreVisitedWholeBeforeAnyRepeat) {
  expect_cycle("heap", {"16", "32", "48"});
  expect_cycle("threads", {"1", "2", "3"});
  expect_cycle("allocator", {"jemalloc", "tcmalloc"});
  expect_cycle("aslr", {"on"});
  expect_cycle("hugepages", {"huge"});
  expect_cycle("numa", {"bind:1", "interleave:0-1"});

  // Every order of four CPUs but the reference's.
  std::set<std::string> orders;
  std::vector<int> order = {0, 1, 2, 3};
  while (std::next_permutation(order.begin(), order.end())) {
    orders.insert(std::to_string(order[0]) + "," + std::to_string(order[1]) + "," +
                  std::to_string(order[2]) + "," + std::to_string(order[3]));
  }
  ASSERT_EQ(orders.size(), 23u);
  expect_cycle("cpu", orders);
}

TEST(Factors, LargeSpacesFollowTheSeed) {
  Host host = synthetic_host();
  for (const char* request : {"uninit", "env", "stack", "heap=random"}) {
    std::vector<std::string> first = perturbed_values(host, request, 12, 1);
    std::vector<std::string> again = perturbed_values(host, request, 12, 1);
    std::vector<std::string> other = perturbed_values(host, request, 12, 2);
    EXPECT_EQ(first, again) << request;
    EXPECT_NE(first, other) << request;
    // Within one campaign the runs differ from each other too.
    EXPECT_EQ(std::set<std::string>(first.begin(), first.end()).size(), first.size()) << request;
  }
}

TEST(Factors, EnvVariesOnlyThePythonHashSeed) {
  Host host = synthetic_host();
  auto profile = profile_for(host, {}, {"env"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  RunFactors reference = plan_run(*profile, host, 0);
  RunFactors perturbed = plan_run(*profile, host, 1);
  EXPECT_EQ(reference.plan.env.at("PYTHONHASHSEED"), "0000000000");
  EXPECT_NE(perturbed.plan.env.at("PYTHONHASHSEED"), "0000000000");
  EXPECT_EQ(perturbed.plan.env.at("PYTHONHASHSEED").size(), 10u);
  for (const auto& [name, value] : reference.plan.env) {
    if (name != "PYTHONHASHSEED") {
      EXPECT_EQ(perturbed.plan.env.at(name), value) << name;
    }
  }
}

// The error names the factor (or the factor and value) it is about.
void expect_refused(const Host& host, std::vector<std::string> pins,
                    std::vector<std::string> perturbs, const std::string& names) {
  auto profile = profile_for(host, pins, perturbs);
  ASSERT_FALSE(profile.ok()) << names;
  EXPECT_NE(profile.error().message.find(names), std::string::npos)
      << "expected '" << names << "' in: " << profile.error().message;
}

TEST(Factors, BadRequestsNameTheFactor) {
  Host host = synthetic_host();
  expect_refused(host, {"bogus"}, {}, "--pin bogus: unknown factor");
  expect_refused(host, {}, {"bogus"}, "--perturb bogus: unknown factor");
  expect_refused(host, {"heap=7"}, {}, "heap: unknown value '7'");
  expect_refused(host, {"aslr=maybe"}, {}, "aslr: unknown value 'maybe'");
  expect_refused(host, {}, {"heap=sideways"}, "--perturb heap=sideways: unknown perturbation");
  expect_refused(host, {}, {"thp"}, "--perturb thp: thp has no perturbation");
  expect_refused(host, {}, {"mlock"}, "--perturb mlock: mlock has no perturbation");
  expect_refused(host, {"heap"}, {"heap"}, "--pin heap and --perturb heap contradict");
  expect_refused(host, {"heap=16", "heap=32"}, {}, "--pin heap: given twice");
  expect_refused(host, {"stack"}, {}, "stack: needs ASLR pinned off");
  expect_refused(host, {"aslr=on", "stack"}, {}, "stack: needs ASLR pinned off");
  expect_refused(host, {"thp=never", "hugepages=huge"}, {}, "hugepages with thp=never");
  expect_refused(host, {"thp=never"}, {"hugepages"}, "hugepages with thp=never");
  expect_refused(host, {"thp=always"}, {}, "thp: thp=always changes the machine's mode");
  expect_refused(host, {"mlock"}, {}, "mlock: refused: no CAP_IPC_LOCK");
  expect_refused(host, {"all=1"}, {}, "--pin all takes no value");
  expect_refused(host, {"numa=bind:2"}, {}, "numa: NUMA node 2 does not exist");
  expect_refused(one_node_host(), {"numa=bind:1"}, {}, "numa: NUMA node 1 does not exist");
  expect_refused(one_node_host(), {}, {"numa"}, "numa: cannot be applied here: one NUMA node");

  Host without_tcmalloc = synthetic_host();
  without_tcmalloc.allocators.erase("tcmalloc");
  expect_refused(without_tcmalloc, {"allocator=tcmalloc"}, {},
                 "allocator: tcmalloc is not installed");

  Host glibc_only = synthetic_host();
  glibc_only.allocators = {{"glibc", ""}};
  expect_refused(glibc_only, {}, {"allocator"}, "allocator: cannot vary on this host");
}

TEST(Factors, PrivilegesLiftTheirRefusals) {
  Host host = synthetic_host();
  host.cap_ipc_lock = true;
  EXPECT_TRUE(profile_for(host, {"mlock"}).ok());
  host.cap_ipc_lock = false;
  host.memlock_unlimited = true;
  EXPECT_TRUE(profile_for(host, {"mlock"}).ok());
}

TEST(Factors, PinAllPinsEveryFactorOfAllAndLeavesTheRestFree) {
  Host host = synthetic_host();
  auto profile = profile_for(host, {"all"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  for (const ProfileEntry& entry : profile->entries) {
    EXPECT_EQ(entry.mode, entry.factor->in_all() ? Mode::kPin : Mode::kFree)
        << entry.factor->name();
  }
  EXPECT_EQ(profile->find("mlock")->mode, Mode::kFree);
  EXPECT_EQ(profile->find("noise")->mode, Mode::kFree);
  EXPECT_FALSE(profile->any_perturbed());

  RunFactors run = plan_run(*profile, host, 3);
  EXPECT_EQ(record_of(run, "mlock"), nullptr);
  EXPECT_EQ(record_of(run, "noise"), nullptr);
  for (const FactorRecord& record : run.records) {
    EXPECT_EQ(record.mode, Mode::kPin) << record.name;
    if (record.applied == Applied::kApplied) {
      EXPECT_EQ(record.value, record.reference) << record.name;
    }
  }
  EXPECT_EQ(record_of(run, "heap")->value, "0");
  EXPECT_EQ(record_of(run, "aslr")->value, "off");
  EXPECT_EQ(record_of(run, "stack")->applied, Applied::kApplied);
  EXPECT_EQ(record_of(run, "numa")->value, "bind:0");
}

TEST(Factors, PinAllWithOnePerturbationPerturbsItAndPinsTheRest) {
  Host host = synthetic_host();
  auto profile = profile_for(host, {"all"}, {"heap"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  for (const ProfileEntry& entry : profile->entries) {
    Mode expected = entry.factor->name() == std::string("heap") ? Mode::kPerturb
                    : entry.factor->in_all()                    ? Mode::kPin
                                                                : Mode::kFree;
    EXPECT_EQ(entry.mode, expected) << entry.factor->name();
  }
  RunFactors reference = plan_run(*profile, host, 0);
  RunFactors perturbed = plan_run(*profile, host, 1);
  EXPECT_EQ(record_of(reference, "heap")->value, "0");
  EXPECT_NE(record_of(perturbed, "heap")->value, "0");
  EXPECT_EQ(record_of(perturbed, "cpu")->value, record_of(reference, "cpu")->value);
}

TEST(Factors, ImpliedRequestsTheHostCannotGiveAreNotApplicable) {
  Host host = one_node_host();
  host.thp_mode.clear();
  auto profile = profile_for(host, {"all"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  for (const char* name : {"numa", "thp", "hugepages"}) {
    EXPECT_EQ(profile->find(name)->applied, Applied::kNotApplicable) << name;
    EXPECT_FALSE(profile->find(name)->reason.empty()) << name;
  }
}

// noise: the CPUs set aside are the same in every run; only the value says
// whether the antagonist runs there.
TEST(Factors, NoiseSetsTheSameCpusAsideInEveryRun) {
  Host host = synthetic_host();
  auto profile = profile_for(host, {}, {"noise"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  EXPECT_EQ(profile->find("noise")->reference, "idle:3");

  RunFactors reference = plan_run(*profile, host, 0);
  RunFactors perturbed = plan_run(*profile, host, 1);
  EXPECT_EQ(record_of(reference, "noise")->value, "idle:3");
  EXPECT_EQ(record_of(perturbed, "noise")->value, "stream:3");
  ASSERT_TRUE(reference.plan.controls.cpus.has_value());
  EXPECT_EQ(*reference.plan.controls.cpus, cpus("0-2"));
  EXPECT_EQ(perturbed.plan.controls.cpus, reference.plan.controls.cpus);
}

TEST(Factors, NoiseTakesCpusAndAnIntensity) {
  Host host = synthetic_host();
  auto pinned = profile_for(host, {"noise=idle:2-3"});
  ASSERT_TRUE(pinned.ok()) << pinned.error().message;
  EXPECT_EQ(*plan_run(*pinned, host, 0).plan.controls.cpus, cpus("0-1"));
  EXPECT_EQ(profile_for(host, {"noise=idle"})->find("noise")->reference, "idle:3");

  std::vector<std::string> half = perturbed_values(host, "noise=stream50", 3);
  EXPECT_EQ(half, (std::vector<std::string>{"stream50:3", "stream50:3", "stream50:3"}));

  // A recorded perturbed value replays as a pin.
  Selection replay;
  replay.replay = {{"noise", "stream:3"}};
  replay.seed = 1;
  auto replayed = make_profile(replay, host);
  ASSERT_TRUE(replayed.ok()) << replayed.error().message;
  EXPECT_EQ(replayed->find("noise")->reference, "stream:3");
}

TEST(Factors, NoiseNarrowsANumaBinding) {
  Host host = synthetic_host();
  auto profile = profile_for(host, {"numa=bind:1", "noise"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  EXPECT_EQ(*plan_run(*profile, host, 0).plan.controls.cpus, cpus("2"));
}

TEST(Factors, NoiseRefusesWhatLeavesTheWorkloadNoCpu) {
  Host host = synthetic_host();
  expect_refused(host, {"noise=idle:0-3"}, {}, "noise: setting aside CPUs 0-3 leaves none");
  expect_refused(host, {"noise=idle:7"}, {}, "noise: CPU 7 is not available");
  expect_refused(host, {"noise=thrash:3"}, {}, "noise: unknown intensity 'thrash'");
  expect_refused(host, {}, {"noise=thrash"}, "--perturb noise=thrash: unknown perturbation");

  Host one_cpu = synthetic_host();
  one_cpu.allowed_cpus = cpus("0");
  expect_refused(one_cpu, {}, {"noise"}, "noise: cannot be applied here: one CPU");
}

// What verify sees of the workload's CPUs at the exec stop.
FactorRecord verify_noise(const std::string& value, const std::string& workload_cpus) {
  launch::LaunchResult launch;
  launch.at_start.valid = true;
  launch.at_start.at_exec = true;
  launch.at_start.cpus_allowed_list = workload_cpus;
  PreloadReport preload;
  std::vector<std::string> argv = {"train"};
  Observation seen{&launch, &preload, &argv};
  FactorRecord record;
  record.name = "noise";
  record.value = value;
  find_factor("noise")->verify(value, seen, record);
  return record;
}

TEST(Factors, NoiseIsVerifiedFromTheWorkloadsCpus) {
  FactorRecord idle = verify_noise("idle:3", "0-2");
  EXPECT_EQ(idle.verified, launch::CheckState::kVerified);
  EXPECT_EQ(idle.measured, "antagonist idle");
  EXPECT_EQ(idle.observed, "workload on CPUs 0-2, CPUs 3 set aside");

  FactorRecord shared = verify_noise("idle:3", "0-3");
  EXPECT_EQ(shared.verified, launch::CheckState::kDiffers);

  // Streaming is proven only once the antagonist's bandwidth is recorded.
  FactorRecord streaming = verify_noise("stream:3", "0-2");
  EXPECT_EQ(streaming.verified, launch::CheckState::kNotObservable);
}

// Huge pages: the hugetlb pools and the per-size THP modes as a root shows
// them, the hugetlb values of hugepages, the pool size as a system write,
// and what verification makes of the preload library's report.
Host hugetlb_host(long long pages, long long free) {
  Host host = synthetic_host();
  host.hugetlb_pools = {{2048, {pages, free}}, {1024 * 1024, {0, 0}}};
  host.mem_total_kb = 24LL * 1024 * 1024;
  return host;
}

Host system_host(Host host) {
  host.root = true;
  host.system_allowed = true;
  return host;
}

TEST(Factors, HostReadsHugetlbPoolsAndPerSizeThpModes) {
  Host host = read_host(std::string(MEMDET_TEST_DATA_DIR) + "/hugepages", "/nonexistent");
  ASSERT_EQ(host.hugetlb_pools.size(), 2u);
  EXPECT_EQ(host.hugetlb_pools.at(2048).pages, 16);
  EXPECT_EQ(host.hugetlb_pools.at(2048).free, 12);
  EXPECT_EQ(host.hugetlb_pools.at(1024 * 1024).pages, 0);
  EXPECT_EQ(host.thp_mode, "madvise");
  EXPECT_EQ(host.thp_pmd_kb, 2048);
  // The 8 kB size has no enabled file: skipped.
  EXPECT_EQ(host.thp_size_modes,
            (std::map<long long, std::string>{{64, "inherit"}, {2048, "never"}}));
  EXPECT_EQ(host.mem_total_kb, 24576000);
}

TEST(Factors, HugetlbValuesTakeThePoolAsItIs) {
  Host host = hugetlb_host(16, 12);
  auto profile = profile_for(host, {"hugepages=hugetlb-2M"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  EXPECT_EQ(profile->find("hugepages")->reference, "hugetlb-2M");
  RunFactors run = plan_run(*profile, host, 0);
  EXPECT_EQ(run.plan.preload.at("hugepages"), "hugetlb-2M");
  EXPECT_TRUE(system_writes(*profile, host).empty());
  // hugetlb needs no THP: thp=never does not defeat it.
  EXPECT_TRUE(profile_for(host, {"hugepages=hugetlb-2M", "thp=never"}).ok());
  // Perturbation still switches between small and huge only.
  EXPECT_EQ(perturbed_values(host, "hugepages", 2), (std::vector<std::string>{"huge", "huge"}));
}

TEST(Factors, HugetlbRequestsTheHostCannotGiveSayHowToFixThem) {
  Host empty = hugetlb_host(0, 0);
  expect_refused(empty, {"hugepages=hugetlb-2M"}, {},
                 "hugepages: the 2 MiB hugetlb pool is empty; size it for the run with --pin "
                 "hugepages=hugetlb-2M:N --system (as root), or beforehand with `echo N > "
                 "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`");
  expect_refused(hugetlb_host(16, 0), {"hugepages=hugetlb-2M"}, {},
                 "all 16 pages of the 2 MiB hugetlb pool are in use");
  expect_refused(empty, {"hugepages=hugetlb-1G"}, {},
                 "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages");
  expect_refused(empty, {"hugepages=hugetlb-2M:8"}, {},
                 "hugepages: hugetlb-2M:8 sizes the 2 MiB hugetlb pool, a setting of the whole "
                 "machine; add --system");
  Host not_root = empty;
  not_root.system_allowed = true;
  expect_refused(not_root, {"hugepages=hugetlb-2M:8"}, {}, "which needs root");
  Host allowed = system_host(empty);
  expect_refused(allowed, {"hugepages=hugetlb-2M:0"}, {}, "give at least one page");
  expect_refused(allowed, {"hugepages=hugetlb-1G:25"}, {},
                 "hugetlb-1G:25 asks for 25 GiB of huge pages; the machine has 24 GiB");
  for (const char* value :
       {"hugetlb", "hugetlb-3M", "hugetlb-2M:", "hugetlb-2M:x", "hugetlb-2M:-1", "hugetlb-2m"}) {
    expect_refused(allowed, {std::string("hugepages=") + value}, {},
                   "hugepages: unknown value '" + std::string(value) +
                       "' (small, huge, hugetlb-2M, hugetlb-1G; hugetlb-2M:N");
  }

  Host no_pools = synthetic_host();
  expect_refused(no_pools, {"hugepages=hugetlb-2M"}, {},
                 "hugepages: cannot be applied here: this kernel has no 2 MiB hugetlb pool");
  // Implied by `all`, hugepages takes small, which needs no pool.
  auto all = profile_for(no_pools, {"all"});
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->find("hugepages")->reference, "small");
}

TEST(Factors, APoolSizeIsAJournaledSystemWrite) {
  Host host = system_host(hugetlb_host(0, 0));
  auto profile = profile_for(host, {"hugepages=hugetlb-2M:64"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  EXPECT_EQ(profile->find("hugepages")->reference, "hugetlb-2M:64");
  std::vector<SystemWrite> writes = system_writes(*profile, host);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].path, "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
  EXPECT_EQ(writes[0].value, "64");
  // The library is told the page size only.
  EXPECT_EQ(plan_run(*profile, host, 0).plan.preload.at("hugepages"), "hugetlb-2M");

  auto gigantic = profile_for(host, {"hugepages=hugetlb-1G:1"});
  ASSERT_TRUE(gigantic.ok()) << gigantic.error().message;
  writes = system_writes(*gigantic, host);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].path, "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages");
  EXPECT_EQ(writes[0].value, "1");
}

FactorRecord verify_hugepages(const std::string& value, const std::string& report_text) {
  launch::LaunchResult launch;
  PreloadReport preload = parse_preload_report(report_text);
  std::vector<std::string> argv = {"train"};
  Observation seen{&launch, &preload, &argv};
  FactorRecord record;
  record.name = "hugepages";
  record.value = value;
  record.applied = Applied::kApplied;
  find_factor("hugepages")->verify(value, seen, record);
  return record;
}

TEST(Factors, HugetlbIsVerifiedFromTheLibrarysCounts) {
  const std::string head = "memdet-preload\t1\nactive\t1\nhugepages\thugetlb-2M\n";
  FactorRecord used = verify_hugepages(
      "hugetlb-2M", head +
                        "hugetlb_mapped\t3\nhugetlb_fallbacks\t0\nPrivate_Hugetlb\t0\n"
                        "Shared_Hugetlb\t0\nHugetlb_peak\t8192\n");
  EXPECT_EQ(used.verified, launch::CheckState::kVerified) << used.observed;
  EXPECT_EQ(used.applied, Applied::kApplied);
  EXPECT_EQ(used.measured, "hugetlb pages in use");
  EXPECT_NE(used.observed.find("hugetlb use 8192 kB"), std::string::npos) << used.observed;

  // An empty pool: nothing came from it, so it was not applied.
  FactorRecord empty = verify_hugepages(
      "hugetlb-2M:4",
      head + "hugetlb_mapped\t0\nhugetlb_fallbacks\t2\nPrivate_Hugetlb\t0\nShared_Hugetlb\t0\n");
  EXPECT_EQ(empty.applied, Applied::kRefused);
  EXPECT_EQ(empty.verified, launch::CheckState::kDiffers);
  EXPECT_NE(empty.reason.find("had no room for any allocation of 2 MiB or more (2 got ordinary"),
            std::string::npos)
      << empty.reason;

  // A pool that ran out part way.
  FactorRecord short_pool = verify_hugepages(
      "hugetlb-2M", head + "hugetlb_mapped\t1\nhugetlb_fallbacks\t1\nPrivate_Hugetlb\t4096\n");
  EXPECT_EQ(short_pool.verified, launch::CheckState::kDiffers);
  EXPECT_EQ(short_pool.measured, "hugetlb pages, 1 fallbacks");
  EXPECT_NE(short_pool.note.find("ran out"), std::string::npos);

  FactorRecord none = verify_hugepages(
      "hugetlb-2M", head + "hugetlb_mapped\t0\nhugetlb_fallbacks\t0\nPrivate_Hugetlb\t0\n");
  EXPECT_EQ(none.verified, launch::CheckState::kNotObservable);
  EXPECT_EQ(none.applied, Applied::kApplied);

  FactorRecord untouched = verify_hugepages(
      "hugetlb-2M", head + "hugetlb_mapped\t1\nhugetlb_fallbacks\t0\nPrivate_Hugetlb\t0\n");
  EXPECT_EQ(untouched.verified, launch::CheckState::kNotObservable);

  FactorRecord unreported = verify_hugepages("hugetlb-2M", head + "AnonHugePages\t0\n");
  EXPECT_EQ(unreported.verified, launch::CheckState::kUnread);
}

TEST(Factors, ThpSystemModesSetThePmdSizeToInherit) {
  Host host = system_host(synthetic_host());
  host.thp_size_modes = {{64, "never"}, {2048, "never"}};
  host.thp_pmd_kb = 2048;
  auto profile = profile_for(host, {"thp=always"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  std::vector<SystemWrite> writes = system_writes(*profile, host);
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].path, "/sys/kernel/mm/transparent_hugepage/enabled");
  EXPECT_EQ(writes[0].value, "always");
  EXPECT_EQ(writes[1].path, "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled");
  EXPECT_EQ(writes[1].value, "inherit");

  // A kernel without per-size files gets the top-level mode alone.
  host.thp_size_modes.clear();
  profile = profile_for(host, {"thp=madvise"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  writes = system_writes(*profile, host);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].value, "madvise");

  // thp=never is per process: no write at all.
  host.thp_size_modes = {{2048, "never"}};
  EXPECT_TRUE(system_writes(*profile_for(host, {"thp=never"}), host).empty());
}

}  // namespace
}  // namespace memdet::factors
