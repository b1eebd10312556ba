// memdet doctor over saved machines (tests/data/doctor, written by
// make_roots.py): the report each one gives, the findings it must and must
// not raise with their fixes, and the pieces that read a root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "doctor/report.h"
#include "scratch.h"

namespace memdet::doctor {
namespace {

namespace fs = std::filesystem;
using testing_support::Scratch;

std::string saved(const std::string& name) {
  return std::string(MEMDET_TEST_DATA_DIR) + "/doctor/" + name;
}

Report examine_saved(const std::string& name, Options options = {}) {
  auto root = MachineRoot::open(saved(name));
  EXPECT_TRUE(root.ok()) << saved(name);
  return examine(*root, options);
}

const Finding* find(const Report& report, const std::string& id) {
  for (const Finding& finding : report.findings) {
    if (finding.id == id) {
      return &finding;
    }
  }
  return nullptr;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string masked_text(const std::string& name) {
  std::string text = render_text(examine_saved(name));
  std::string root = saved(name);
  for (size_t at = text.find(root); at != std::string::npos; at = text.find(root)) {
    text.replace(at, root.size(), "ROOT");
  }
  return text;
}

class SavedMachine : public ::testing::TestWithParam<const char*> {};

TEST_P(SavedMachine, PrintsTheExpectedReport) {
  std::string expected = read_file(saved(std::string(GetParam()) + ".expected"));
  ASSERT_FALSE(expected.empty()) << "missing " << GetParam() << ".expected";
  EXPECT_EQ(masked_text(GetParam()), expected);
}

INSTANTIATE_TEST_SUITE_P(Doctor, SavedMachine,
                         ::testing::Values("two-socket", "container", "hugepages-reference-blas",
                                           "kvm-guest"));

TEST(Doctor, TwoSocketHostWithBalancingOn) {
  Report report = examine_saved("two-socket");
  ASSERT_TRUE(report.facts.topology.has_value());
  EXPECT_EQ(report.facts.topology->packages, 2);
  EXPECT_EQ(report.facts.topology->numa_nodes, 2);
  EXPECT_EQ(report.facts.topology->cores, 32);
  EXPECT_EQ(report.facts.topology->pus, 64);
  EXPECT_EQ(report.facts.topology->first_pu_per_core, "0-31");

  const Finding* balancing = find(report, "numa-balancing");
  ASSERT_NE(balancing, nullptr);
  EXPECT_EQ(balancing->severity, Severity::kHigh);
  EXPECT_NE(balancing->fix.find("memdet run --system --pin numa-balancing=0"), std::string::npos);
  EXPECT_EQ(report.findings.front().id, "numa-balancing");  // the most severe first

  ASSERT_NE(find(report, "numa-nodes"), nullptr);
  EXPECT_NE(find(report, "numa-nodes")->fix.find("--pin numa=bind:0"), std::string::npos);
  ASSERT_NE(find(report, "thp"), nullptr);
  EXPECT_NE(find(report, "thp")->fix.find("memdet run --pin thp=never"), std::string::npos);
  ASSERT_NE(find(report, "smt"), nullptr);
  EXPECT_NE(find(report, "smt")->fix.find("memdet run --cpus 0-31 --pin cpu"), std::string::npos);
  ASSERT_NE(find(report, "cpufreq"), nullptr);
  EXPECT_NE(find(report, "cpufreq")->what.find("powersave on 64 CPUs"), std::string::npos);
}

TEST(Doctor, TwoSocketHostEnvironment) {
  Report report = examine_saved("two-socket");
  const Finding* conf = find(report, "malloc-conf");
  ASSERT_NE(conf, nullptr);
  EXPECT_EQ(conf->severity, Severity::kMedium);
  EXPECT_NE(conf->what.find("dirty_decay"), std::string::npos);
  EXPECT_EQ(conf->fix, "MALLOC_CONF=background_thread:true,narenas:4,dirty_decay_ms:0");

  ASSERT_NE(find(report, "kmp-affinity"), nullptr);
  EXPECT_EQ(find(report, "kmp-affinity")->severity, Severity::kMedium);
  EXPECT_NE(find(report, "kmp-affinity")->fix.find("OMP_PROC_BIND"), std::string::npos);
  ASSERT_NE(find(report, "nccl"), nullptr);
  EXPECT_EQ(find(report, "nccl")->severity, Severity::kMedium);  // two GPUs
  EXPECT_EQ(find(report, "nccl")->fix, "export NCCL_ALGO=Ring NCCL_PROTO=Simple on every rank");
  ASSERT_NE(find(report, "cublas"), nullptr);
  ASSERT_NE(find(report, "unknown-env:CUDNN_DETERMINISTIC"), nullptr);
  ASSERT_NE(find(report, "cuda-cache"), nullptr);
  EXPECT_NE(find(report, "cuda-cache")->what.find("JIT"), std::string::npos);

  const Finding* memlock = find(report, "memlock");
  ASSERT_NE(memlock, nullptr);
  EXPECT_NE(memlock->what.find("64 KiB"), std::string::npos);
  EXPECT_NE(memlock->why.find("--pin mlock"), std::string::npos);
  EXPECT_NE(memlock->fix.find("ulimit -l unlimited"), std::string::npos);

  EXPECT_EQ(find(report, "personality"), nullptr);
  EXPECT_EQ(find(report, "blas"), nullptr);
  EXPECT_EQ(find(report, "threads"), nullptr);  // OMP_NUM_THREADS is set
  EXPECT_EQ(find(report, "ld-preload"), nullptr);
  EXPECT_EQ(report.facts.gpus.size(), 2u);
}

TEST(Doctor, ContainerThatRefusesPersonality) {
  Report report = examine_saved("container");
  EXPECT_EQ(report.facts.personality.outcome, ProbeOutcome::kRefused);
  EXPECT_EQ(report.facts.personality.error, "EPERM");

  const Finding* personality = find(report, "personality");
  ASSERT_NE(personality, nullptr);
  EXPECT_EQ(personality->severity, Severity::kHigh);
  EXPECT_NE(personality->fix.find("seccomp"), std::string::npos);
  const Finding* aslr = find(report, "aslr");
  ASSERT_NE(aslr, nullptr);
  EXPECT_EQ(aslr->fix.rfind("sysctl -w kernel.randomize_va_space=0", 0), 0u) << aslr->fix;

  ASSERT_NE(find(report, "perf-software"), nullptr);
  EXPECT_EQ(find(report, "perf-software")->severity, Severity::kMedium);
  EXPECT_EQ(find(report, "perf-hardware"), nullptr);  // the same refusal, said once
  ASSERT_NE(find(report, "malloc-conf"), nullptr);
  EXPECT_EQ(find(report, "malloc-conf")->severity, Severity::kLow);
  EXPECT_NE(find(report, "malloc-conf")->what.find("tcmalloc"), std::string::npos);
  EXPECT_NE(find(report, "unknown-env:MLNX_NON_PREFERRED"), nullptr);
  EXPECT_NE(find(report, "unknown-env:MPI_PRELOAD"), nullptr);

  // No cpufreq or SMT files in a container: not visible, not a finding.
  EXPECT_TRUE(report.facts.governors.empty());
  EXPECT_FALSE(report.facts.smt_active.has_value());
  EXPECT_EQ(find(report, "cpufreq"), nullptr);
  EXPECT_EQ(find(report, "smt"), nullptr);
  EXPECT_EQ(find(report, "nccl"), nullptr);  // no GPU, no NCCL variable
  EXPECT_EQ(find(report, "threads"), nullptr);
}

TEST(Doctor, HugePagesAndReferenceBlas) {
  Report report = examine_saved("hugepages-reference-blas");
  ASSERT_EQ(report.facts.hugepages.size(), 2u);
  EXPECT_EQ(report.facts.hugepages[1].page_kib, 1048576);
  EXPECT_EQ(report.facts.hugepages[1].total, 4);
  EXPECT_EQ(report.facts.hugepages[1].free, 2);
  ASSERT_TRUE(report.facts.blas.has_value());
  EXPECT_EQ(report.facts.blas->name, "reference BLAS");

  const Finding* blas = find(report, "blas");
  ASSERT_NE(blas, nullptr);
  EXPECT_EQ(blas->fix.rfind("update-alternatives --set libblas.so.3-x86_64-linux-gnu "
                            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
                            0),
            0u)
      << blas->fix;
  ASSERT_NE(find(report, "hugepages-1G"), nullptr);
  EXPECT_EQ(find(report, "hugepages-2M"), nullptr);  // all 512 free

  // ASLR off, THP never, CAP_IPC_LOCK held, a valid MALLOC_CONF, no
  // KMP_AFFINITY, and a kernel without NUMA balancing.
  EXPECT_FALSE(report.facts.numa_balancing.has_value());
  for (const char* id :
       {"aslr", "personality", "thp", "thp-defrag", "memlock", "malloc-conf", "kmp-affinity",
        "numa-balancing", "numa-nodes", "perf-software", "perf-hardware", "cpufreq", "threads"}) {
    EXPECT_EQ(find(report, id), nullptr) << id;
  }
}

TEST(Doctor, ThisMachinesShape) {
  Report report = examine_saved("kvm-guest");
  ASSERT_TRUE(report.facts.topology.has_value());
  EXPECT_EQ(report.facts.topology->numa_nodes, 1);
  EXPECT_EQ(report.facts.topology->pus, 2);
  ASSERT_NE(find(report, "aslr"), nullptr);
  EXPECT_EQ(find(report, "aslr")->fix.rfind("memdet run --pin aslr", 0), 0u);
  const Finding* hardware = find(report, "perf-hardware");
  ASSERT_NE(hardware, nullptr);
  EXPECT_NE(hardware->what.find("ENOENT"), std::string::npos);
  EXPECT_NE(hardware->what.find("PMU"), std::string::npos);
  EXPECT_NE(find(report, "threads"), nullptr);
  for (const char* id : {"personality", "memlock", "smt", "cpufreq", "numa-balancing", "thp",
                         "nccl", "cublas", "malloc-conf"}) {
    EXPECT_EQ(find(report, id), nullptr) << id;
  }
}

TEST(Doctor, MlockSizeDecidesTheMemlockSeverity) {
  Options small;
  small.mlock_bytes = 4 << 20;
  const Finding* memlock = find(examine_saved("container", small), "memlock");
  ASSERT_NE(memlock, nullptr);
  EXPECT_EQ(memlock->severity, Severity::kLow);  // 4 MiB fits in 8 MiB
  EXPECT_NE(memlock->what.find("fits"), std::string::npos);
}

TEST(Doctor, JsonHoldsFactsAndOneObjectPerFinding) {
  Report report = examine_saved("container");
  nlohmann::json document = render_json(report);
  EXPECT_EQ(document["schema"], "memdet.doctor/1");
  EXPECT_EQ(document["live"], false);
  EXPECT_EQ(document["facts"]["personality_addr_no_randomize"]["result"], "refused");
  EXPECT_EQ(document["facts"]["randomize_va_space"], 2);
  EXPECT_TRUE(document["facts"]["cpufreq_governors"].is_null());
  EXPECT_TRUE(document["facts"]["smt_active"].is_null());
  EXPECT_EQ(document["facts"]["environment"]["variables"]["MPI_PRELOAD"], "1");
  EXPECT_FALSE(document["facts"]["environment"]["variables"].contains("HOSTNAME"));
  ASSERT_EQ(document["findings"].size(), report.findings.size());
  for (const auto& finding : document["findings"]) {
    for (const char* key : {"id", "severity", "what", "why", "fix"}) {
      EXPECT_TRUE(finding.contains(key)) << key;
    }
  }
  EXPECT_EQ(document["findings"][0]["id"], "personality");
  EXPECT_EQ(document["findings"][0]["severity"], "high");
}

TEST(Doctor, AnEmptyRootIsNotVisibleEverywhere) {
  Scratch root;
  auto opened = MachineRoot::open(root.path());
  ASSERT_TRUE(opened.ok());
  Report report = examine(*opened, {});
  EXPECT_FALSE(report.facts.randomize_va_space.has_value());
  EXPECT_FALSE(report.facts.topology.has_value());
  EXPECT_FALSE(report.facts.environment.has_value());
  EXPECT_EQ(report.facts.personality.outcome, ProbeOutcome::kNotVisible);
  EXPECT_TRUE(report.findings.empty());
  std::string text = render_text(report);
  EXPECT_NE(text.find("aslr            not visible"), std::string::npos) << text;
  EXPECT_NE(text.find("topology        not visible"), std::string::npos) << text;
  EXPECT_NE(text.find("0 findings"), std::string::npos) << text;
  EXPECT_TRUE(render_json(report)["facts"]["topology"].is_null());
}

TEST(Doctor, APreloadThatDoesNotExistIsAFinding) {
  Scratch root;
  root.write("proc/self/environ", std::string("LD_PRELOAD=/opt/missing/libjemalloc.so.2\0", 41));
  Report report = examine(*MachineRoot::open(root.path()), {});
  EXPECT_EQ(report.facts.allocator, "jemalloc");
  const Finding* preload = find(report, "ld-preload");
  ASSERT_NE(preload, nullptr);
  EXPECT_NE(preload->what.find("/opt/missing/libjemalloc.so.2"), std::string::npos);
}

// A machine whose files cannot be what doctor expects: a link to a device,
// a file far larger than any /proc file, a FIFO that nobody writes.
TEST(DoctorRoot, ReadsNoDeviceNoHugeFileAndNoFifo) {
  Scratch scratch;
  scratch.write("proc/sys/kernel/perf_event_paranoid", "");
  fs::create_directories(fs::path(scratch.path()) / "proc/self");
  fs::create_symlink("/dev/zero", fs::path(scratch.path()) / "proc/self/status");
  fs::create_symlink("/dev/zero", fs::path(scratch.path()) / "proc/self/environ");
  std::string paranoid = scratch.path() + "/proc/sys/kernel/perf_event_paranoid";
  ASSERT_EQ(::truncate(paranoid.c_str(), 8LL << 30), 0);
  std::string fifo = scratch.path() + "/proc/sys/kernel/randomize_va_space";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((scratch.path() + "/proc/self/limits").c_str(), 0600), 0);

  MachineRoot root = *MachineRoot::open(scratch.path());
  EXPECT_FALSE(root.read_raw("/proc/self/status").has_value());
  EXPECT_FALSE(root.read_raw("/proc/sys/kernel/perf_event_paranoid").has_value());
  EXPECT_FALSE(root.read_raw("/proc/sys/kernel/randomize_va_space").has_value());
  // The live machine has devices and may have FIFOs: they are no files either.
  EXPECT_FALSE(MachineRoot().read_raw("/dev/zero").has_value());
  EXPECT_FALSE(MachineRoot().read_raw(fifo).has_value());
  EXPECT_FALSE(MachineRoot().read_raw(paranoid).has_value());

  Report report = examine(root, {});
  EXPECT_FALSE(report.facts.cap_ipc_lock.has_value());
  EXPECT_FALSE(report.facts.perf_event_paranoid.has_value());
  EXPECT_FALSE(report.facts.randomize_va_space.has_value());
  EXPECT_FALSE(report.facts.memlock_visible);
  EXPECT_FALSE(report.facts.environment.has_value());
  std::string text = render_text(report);
  EXPECT_NE(text.find("aslr            not visible"), std::string::npos) << text;
  EXPECT_NE(text.find("perf_event_paranoid not visible"), std::string::npos) << text;
  EXPECT_NE(text.find("CAP_IPC_LOCK not visible"), std::string::npos) << text;
}

TEST(DoctorRoot, ReadsAFileUpToTheCapAndNoFurther) {
  Scratch scratch;
  scratch.write("memdet/probes", std::string(MachineRoot::kMaxFileBytes, '#'));
  scratch.write("proc/self/environ", std::string(MachineRoot::kMaxFileBytes + 1, 'x'));
  MachineRoot root = *MachineRoot::open(scratch.path());
  auto probes = root.read_raw("/memdet/probes");
  ASSERT_TRUE(probes.has_value());
  EXPECT_EQ(probes->size(), MachineRoot::kMaxFileBytes);
  EXPECT_FALSE(root.read_raw("/proc/self/environ").has_value());
}

TEST(DoctorRoot, TakesAnAbsoluteLinkToAFileInsideTheRoot) {
  Scratch scratch;
  scratch.write("saved/status", "CapEff:\t0000000000004000\n");
  fs::create_directories(fs::path(scratch.path()) / "proc/self");
  fs::create_symlink("/saved/status", fs::path(scratch.path()) / "proc/self/status");
  Report report = examine(*MachineRoot::open(scratch.path()), {});
  EXPECT_EQ(report.facts.cap_ipc_lock, true);
}

// hwloc reads the saved /sys and /proc itself, so what it would open is
// looked at before it loads.
class DoctorTopology : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::copy(saved("kvm-guest"), scratch_.path(), fs::copy_options::recursive);
  }
  std::string file(const std::string& name) const { return scratch_.path() + "/" + name; }
  std::optional<Topology> topology() const {
    return examine(*MachineRoot::open(scratch_.path()), {}).facts.topology;
  }

  Scratch scratch_;
};

TEST_F(DoctorTopology, ACopyOfASavedMachineHasItsTopology) {
  ASSERT_TRUE(topology().has_value());
  EXPECT_EQ(topology()->pus, 2);
}

TEST_F(DoctorTopology, AFifoIsNotVisible) {
  fs::remove(file("sys/devices/system/cpu/online"));
  ASSERT_EQ(::mkfifo(file("sys/devices/system/cpu/online").c_str(), 0600), 0);
  EXPECT_FALSE(topology().has_value());
}

TEST_F(DoctorTopology, AHugeFileIsNotVisible) {
  ASSERT_EQ(::truncate(file("sys/devices/system/cpu/cpu0/topology/core_cpus").c_str(), 8LL << 30),
            0);
  EXPECT_FALSE(topology().has_value());
}

TEST_F(DoctorTopology, ALinkOutOfTheRootIsNotVisible) {
  fs::remove(file("sys/devices/system/cpu/cpu1/topology/core_cpus"));
  fs::create_symlink("/dev/zero", file("sys/devices/system/cpu/cpu1/topology/core_cpus"));
  EXPECT_FALSE(topology().has_value());

  fs::remove(file("sys/devices/system/cpu/cpu1/topology/core_cpus"));
  fs::create_symlink("../../../../../../../../../../../../dev/zero",
                     file("sys/devices/system/cpu/cpu1/topology/core_cpus"));
  EXPECT_FALSE(topology().has_value());
}

TEST_F(DoctorTopology, ALinkInsideTheRootIsFollowed) {
  fs::remove(file("sys/devices/system/cpu/cpu1/topology/core_id"));
  fs::create_symlink("../../cpu0/topology/core_id",
                     file("sys/devices/system/cpu/cpu1/topology/core_id"));
  EXPECT_TRUE(topology().has_value());
}

TEST(DoctorJson, BytesThatAreNotUtf8AreReplaced) {
  Scratch scratch;
  std::string dir = "machine\xff";
  scratch.write(dir + "/proc/self/environ",
                std::string("LD_PRELOAD=/x\xfe.so\0MALLOC_CONF=\xff\xff\0", 33));
  scratch.write(dir + "/memdet/probes", "personality: refused E\xffPERM\n");
  Report report = examine(*MachineRoot::open(scratch.path() + "/" + dir), {});
  ASSERT_TRUE(report.facts.environment.has_value());
  EXPECT_EQ(report.facts.environment->at("MALLOC_CONF"), "\xff\xff");

  std::string text;
  ASSERT_NO_THROW(text = render_json_text(report));
  nlohmann::json document = nlohmann::json::parse(text);
  EXPECT_EQ(document["facts"]["environment"]["variables"]["MALLOC_CONF"], "\uFFFD\uFFFD");
  EXPECT_EQ(document["root"], scratch.path() + "/machine\uFFFD");
  EXPECT_EQ(text.back(), '\n');
}

TEST(DoctorRoot, RefusesAMissingFolderAndAFile) {
  Scratch scratch;
  auto missing = MachineRoot::open(scratch.path() + "/absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent"), std::string::npos);
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);

  std::string file = scratch.write("plain", "x");
  auto not_dir = MachineRoot::open(file);
  ASSERT_FALSE(not_dir.ok());
  EXPECT_NE(not_dir.error().message.find("not a directory"), std::string::npos);

  auto slash = MachineRoot::open("/");
  ASSERT_TRUE(slash.ok());
  EXPECT_TRUE(slash->live());
}

TEST(DoctorRoot, FollowsLinksInsideTheRoot) {
  Scratch scratch;
  scratch.write("usr/lib/real/libblas.so.3", "");
  fs::create_directories(fs::path(scratch.path()) / "etc/alternatives");
  // An absolute target means the saved machine's path, not this machine's.
  fs::create_symlink("/etc/alternatives/second",
                     fs::path(scratch.path()) / "etc/alternatives/first");
  fs::create_symlink("../../usr/lib/real/libblas.so.3",
                     fs::path(scratch.path()) / "etc/alternatives/second");
  MachineRoot root = *MachineRoot::open(scratch.path());
  EXPECT_EQ(root.resolve("/etc/alternatives/first"), "/usr/lib/real/libblas.so.3");
  EXPECT_EQ(root.resolve("/usr/lib/real/libblas.so.3"), "/usr/lib/real/libblas.so.3");
}

TEST(DoctorJemalloc, NamesUnknownOptionsAndTheClosestKnownOne) {
  EXPECT_EQ(unknown_jemalloc_options("narenas:4,bogus:1,tcache"),
            (std::vector<std::string>{"bogus", "tcache"}));
  EXPECT_TRUE(unknown_jemalloc_options("background_thread:true,dirty_decay_ms:0").empty());
  // Debian's build leaves out utrace, so jemalloc rejects it like a typo.
  EXPECT_EQ(unknown_jemalloc_options("utrace:true"), (std::vector<std::string>{"utrace"}));
  EXPECT_EQ(closest_jemalloc_option("dirty_decay"), "dirty_decay_ms");
  EXPECT_EQ(closest_jemalloc_option("narena"), "narenas");
  EXPECT_EQ(closest_jemalloc_option("backgroud_thread"), "background_thread");
  EXPECT_EQ(closest_jemalloc_option("zzzzzzzz"), "");
}

TEST(DoctorLive, ReadsTheAslrSettingOfThisMachine) {
  auto expected = MachineRoot().read_number("/proc/sys/kernel/randomize_va_space");
  if (!expected) {
    GTEST_SKIP() << "/proc/sys/kernel/randomize_va_space is not readable here";
  }
  Report report = examine(MachineRoot(), {});
  EXPECT_TRUE(report.facts.live);
  EXPECT_EQ(report.facts.randomize_va_space, expected);
  // The probe ran: allowed or refused, never left unprobed.
  EXPECT_NE(report.facts.personality.outcome, ProbeOutcome::kNotVisible);
  EXPECT_NE(report.facts.perf_software.outcome, ProbeOutcome::kNotVisible);
  EXPECT_TRUE(report.facts.environment.has_value());
}

}  // namespace
}  // namespace memdet::doctor
