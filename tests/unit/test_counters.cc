#include "measure/counters.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "scratch.h"

namespace memdet::measure {
namespace {

using testing_support::Scratch;

const PlannedEvent& planned(const std::vector<PlannedEvent>& plan, const std::string& name) {
  for (const PlannedEvent& event : plan) {
    if (event.spec.name == name) {
      return event;
    }
  }
  ADD_FAILURE() << name << " is not planned";
  static const PlannedEvent none;
  return none;
}

TEST(CounterPlan, UnprivilegedOpensUserSpaceOnlyAndRefusesKernelCounts) {
  std::vector<PlannedEvent> plan = plan_events(default_events(), Privilege{false, 2});

  EXPECT_EQ(planned(plan, "context-switches").unsupported, kNeedsPrivilege);
  EXPECT_EQ(planned(plan, "cpu-migrations").unsupported, kNeedsPrivilege);
  for (const char* name : {"task-clock", "page-faults", "minor-faults", "major-faults", "cycles"}) {
    EXPECT_TRUE(planned(plan, name).unsupported.empty()) << name;
    EXPECT_TRUE(planned(plan, name).exclude_kernel) << name;
  }
}

TEST(CounterPlan, UnreadableParanoidCountsAsUnprivileged) {
  std::vector<PlannedEvent> plan = plan_events(default_events(), Privilege{false, std::nullopt});

  EXPECT_EQ(planned(plan, "context-switches").unsupported, kNeedsPrivilege);
  EXPECT_TRUE(planned(plan, "page-faults").exclude_kernel);
}

TEST(CounterPlan, ParanoidOneOrCapabilityOpensEverything) {
  for (Privilege privilege :
       {Privilege{false, 1}, Privilege{false, -1}, Privilege{true, 2}, Privilege{true, 3}}) {
    std::vector<PlannedEvent> plan = plan_events(default_events(), privilege);
    ASSERT_EQ(plan.size(), default_events().size());
    for (const PlannedEvent& event : plan) {
      EXPECT_TRUE(event.unsupported.empty()) << event.spec.name;
      EXPECT_FALSE(event.exclude_kernel) << event.spec.name;
    }
  }
}

TEST(CounterPlan, DefaultEventsCoverSoftwareHardwareAndNamed) {
  int software = 0;
  int hardware = 0;
  int named = 0;
  for (const EventSpec& spec : default_events()) {
    (spec.source == Source::kSoftware   ? software
     : spec.source == Source::kHardware ? hardware
                                        : named)++;
  }
  EXPECT_EQ(software, 6);
  EXPECT_EQ(hardware, 4);
  EXPECT_EQ(named, 2);
}

TEST(CounterReason, PermissionErrorsNameTheParanoidSetting) {
  EXPECT_EQ(open_failure_reason(EACCES, Source::kSoftware, true), kNeedsPrivilege);
  EXPECT_EQ(open_failure_reason(EPERM, Source::kHardware, false), kNeedsPrivilege);
}

TEST(CounterReason, MissingEventWithoutPmuIsNoPmu) {
  EXPECT_EQ(open_failure_reason(ENOENT, Source::kHardware, false), kNoPmu);
  EXPECT_EQ(open_failure_reason(ENODEV, Source::kNamed, false), kNoPmu);
  EXPECT_EQ(open_failure_reason(EOPNOTSUPP, Source::kHardware, false), kNoPmu);
}

TEST(CounterReason, MissingEventWithPmuSaysThePmuLacksIt) {
  std::string reason = open_failure_reason(ENOENT, Source::kHardware, true);
  EXPECT_NE(reason, kNoPmu);
  EXPECT_NE(reason.find("does not count"), std::string::npos) << reason;
  // A software event never needs a PMU.
  EXPECT_NE(open_failure_reason(ENOENT, Source::kSoftware, false), kNoPmu);
}

TEST(CounterReason, OtherErrorsKeepTheirText) {
  EXPECT_NE(open_failure_reason(EMFILE, Source::kSoftware, true).find("file descriptor"),
            std::string::npos);
  EXPECT_NE(open_failure_reason(EINVAL, Source::kSoftware, true).find("perf_event_open"),
            std::string::npos);
}

TEST(CounterPrivilege, ParanoidIsReadFromTheGivenFile) {
  Scratch scratch;
  EXPECT_EQ(read_perf_event_paranoid(scratch.write("two", "2\n")), 2);
  EXPECT_EQ(read_perf_event_paranoid(scratch.write("minus", "-1\n")), -1);
  EXPECT_EQ(read_perf_event_paranoid(scratch.write("words", "two\n")), std::nullopt);
  EXPECT_EQ(read_perf_event_paranoid(scratch.write("empty", "")), std::nullopt);
  EXPECT_EQ(read_perf_event_paranoid(scratch.path() + "/absent"), std::nullopt);
}

TEST(CounterPrivilege, RootIsCapable) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "not root: cannot tell capability apart from paranoid here";
  }
  EXPECT_TRUE(perf_capable());
  EXPECT_TRUE(read_privilege().kernel_allowed());
}

TEST(CounterPmu, CoreDeviceDirectoryMeansAVisiblePmu) {
  Scratch with_cpu;
  with_cpu.write("bus/event_source/devices/software/type", "1\n");
  with_cpu.write("bus/event_source/devices/cpu/type", "4\n");
  EXPECT_TRUE(core_pmu_visible(with_cpu.path()));

  Scratch hybrid;
  hybrid.write("bus/event_source/devices/cpu_core/type", "4\n");
  EXPECT_TRUE(core_pmu_visible(hybrid.path()));

  Scratch without;
  without.write("bus/event_source/devices/software/type", "1\n");
  without.write("bus/event_source/devices/tracepoint/type", "2\n");
  without.write("bus/event_source/devices/msr/type", "9\n");
  EXPECT_FALSE(core_pmu_visible(without.path()));
  EXPECT_FALSE(core_pmu_visible(without.path() + "/nowhere"));
}

TEST(CounterNamed, UnknownNameIsAnUnknownEvent) {
  auto encoding = resolve_named_event("NO_SUCH_EVENT_ANYWHERE:NOR_THIS_MASK", false);
  ASSERT_FALSE(encoding.ok());
  EXPECT_EQ(encoding.error().message, kUnknownEvent);
}

TEST(CounterValue, MultiplexedCountIsScaledToTheWholeRun) {
  CounterValue counter;
  counter.supported = true;
  counter.raw = 1000;
  counter.enabled_ns = 400;
  counter.running_ns = 100;
  EXPECT_TRUE(counter.multiplexed());
  EXPECT_DOUBLE_EQ(counter.value(), 4000.0);

  counter.running_ns = 400;
  EXPECT_FALSE(counter.multiplexed());
  EXPECT_DOUBLE_EQ(counter.value(), 1000.0);
}

CounterValue unsupported(const std::string& name, const std::string& reason) {
  CounterValue counter;
  counter.name = name;
  counter.reason = reason;
  return counter;
}

TEST(CounterNotices, OneLinePerReasonAndEachCounterOnce) {
  CounterReadings readings;
  readings.measured = true;
  CounterValue counted;
  counted.name = "page-faults";
  counted.supported = true;
  readings.counters = {unsupported("cycles", kNoPmu), counted,
                       unsupported("context-switches", kNeedsPrivilege),
                       unsupported("instructions", kNoPmu)};

  UnsupportedNotices notices;
  std::vector<std::string> lines = notices.take(readings);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "hardware counters not supported (no hardware PMU visible)");
  EXPECT_EQ(lines[1], "context-switches not supported (needs perf_event_paranoid <= 1 or root)");

  // The next run refuses the same counters: nothing more to say, unless a
  // counter is refused for the first time.
  EXPECT_TRUE(notices.take(readings).empty());
  readings.counters.push_back(unsupported("cpu-migrations", kNeedsPrivilege));
  lines = notices.take(readings);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "cpu-migrations not supported (needs perf_event_paranoid <= 1 or root)");
}

TEST(CounterReadings, FindByName) {
  CounterReadings readings;
  readings.counters = {unsupported("cycles", kNoPmu)};
  ASSERT_NE(readings.find("cycles"), nullptr);
  EXPECT_EQ(readings.find("cycles")->reason, kNoPmu);
  EXPECT_EQ(readings.find("instructions"), nullptr);
}

}  // namespace
}  // namespace memdet::measure
