// A run record read back from its JSON: what a resumed campaign rebuilds
// its runs from. Written, read and written again, it must give the same
// JSON; a record of another schema or with a field of the wrong type is
// one line naming the run.
#include "report/check_json.h"

#include <gtest/gtest.h>

#include "scratch.h"

namespace memdet::report {
namespace {

using testing_support::Scratch;

launch::ProcSnapshot snapshot(bool valid, const std::string& error, unsigned long personality,
                              const std::string& cpus) {
  launch::ProcSnapshot read;
  read.valid = valid;
  read.error = error;
  read.personality = personality;
  read.cpus_allowed_list = cpus;
  return read;
}

// A record with every field run_json writes set to something other than
// its default, so a field the reader dropped would show.
protocol::RunRecord full_record(const std::string& dir) {
  protocol::RunRecord run;
  run.index = 7;
  run.label = "007";
  run.dir = dir;
  run.argv = {"python3", "train.py", "--out", "o/007"};
  run.cwd = "/work/project";
  run.outcome = 2;

  launch::LaunchResult& launched = run.launch;
  launched.outcome = launch::Outcome::kSignaled;
  launched.exit_code = 0;
  launched.signal = 9;
  launched.message = "killed";
  launched.interrupted_by = 2;
  launched.pid = 4242;
  launched.wall_seconds = 1.25;
  launched.user_seconds = 0.5;
  launched.system_seconds = 0.125;
  launched.max_rss_kib = 65536;
  launched.minor_faults = 11;
  launched.major_faults = 1;
  launched.voluntary_switches = 3;
  launched.involuntary_switches = 4;
  launched.at_start = snapshot(true, "", 0x40000, "0-3");
  launched.at_exit = snapshot(false, "no such process", 0, "");
  launched.checks.push_back(
      {"cpus", "0-1", launch::CheckState::kVerified, "0-1", launch::CheckState::kDiffers, "0-3"});
  launched.left_behind.push_back({4300, "sleep"});

  measure::CounterReadings& counters = launched.counters;
  counters.measured = true;
  counters.user_space_only = true;
  measure::CounterValue cycles;
  cycles.name = "cycles";
  cycles.supported = true;
  cycles.raw = 1000;
  cycles.enabled_ns = 400;
  cycles.running_ns = 100;
  measure::CounterValue faults;
  faults.name = "page-faults";
  faults.supported = true;
  faults.raw = 77;
  measure::CounterValue cache;
  cache.name = "cache-misses";
  cache.reason = "not supported by this PMU";
  counters.counters = {cache, cycles, faults};
  counters.vmstat = {{"pgfault", 10, 25}, {"thp_fault_alloc", 0, 3}};

  run.artifacts.push_back({"o/{run}/w.npy", "o/007/w.npy", dir + "/artifacts/o/007/w.npy",
                           "0123456789abcdef0123456789abcdef", false, 4096});
  run.artifacts.push_back({"stdout", dir + "/stdout.txt", "", "fedcba", true, 12});
  run.missing = {"o/007/loss.txt"};
  run.moved_before = {"o/007/old.npy"};
  run.program = {"/usr/bin/python3.11", "aa11", "python3.11", "train.py", "bb22", "a note"};
  run.numeric_env = {"OMP_NUM_THREADS=2"};

  host::LoadedLibraries& loaded = run.loaded;
  loaded.recorded = true;
  loaded.note = "partial";
  loaded.processes = 2;
  loaded.programs = {"/usr/bin/python3.11"};
  loaded.objects = {{"/usr/lib/libm.so.6", "/usr/lib/libm.so.6"}};
  loaded.blas = {{"/usr/lib/libblas.so.3", "/usr/lib/openblas/libblas.so.3"}};
  loaded.blas_name = "OpenBLAS (pthread)";
  loaded.allocator = "jemalloc";
  loaded.allocator_path = "/usr/lib/libjemalloc.so.2";

  run.perturbed = 3;
  run.phase = "factor";
  run.factor = "heap";
  factors::FactorRecord heap;
  heap.name = "heap";
  heap.mode = factors::Mode::kPerturb;
  heap.applied = factors::Applied::kApplied;
  heap.value = "32";
  heap.reference = "0";
  heap.perturbed = true;
  heap.seed = 99;
  heap.verified = launch::CheckState::kNotObservable;
  heap.observed = "mod64 32";
  heap.measured = "mod64 32";
  heap.replayable = false;
  heap.note = "a note";
  factors::FactorRecord numa;
  numa.name = "numa";
  numa.mode = factors::Mode::kPin;
  numa.applied = factors::Applied::kNotApplicable;
  numa.reason = "one node";
  run.factors.records = {heap, numa};
  run.factor_problems = {"aslr: measured the same as the reference"};
  return run;
}

TEST(CheckJson, RunRecordReadBackWritesTheSameJson) {
  Scratch scratch;
  protocol::RunRecord run = full_record(scratch.path());
  // The preload library's report stays in the run directory, where the
  // reader finds it again: its seed sources are in the JSON.
  const std::string report =
      "memdet-preload\t1\nentropy\tpinned\nentropy_reads\t2\nentropy_bytes\t32\n"
      "entropy_read\t1\tgetrandom\t16\t1\tlibc.so.6+0x10\n";
  run.preload = factors::parse_preload_report(report);
  run.preload.path = scratch.write("preload.4242", report);
  ASSERT_TRUE(run.preload.present);
  const nlohmann::json written = run_json(run);
  ASSERT_FALSE(written["seed_sources"].is_null());

  auto read = read_run_json(written);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(run_json(*read).dump(2), written.dump(2));
  EXPECT_EQ(read->preload.number("entropy_reads"), 2);
  EXPECT_EQ(protocol::Campaign::signature(*read), protocol::Campaign::signature(run));
  EXPECT_FALSE(read->completed());
}

TEST(CheckJson, CompletedRunWithoutCountersOrPreloadReadsBack) {
  protocol::RunRecord run;
  run.index = 1;
  run.label = "01";
  run.dir = "/tmp/run-01";
  run.launch.at_start = snapshot(true, "", 0, "0");
  run.artifacts.push_back(
      {"stdout", "/tmp/run-01/stdout.txt", "/tmp/run-01/stdout.txt", "ab", true, 0});
  const nlohmann::json written = run_json(run);

  auto read = read_run_json(written);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_TRUE(read->completed());
  EXPECT_FALSE(read->preload.present);
  EXPECT_EQ(run_json(*read), written);
}

TEST(CheckJson, RunRecordOfAnotherSchemaIsRefused) {
  nlohmann::json written = run_json(protocol::RunRecord{});
  written["schema"] = "memdet.run/1";
  auto read = read_run_json(written);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("memdet.run/2"), std::string::npos) << read.error().message;
  EXPECT_FALSE(read_run_json(nlohmann::json::array()));
}

TEST(CheckJson, RunRecordFieldOfTheWrongTypeNamesTheRun) {
  protocol::RunRecord run;
  run.index = 4;
  nlohmann::json written = run_json(run);
  written["launch"]["wall_seconds"] = "slow";
  auto read = read_run_json(written);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("run record 4"), std::string::npos) << read.error().message;
}

TEST(CheckJson, RunRecordWithAnUnknownOutcomeIsRefused) {
  nlohmann::json written = run_json(protocol::RunRecord{});
  written["launch"]["outcome"] = "vanished";
  auto read = read_run_json(written);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("vanished"), std::string::npos) << read.error().message;
}

}  // namespace
}  // namespace memdet::report
