// The missed-seed factors (entropy, clock, fileorder) against a synthetic
// host and synthetic preload reports: what their requests resolve to, which
// values perturbed runs take, how a run is judged from what the library
// served, and how a caller names the program's own line.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <string_view>

#include "factors/profile.h"
#include "protocol/isolate.h"
#include "scratch.h"

namespace memdet::factors {
namespace {

Host synthetic_host() {
  Host host;
  host.allowed_cpus = *launch::parse_cpu_list("0-1");
  host.nodes = {{0, *launch::parse_cpu_list("0-1")}};
  host.thp_mode = "madvise";
  host.allocators = {{"glibc", ""}};
  host.preload_library = "/synthetic/libmemdet_preload.so";
  return host;
}

Result<Profile> profile_for(std::vector<std::string> pins, std::vector<std::string> perturbs = {}) {
  Selection selection;
  selection.pins = std::move(pins);
  selection.perturbs = std::move(perturbs);
  selection.seed = 7;
  return make_profile(selection, synthetic_host());
}

const FactorRecord* record_of(const RunFactors& run, const std::string& name) {
  for (const FactorRecord& record : run.records) {
    if (record.name == name) {
      return &record;
    }
  }
  return nullptr;
}

FactorRecord verify(const std::string& name, const std::string& value, const std::string& text) {
  launch::LaunchResult launch;
  PreloadReport preload = parse_preload_report(text);
  std::vector<std::string> argv = {"train"};
  Observation seen{&launch, &preload, &argv};
  FactorRecord record;
  record.name = name;
  record.value = value;
  record.applied = Applied::kApplied;
  find_factor(name)->verify(value, seen, record);
  return record;
}

const std::string kHead = "memdet-preload\t1\nactive\t1\n";

TEST(SeedFactors, PinAllPinsEntropyClockAndFileOrder) {
  auto profile = profile_for({"all"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  RunFactors run = plan_run(*profile, synthetic_host(), 0);
  EXPECT_EQ(run.plan.preload["entropy"].size(), 16u);
  EXPECT_EQ(run.plan.preload["lineage"], "0000000000000000");
  EXPECT_EQ(run.plan.preload["clock"], "counter");
  EXPECT_EQ(run.plan.preload["clock_epoch"], "946684800");
  EXPECT_EQ(run.plan.preload["fileorder"], "sorted");
}

TEST(SeedFactors, RequestsResolveToOneSpellingAndBadOnesNameTheForms) {
  EXPECT_EQ(profile_for({"entropy=2a"})->find("entropy")->reference, "000000000000002a");
  EXPECT_EQ(profile_for({"clock=shift@2024-01-02"})->find("clock")->reference, "shift@1704153600");
  EXPECT_EQ(profile_for({"clock=@86400"})->find("clock")->reference, "counter@86400");
  EXPECT_EQ(profile_for({"fileorder"})->find("fileorder")->reference, "sorted");
  EXPECT_EQ(profile_for({"clock=@1.5"})->find("clock")->reference, "counter@1.500000000");
  EXPECT_EQ(profile_for({"fileorder=keyed:0xABC"})->find("fileorder")->reference,
            "keyed:0000000000000abc");
  for (std::string_view bad :
       {"entropy=xyz", "entropy=12345678901234567", "clock=fast", "clock=counter@soon",
        "clock=shift@2024-13-01", "clock=@2024-02-30", "clock=@2023-02-29", "clock=@-5",
        "clock=@9999-12-31", "clock=@99999999999", "clock=@1.", "clock=@1.1234567891",
        "clock=counter@", "fileorder=up", "fileorder=keyed:", "fileorder=keyed:xyz"}) {
    auto profile = profile_for({std::string(bad)});
    ASSERT_FALSE(profile.ok()) << bad;
    EXPECT_NE(profile.error().message.find(bad.substr(0, bad.find('='))), std::string::npos)
        << profile.error().message;
  }
  EXPECT_NE(profile_for({"clock=fast"}).error().message.find("counter@EPOCH"), std::string::npos);
}

TEST(SeedFactors, PerturbedValuesDifferFromTheReferenceAndFromEachOther) {
  for (const char* name : {"entropy", "clock", "fileorder"}) {
    auto profile = profile_for({"all"}, {name});
    ASSERT_TRUE(profile.ok()) << profile.error().message;
    const std::string reference = profile->find(name)->reference;
    std::set<std::string> seen;
    for (int k = 1; k <= 6; ++k) {
      RunFactors run = plan_run(*profile, synthetic_host(), k);
      const FactorRecord* record = record_of(run, name);
      ASSERT_NE(record, nullptr);
      EXPECT_NE(record->value, reference) << name;
      seen.insert(record->value);
    }
    EXPECT_EQ(seen.size(), 6u) << name;
  }
  // The clock moves by whole days and keeps its mode.
  auto profile = profile_for({}, {"clock"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  std::string value = record_of(plan_run(*profile, synthetic_host(), 1), "clock")->value;
  ASSERT_EQ(value.rfind("counter@", 0), 0u) << value;
  EXPECT_NE(value, "counter@946684800");
  // Another day, another time of day and another fraction of a second.
  const long long seconds = std::stoll(value.substr(8));
  EXPECT_GE(seconds - 946684800, 86400);
  EXPECT_NE(seconds % 86400, 0) << value;
  EXPECT_NE(value.find('.'), std::string::npos) << value;
  RunFactors run = plan_run(*profile, synthetic_host(), 1);
  EXPECT_EQ(run.plan.preload["clock_epoch"], std::to_string(seconds));
  EXPECT_EQ(run.plan.preload["clock_epoch_ns"].size() <= 9, true);
}

TEST(SeedFactors, EntropyKeepsPythonsHashSeedFixed) {
  auto profile = profile_for({"entropy"});
  ASSERT_TRUE(profile.ok());
  RunFactors run = plan_run(*profile, synthetic_host(), 0);
  if (std::getenv("PYTHONHASHSEED") == nullptr) {
    EXPECT_EQ(run.plan.env["PYTHONHASHSEED"], "0000000000");
  }
  // With env perturbed, env's own value stands.
  auto both = profile_for({"entropy"}, {"env"});
  ASSERT_TRUE(both.ok());
  RunFactors perturbed = plan_run(*both, synthetic_host(), 1);
  EXPECT_NE(perturbed.plan.env["PYTHONHASHSEED"], "0000000000");
}

TEST(SeedFactors, EntropyIsJudgedByTheReadsTheLibraryServed) {
  const std::string seed = "00000000000000aa";
  FactorRecord served = verify("entropy", seed,
                               kHead + "entropy\t" + seed +
                                   "\nentropy_reads\t2\nentropy_bytes\t40\n"
                                   "entropy_read\t1\tgetrandom\t32\t0\tlibc.so.6+0x1\n"
                                   "entropy_read\t2\turandom\t8\t0\tlibc10.so+0x2\n");
  EXPECT_EQ(served.verified, launch::CheckState::kVerified) << served.observed;
  EXPECT_EQ(served.observed, "2 reads, 40 bytes (getrandom 1, urandom 1)");
  EXPECT_EQ(served.measured, "seed " + seed);
  EXPECT_NE(served.note.find("not seen"), std::string::npos);

  FactorRecord none = verify("entropy", seed,
                             kHead + "entropy\t" + seed + "\nentropy_reads\t0\nentropy_bytes\t0\n");
  EXPECT_EQ(none.verified, launch::CheckState::kNotObservable);

  // The library writes the seed without its leading zeros.
  FactorRecord short_seed =
      verify("entropy", "0ccc32ff58ea88ef",
             kHead + "entropy\tccc32ff58ea88ef\nentropy_reads\t1\nentropy_bytes\t8\n");
  EXPECT_EQ(short_seed.verified, launch::CheckState::kVerified) << short_seed.observed;

  FactorRecord other = verify("entropy", seed, kHead + "entropy\t00000000000000bb\n");
  EXPECT_EQ(other.verified, launch::CheckState::kDiffers);

  // A program that never loaded the library (static, setuid) is unread.
  FactorRecord absent = verify("entropy", seed, "");
  EXPECT_EQ(absent.verified, launch::CheckState::kUnread);
}

TEST(SeedFactors, ClockIsJudgedByItsModeEpochAndReads) {
  FactorRecord fraction =
      verify("clock", "counter@5.000000250", kHead + "clock\tcounter\t5\t250\nclock_reads\t1\n");
  EXPECT_EQ(fraction.verified, launch::CheckState::kVerified) << fraction.observed;
  FactorRecord whole =
      verify("clock", "counter@5.000000250", kHead + "clock\tcounter\t5\t0\nclock_reads\t1\n");
  EXPECT_EQ(whole.verified, launch::CheckState::kDiffers);
  FactorRecord served = verify("clock", "counter@946684800",
                               kHead +
                                   "clock\tcounter\t946684800\t0\nclock_reads\t12\n"
                                   "clock_deadlines\t1\n");
  EXPECT_EQ(served.verified, launch::CheckState::kVerified) << served.observed;
  EXPECT_EQ(served.observed, "12 wall-clock reads, 1 deadlines converted");
  FactorRecord moved =
      verify("clock", "counter@946684800", kHead + "clock\tcounter\t1\t0\nclock_reads\t12\n");
  EXPECT_EQ(moved.verified, launch::CheckState::kDiffers);
  FactorRecord unread = verify("clock", "shift@0",
                               kHead + "clock\tshift\t0\t0\nclock_reads\t0\nclock_deadlines\t0\n");
  EXPECT_EQ(unread.verified, launch::CheckState::kNotObservable);
}

TEST(SeedFactors, FileOrderNeedsAListingOfTwoEntries) {
  FactorRecord ordered = verify("fileorder", "keyed:00000000000000ff",
                                kHead +
                                    "fileorder\tkeyed\nfileorder_listings\t3\n"
                                    "fileorder_ordered\t1\n"
                                    "fileorder_unseen\tnftw\t2\n");
  EXPECT_EQ(ordered.verified, launch::CheckState::kVerified) << ordered.observed;
  EXPECT_EQ(ordered.measured, "order keyed:00000000000000ff");
  EXPECT_NE(ordered.note.find("nftw 2"), std::string::npos) << ordered.note;
  FactorRecord single = verify("fileorder", "sorted",
                               kHead +
                                   "fileorder\tsorted\nfileorder_listings\t2\n"
                                   "fileorder_ordered\t0\n");
  EXPECT_EQ(single.verified, launch::CheckState::kNotObservable);
  EXPECT_NE(single.observed.find("not applicable"), std::string::npos);
  FactorRecord wrong = verify("fileorder", "sorted", kHead + "fileorder\tkeyed\n");
  EXPECT_EQ(wrong.verified, launch::CheckState::kDiffers);
}

TEST(SeedFactors, ACallSiteNamesTheProgramsOwnPythonLine) {
  testing_support::Scratch dir;
  dir.write("train.py", "import numpy as np\n\n    rng = np.random.default_rng()\n");
  protocol::CallSite site = protocol::call_site(
      "python3.11+0x2f3a1:_PyOS_URandom|py:/usr/lib/python3.11/random.py:812;"
      "<frozen importlib._bootstrap>:241;/usr/lib/python3/dist-packages/numpy/x.py:3;train.py:3",
      dir.path());
  EXPECT_EQ(site.location, "train.py:3");
  EXPECT_EQ(site.line, "rng = np.random.default_rng()");

  protocol::CallSite native = protocol::call_site("libc10.so+0x1234:c10::detail", dir.path());
  EXPECT_TRUE(native.location.empty());
  EXPECT_EQ(native.caller, "libc10.so+0x1234:c10::detail");

  // Only library frames: no location of the program's own.
  protocol::CallSite library =
      protocol::call_site("python3.11+0x1|py:/usr/lib/python3.11/random.py:5", dir.path());
  EXPECT_TRUE(library.location.empty());
}

}  // namespace
}  // namespace memdet::factors
