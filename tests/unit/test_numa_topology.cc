// read_numa_nodes and the numa factor over recorded sysfs trees
// (tests/data/topology), so that a one-node machine tests two- and
// four-node behaviour.
#include <gtest/gtest.h>

#include <algorithm>

#include "factors/host.h"
#include "factors/profile.h"

namespace memdet::factors {
namespace {

std::string topology(const std::string& name) {
  return std::string(MEMDET_TEST_DATA_DIR) + "/topology/" + name;
}

launch::CpuSet cpus(const std::string& list) { return *launch::parse_cpu_list(list); }

// A host with the recorded nodes and every one of their CPUs allowed.
Host host_from(const std::string& name) {
  Host host;
  host.nodes = read_numa_nodes(topology(name), cpus("0"));
  for (const NumaNode& node : host.nodes) {
    host.allowed_cpus.insert(node.cpus.begin(), node.cpus.end());
  }
  host.thp_mode = "madvise";
  host.allocators["glibc"] = "";
  host.preload_library = "/nonexistent/libmemdet_preload.so";
  return host;
}

std::vector<int> ids(const std::vector<NumaNode>& nodes) {
  std::vector<int> ids;
  for (const NumaNode& node : nodes) {
    ids.push_back(node.id);
  }
  return ids;
}

Result<Profile> profile_for(const Host& host, std::vector<std::string> pins,
                            std::vector<std::string> perturbs = {}) {
  Selection selection;
  selection.pins = std::move(pins);
  selection.perturbs = std::move(perturbs);
  selection.seed = 7;
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

TEST(NumaTopology, ReadsATwoSocketMachine) {
  std::vector<NumaNode> nodes = read_numa_nodes(topology("two-socket"), cpus("0"));
  ASSERT_EQ(ids(nodes), (std::vector<int>{0, 1}));
  EXPECT_EQ(nodes[0].cpus, cpus("0-15,32-47"));
  EXPECT_EQ(nodes[1].cpus, cpus("16-31,48-63"));
}

TEST(NumaTopology, ReadsFourNodesInOrder) {
  std::vector<NumaNode> nodes = read_numa_nodes(topology("four-node"), cpus("0"));
  ASSERT_EQ(ids(nodes), (std::vector<int>{0, 1, 2, 3}));
  for (const NumaNode& node : nodes) {
    EXPECT_EQ(node.cpus, cpus(std::to_string(8 * node.id) + "-" + std::to_string(8 * node.id + 7)))
        << "node " << node.id;
  }
}

TEST(NumaTopology, KeepsAMemoryOnlyNodeWithoutCpus) {
  std::vector<NumaNode> nodes = read_numa_nodes(topology("memory-only"), cpus("0"));
  ASSERT_EQ(ids(nodes), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(nodes[1].cpus, cpus("8-15"));
  EXPECT_TRUE(nodes[2].cpus.empty());
}

TEST(NumaTopology, FallsBackToOneNodeWithoutTheFolder) {
  std::vector<NumaNode> nodes = read_numa_nodes(topology("absent"), cpus("0-3"));
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].id, 0);
  EXPECT_EQ(nodes[0].cpus, cpus("0-3"));
}

TEST(NumaFactor, BindingANodeBindsItsMemoryAndCpus) {
  Host host = host_from("four-node");
  auto profile = profile_for(host, {"numa=bind:1"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;

  RunFactors run = plan_run(*profile, host, 0);
  const launch::Controls& controls = run.plan.controls;
  EXPECT_EQ(controls.mem_policy, launch::Controls::MemPolicy::kBind);
  EXPECT_EQ(controls.mem_nodes, (std::vector<int>{1}));
  ASSERT_TRUE(controls.cpus.has_value());
  EXPECT_EQ(*controls.cpus, cpus("8-15"));
  ASSERT_NE(record_of(run, "numa"), nullptr);
  EXPECT_EQ(record_of(run, "numa")->value, "bind:1");
}

TEST(NumaFactor, TheDefaultIsTheFirstNode) {
  Host host = host_from("two-socket");
  auto profile = profile_for(host, {"numa"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  EXPECT_EQ(profile->find("numa")->reference, "bind:0");
  RunFactors run = plan_run(*profile, host, 0);
  EXPECT_EQ(*run.plan.controls.cpus, cpus("0-15,32-47"));
}

TEST(NumaFactor, PerturbationVisitsEveryOtherNodeAndInterleaveBeforeRepeating) {
  Host host = host_from("four-node");
  auto profile = profile_for(host, {}, {"numa"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  ASSERT_EQ(profile->find("numa")->reference, "bind:0");

  std::vector<std::string> seen;
  for (int k = 1; k <= 4; ++k) {
    seen.push_back(record_of(plan_run(*profile, host, k), "numa")->value);
  }
  std::vector<std::string> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"bind:1", "bind:2", "bind:3", "interleave:0-3"}));
  EXPECT_EQ(record_of(plan_run(*profile, host, 5), "numa")->value, seen[0]);

  // The reference run keeps the pinned node.
  RunFactors reference = plan_run(*profile, host, 0);
  EXPECT_EQ(record_of(reference, "numa")->value, "bind:0");
  EXPECT_EQ(reference.plan.controls.mem_nodes, (std::vector<int>{0}));
}

TEST(NumaFactor, InterleaveSpreadsMemoryAndLeavesTheCpus) {
  Host host = host_from("four-node");
  auto profile = profile_for(host, {"numa=interleave:0-3"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  RunFactors run = plan_run(*profile, host, 0);
  EXPECT_EQ(run.plan.controls.mem_policy, launch::Controls::MemPolicy::kInterleave);
  EXPECT_EQ(run.plan.controls.mem_nodes, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_FALSE(run.plan.controls.cpus.has_value());
}

TEST(NumaFactor, BindingAMemoryOnlyNodeLeavesTheCpus) {
  Host host = host_from("memory-only");
  auto profile = profile_for(host, {"numa=bind:3"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  RunFactors run = plan_run(*profile, host, 0);
  EXPECT_EQ(run.plan.controls.mem_nodes, (std::vector<int>{3}));
  EXPECT_FALSE(run.plan.controls.cpus.has_value());

  auto absent = profile_for(host, {"numa=bind:2"});
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().message.find("NUMA node 2 does not exist (nodes: 0-1,3)"),
            std::string::npos)
      << absent.error().message;
}

TEST(NumaFactor, OneNodeCannotBePerturbed) {
  Host host = host_from("one-node");
  auto profile = profile_for(host, {}, {"numa"});
  ASSERT_FALSE(profile.ok());
  EXPECT_EQ(profile.error().message.rfind("numa:", 0), 0u) << profile.error().message;
}

TEST(NumaFactor, OneNodeIsNotApplicableUnderPinAll) {
  Host host = host_from("one-node");
  auto profile = profile_for(host, {"all"});
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  const ProfileEntry* numa = profile->find("numa");
  EXPECT_EQ(numa->mode, Mode::kPin);
  EXPECT_EQ(numa->applied, Applied::kNotApplicable);
  EXPECT_EQ(numa->reason, "one NUMA node");

  RunFactors run = plan_run(*profile, host, 0);
  EXPECT_EQ(run.plan.controls.mem_policy, launch::Controls::MemPolicy::kDefault);
  EXPECT_EQ(record_of(run, "numa")->applied, Applied::kNotApplicable);
}

TEST(NumaFactor, OneNodeRefusesAnotherNode) {
  Host host = host_from("one-node");
  auto profile = profile_for(host, {"numa=bind:1"});
  ASSERT_FALSE(profile.ok());
  EXPECT_EQ(profile.error().message, "numa: NUMA node 1 does not exist (nodes: 0)");
}

}  // namespace
}  // namespace memdet::factors
