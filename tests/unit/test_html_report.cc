#include "report/html.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "compare/digest.h"
#include "report/campaign_terminal.h"
#include "report/campaign_view.h"
#include "scratch.h"

namespace memdet::report {
namespace {

using nlohmann::json;
using testing_support::Scratch;

// Two runs' loss logs that part at step 3.
constexpr const char* kReferenceLog =
    "step 0 loss 2.5\nstep 1 loss 2.25\nstep 2 loss 2.125\nstep 3 loss 2.0\nstep 4 loss 1.875\n";
constexpr const char* kOtherLog =
    "step 0 loss 2.5\nstep 1 loss 2.25\nstep 2 loss 2.125\nstep 3 loss 2.0000002\n"
    "step 4 loss 1.8750004\n";

json run_json(int index, const std::string& log, const std::string& dir, int outcome) {
  auto digest = compare::digest_file(log);
  return {{"index", index},
          {"label", "0" + std::to_string(index)},
          {"dir", dir + "/run-0" + std::to_string(index)},
          {"cwd", dir},
          {"phase", ""},
          {"factor", ""},
          {"outcome", outcome},
          {"launch", {{"outcome", "exited"}, {"exit_code", 0}, {"wall_seconds", 0.5}}},
          {"artifacts", json::array({{{"key", "logs/{run}.txt"},
                                      {"written", log},
                                      {"kept", nullptr},
                                      {"digest", digest ? *digest : ""},
                                      {"text", true}}})}};
}

// A check.json as memdet writes it, cut to what the report reads, with
// text meant to break HTML wherever the page shows stored strings.
json check_document(const Scratch& scratch) {
  const std::string a = scratch.write("logs/01.txt", kReferenceLog);
  const std::string b = scratch.write("logs/02.txt", kOtherLog);
  json text_diff = {{"lines_reference", 5},
                    {"lines_other", 5},
                    {"differing_lines", 2},
                    {"first_line", 4},
                    {"first_step", "3"},
                    {"first_number_step", "3"},
                    {"first_number_line", 4},
                    {"first_text_reference", "step 3 loss 2.0"},
                    {"first_text_other", "step 3 loss 2.0000002 <b>"},
                    {"numbers_differing", 2},
                    {"numbers_compared", 10}};
  return {{"schema", "memdet.check/2"},
          {"campaign_dir", scratch.path() + "/<script>alert('x')</script>"},
          {"command", json::array({"train", "--tag", "a&b \"c\""})},
          {"step_regex", "^step (\\d+)"},
          {"masks", json::array()},
          {"runs_requested", 2},
          {"result",
           {{"verdict", "differs"},
            {"completed_runs", 2},
            {"distinct_outcomes", 2},
            {"text", "verdict: results DIFFER: <i>2</i> distinct outcomes in 2 completed runs\n"}}},
          {"outcomes", json::array({{{"id", 0},
                                     {"runs", json::array({1})},
                                     {"reference", true},
                                     {"vs_reference", json::array()}},
                                    {{"id", 1},
                                     {"runs", json::array({2})},
                                     {"reference", false},
                                     {"vs_reference", json::array({{{"key", "logs/{run}.txt"},
                                                                    {"kind", "text"},
                                                                    {"text", text_diff}}})}}})},
          {"runs",
           json::array({run_json(1, a, scratch.path(), 0), run_json(2, b, scratch.path(), 1)})}};
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

TEST(HtmlEscape, EscapesMarkupQuotesAndControlCharacters) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(html_escape("bell\x07 and\x1b[31m"), "bell\\x07 and\\x1b[31m");
  EXPECT_EQ(html_escape("tab\tand\nline"), "tab\tand\nline");
}

TEST(HtmlReport, ShowsTheVerdictAndEscapesStoredText) {
  Scratch scratch;
  const std::string html = render_html(campaign_view(check_document(scratch), "check.json"));

  EXPECT_NE(html.find("Results differ"), std::string::npos);
  EXPECT_NE(html.find("verdict: results DIFFER: &lt;i&gt;2&lt;/i&gt; distinct outcomes"),
            std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a&amp;b"), std::string::npos);
  EXPECT_NE(html.find("step 3 loss 2.0000002 &lt;b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
}

TEST(HtmlReport, ReferencesNothingOutsideThePage) {
  Scratch scratch;
  const std::string html = render_html(campaign_view(check_document(scratch), "check.json"));

  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
}

TEST(HtmlReport, DrawsEachRunAndMarksTheFirstDivergentStep) {
  Scratch scratch;
  CampaignView view = campaign_view(check_document(scratch), "check.json");
  ASSERT_EQ(view.loss.curves.size(), 2u);
  EXPECT_EQ(view.loss.curves[1].steps, (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_DOUBLE_EQ(view.loss.curves[1].values[3], 2.0000002);
  ASSERT_TRUE(view.loss.divergent_step);
  EXPECT_EQ(*view.loss.divergent_step, 3);

  const std::string html = render_html(view);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  // One line per run in the value chart, one for the run that parts in
  // the chart of distances.
  EXPECT_EQ(occurrences(html, "<polyline"), 3u);
  EXPECT_EQ(occurrences(html, "class=\"divergence\" data-step=\"3\""), 2u);
  EXPECT_NE(html.find("first divergent step 3"), std::string::npos);
}

// Runs one double apart, and runs whose distance overflows: neither may
// keep the chart from finishing.
TEST(HtmlReport, DrawsCurvesOneDoubleApartAndOnesTooFarApartToPlace) {
  for (const auto& [reference, other] :
       {std::pair<const char*, const char*>{"step 0 loss 1\nstep 1 loss 1\n",
                                            "step 0 loss 1\nstep 1 loss 1.0000000000000002\n"},
        {"step 0 loss 0.1\nstep 1 loss 0.1\n",
         "step 0 loss 0.1\nstep 1 loss 0.10000000000000002\n"},
        {"step 0 loss 1e308\nstep 1 loss 1\n", "step 0 loss -1e308\nstep 1 loss 1\n"}}) {
    Scratch scratch;
    json document = check_document(scratch);
    scratch.write("logs/01.txt", reference);
    scratch.write("logs/02.txt", other);
    for (int i = 0; i < 2; ++i) {
      document["runs"][i]["artifacts"][0]["digest"] =
          *compare::digest_file(scratch.path() + (i == 0 ? "/logs/01.txt" : "/logs/02.txt"));
    }

    const std::string html = render_html(campaign_view(document, "check.json"));
    EXPECT_NE(html.find("Results differ"), std::string::npos) << other;
    EXPECT_EQ(html.find("nan"), std::string::npos) << other;
    EXPECT_LT(html.size(), 200000u) << other;
  }
}

TEST(HtmlReport, AnInfiniteDistanceStaysInfinite) {
  Scratch scratch;
  json document = check_document(scratch);
  json& text = document["outcomes"][1]["vs_reference"][0]["text"];
  text["max_abs"] = "inf";
  text["max_rel"] = "inf";
  const std::string terminal = render_campaign_terminal(campaign_view(document, "check.json"));
  EXPECT_EQ(terminal.find("max abs 0"), std::string::npos) << terminal;
  EXPECT_NE(terminal.find("inf"), std::string::npos) << terminal;
}

TEST(HtmlReport, SaysSoWhenTheLogsAreGone) {
  Scratch scratch;
  json document = check_document(scratch);
  std::filesystem::remove(scratch.path() + "/logs/02.txt");
  // Rewritten since the run: no longer what the record's digest names.
  scratch.write("logs/01.txt", "step 0 loss 9\nstep 1 loss 9\n");

  CampaignView view = campaign_view(document, "check.json");
  EXPECT_TRUE(view.loss.curves.empty());
  const std::string html = render_html(view);
  EXPECT_EQ(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("runs 01, 02 are gone or no longer what the run wrote"), std::string::npos);
}

TEST(HtmlReport, OneSurvivingCopyServesEveryRunWithItsDigest) {
  Scratch scratch;
  json document = check_document(scratch);
  const std::string copy = scratch.write("run-01/artifacts/01.txt", kReferenceLog);
  document["runs"][0]["artifacts"][0]["kept"] = copy;
  std::filesystem::remove(scratch.path() + "/logs/01.txt");

  CampaignView view = campaign_view(document, "check.json");
  EXPECT_EQ(view.loss.curves.size(), 2u);
  EXPECT_TRUE(view.loss.notes.empty());
}

TEST(LoggedValue, PicksTheLossNotTheStep) {
  const std::string line = "step 12 lr 0.001 loss=0.693 time 3";
  const std::string_view step(line.data() + 5, 2);
  EXPECT_EQ(logged_value(line, step), 0.693);
  const std::string bare = "12 0.693147";
  EXPECT_EQ(logged_value(bare, std::string_view(bare.data(), 2)), 0.693147);
  EXPECT_EQ(logged_value("epoch 3 accuracy 0.91", {}), 0.91);
  EXPECT_EQ(logged_value("7 8", {}), 7);
  EXPECT_FALSE(logged_value("no numbers here", {}));
}

TEST(CampaignFile, BadInputIsOneLineNamingTheFile) {
  Scratch scratch;
  auto missing = read_campaign(scratch.path() + "/nowhere");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nowhere"), std::string::npos);

  auto empty = read_campaign(scratch.path());
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("neither isolate.json nor check.json"), std::string::npos);

  scratch.write("check.json", "{\"schema\": \"memdet.check/2\", \"runs\": [\n\x01garbage");
  auto garbage = read_campaign(scratch.path());
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find("check.json: not valid JSON"), std::string::npos);

  scratch.write("isolate.json", "{\"schema\": \"memdet.check/2\"}");
  auto wrong = read_campaign(scratch.path());
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("isolate.json: schema \"memdet.check/2\""),
            std::string::npos);

  // A FIFO in its place would block a plain read: refused at once.
  std::filesystem::remove(scratch.path() + "/isolate.json");
  std::filesystem::remove(scratch.path() + "/check.json");
  ASSERT_EQ(::mkfifo((scratch.path() + "/check.json").c_str(), 0644), 0);
  auto fifo = read_campaign(scratch.path());
  ASSERT_FALSE(fifo);
  EXPECT_NE(fifo.error().message.find("check.json: not a regular file"), std::string::npos);

  for (const auto* result : {&missing, &empty, &garbage, &wrong, &fifo}) {
    EXPECT_EQ(result->error().message.find('\n'), std::string::npos);
  }
}

TEST(CampaignFile, FieldsOfTheWrongTypeReadAsAbsent) {
  json document = {{"schema", "memdet.isolate/1"},
                   {"verdict", 7},
                   {"factors", "none"},
                   {"campaign", {{"runs", {{"label", 3}, {"artifacts", 1}}}, {"outcomes", 2}}}};
  CampaignView view = campaign_view(document, "isolate.json");
  EXPECT_EQ(view.kind, CampaignView::Kind::kIsolate);
  EXPECT_TRUE(view.factors.empty());
  EXPECT_NE(render_html(view).find("No verdict recorded"), std::string::npos);
}

TEST(CampaignTerminal, FactorTableFitsEightyColumns) {
  json document = {
      {"schema", "memdet.isolate/1"},
      {"verdict", "layout-or-timing-dependent"},
      {"verdict_text", "verdict: LAYOUT/TIMING-DEPENDENT: numa-balancing\n"},
      {"factors",
       json::array({{{"name", "numa-balancing"},
                     {"status", "changes-result"},
                     {"cause", "timing"},
                     {"runs", 12},
                     {"differing", 3},
                     {"values_tried", json::array({"interleave:0-3", "bind:1", "bind:2"})}},
                    {{"name", "heap"},
                     {"status", "no-effect-seen"},
                     {"runs", 4},
                     {"rate_below", 0.527},
                     {"values_tried", json::array({"16", "32", "48"})}}})},
      {"counter_changes", json::array({{{"factor", "heap"}, {"judged", true}}})},
      {"campaign", {{"campaign_dir", "/tmp/c"}}}};
  const std::string text = render_campaign_terminal(campaign_view(document, "isolate.json"));

  std::istringstream lines(text);
  std::string line;
  int table_lines = 0;
  while (std::getline(lines, line)) {
    EXPECT_LE(line.size(), 80u) << line;
    table_lines += line.find("numa-balancing") == 2 || line.find("heap") == 2;
  }
  EXPECT_EQ(table_lines, 2);
  EXPECT_NE(text.find("YES (timing)"), std::string::npos);
  EXPECT_NE(text.find("<53 %"), std::string::npos);
  EXPECT_NE(text.find("verdict: LAYOUT/TIMING-DEPENDENT: numa-balancing"), std::string::npos);
}

}  // namespace
}  // namespace memdet::report
