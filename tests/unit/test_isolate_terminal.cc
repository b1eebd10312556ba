// The isolate report's words and JSON for a search over sets of factors,
// from findings the protocol reached on synthetic outcomes.
#include "report/isolate_terminal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "report/check_terminal.h"
#include "report/isolate_json.h"

namespace memdet::report {
namespace {

using protocol::IsolateOutcome;
using protocol::IsolatePhase;
using protocol::IsolateStep;

bool holds(const std::vector<std::string>& pinned, const std::string& name) {
  return std::find(pinned.begin(), pinned.end(), name) != pinned.end();
}

// A campaign over entropy, clock, aslr and cpu, all varying when free, in
// which the free runs differ unless aslr and cpu are both pinned, and no
// perturbed value changes the result; `budget` caps it.
protocol::IsolateReport campaign(int budget) {
  protocol::IsolateReport report;
  for (const char* name : {"entropy", "clock", "aslr", "cpu"}) {
    protocol::FactorPlan plan;
    plan.name = name;
    plan.varies_when_free = true;
    report.settings.factors.push_back(plan);
  }
  report.settings.budget = budget;
  std::vector<IsolateOutcome> history;
  int fresh = 0;
  while (true) {
    protocol::IsolatePlan plan = protocol::plan_isolate(report.settings, history);
    report.findings = plan.findings;
    if (!plan.next) {
      break;
    }
    const IsolateStep& step = *plan.next;
    bool settled = step.phase != IsolatePhase::kFree;
    if (step.phase == IsolatePhase::kEnough && !step.pinned.empty()) {
      settled = holds(step.pinned, "aslr") && holds(step.pinned, "cpu");
    }
    IsolateOutcome outcome{step, false, settled ? "same" : "free-" + std::to_string(++fresh)};
    history.push_back(outcome);
    report.steps.push_back(step);
  }
  return report;
}

TEST(IsolateTerminal, ASetFoundTogetherIsTheVerdict) {
  const protocol::IsolateReport report = campaign(0);
  ASSERT_EQ(report.findings.verdict, protocol::IsolateVerdict::kLayoutDependent);
  const std::string text = printed([&](std::FILE* out) { print_isolate_verdict(report, out); });

  EXPECT_NE(text.find("LAYOUT/TIMING-DEPENDENT: aslr and cpu, found together"), std::string::npos)
      << text;
  EXPECT_NE(text.find("pinning them together is enough; neither alone was shown"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("aslr+cpu: enough"), std::string::npos) << text;
  EXPECT_NE(text.find("entropy+clock: NOT enough"), std::string::npos) << text;
  EXPECT_NE(text.find("leaving any one of"), std::string::npos) << text;

  const nlohmann::json document = isolate_json(report);
  const nlohmann::json& search = document.at("set_search");
  EXPECT_EQ(search["found"], nlohmann::json::array({"aslr", "cpu"}));
  EXPECT_TRUE(search["complete"].get<bool>());
  EXPECT_EQ(search["tests"].size(), 4u);
  EXPECT_EQ(search["tests"][1]["pinned"], nlohmann::json::array({"aslr", "cpu"}));
  EXPECT_TRUE(search["tests"][1]["shown"].get<bool>());
}

TEST(IsolateTerminal, ASearchCutShortSaysWhatItStillNeeded) {
  // 5 free, 8 pooled, 4 values of each factor, then entropy+clock refuted
  // in 2 runs: a budget of 32 stops after 1 run of aslr+cpu.
  const protocol::IsolateReport report = campaign(5 + 8 + 4 * 4 + 2 + 1);
  ASSERT_EQ(report.findings.verdict, protocol::IsolateVerdict::kInconclusive);
  const std::string text = printed([&](std::FILE* out) { print_isolate_verdict(report, out); });
  EXPECT_NE(text.find("the search is unfinished: aslr+cpu needs at least 4 more agreeing"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("aslr+cpu: not shown yet (1 of 5 runs made)"), std::string::npos) << text;

  const nlohmann::json document = isolate_json(report);
  EXPECT_FALSE(document.at("set_search")["complete"].get<bool>());
  EXPECT_EQ(document.at("set_search")["testing"], nlohmann::json::array({"aslr", "cpu"}));
  EXPECT_EQ(document.at("set_search")["needs_runs"], 4);
}

}  // namespace
}  // namespace memdet::report
