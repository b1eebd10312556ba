#include "compare/trace.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compare/tensor_diff.h"
#include "scratch.h"

namespace memdet::compare {
namespace {

// Lines are built as the helper writes them: compact JSON, one object a
// line, keys in the order written, so that a header opens with
// "memdet_trace".
using json = nlohmann::ordered_json;
using Report = nlohmann::json;
using testing_support::Scratch;

std::string jsonl(const std::vector<json>& lines) {
  std::string text;
  for (const json& line : lines) text += line.dump() + "\n";
  return text;
}

json header(const std::vector<std::string>& names, bool grads = false) {
  json params = json::array();
  for (const std::string& name : names) {
    params.push_back({{"name", name}, {"dtype", "float32"}, {"shape", {2}}});
  }
  return {{"memdet_trace", 1},
          {"torch", "2.3.1"},
          {"grads", grads},
          {"ops", nullptr},
          {"params", params}};
}

json step_line(int64_t step, const std::string& loss, const std::vector<std::string>& params) {
  return {{"step", step}, {"loss", loss}, {"params", params}};
}

// One [label, digest, shape] entry; an empty digest writes null.
json tensor(const std::string& label, const std::string& digest) {
  return json::array({label, digest.empty() ? json(nullptr) : json(digest), {2}});
}

json op_line(int64_t call, const std::string& name, json inputs, json outputs, int64_t step = 0) {
  return {{"op", call},
          {"step", step},
          {"name", name},
          {"phase", "forward"},
          {"module", "fc"},
          {"args", "alpha=1"},
          {"args_digest", "0000a1a1"},
          {"in", inputs},
          {"out", outputs}};
}

// Three operators of step 0, the same in both runs until a test changes
// one, then the lines of steps 0 to 2.
struct Lines {
  std::vector<json> ops = {
      op_line(0, "aten.mm.default", {tensor("self", "000000a0"), tensor("mat2", "000000b0")},
              {tensor("out0", "000000c0")}),
      op_line(1, "aten.add.Tensor", {tensor("self", "000000c0"), tensor("other", "000000d0")},
              {tensor("out0", "000000e0")}),
      op_line(2, "aten.relu.default", {tensor("self", "000000e0")}, {tensor("out0", "000000f0")}),
  };
  std::vector<json> steps = {step_line(0, "2.5", {"0000aaaa", "0000bbbb"}),
                             step_line(1, "2.25", {"0001aaaa", "0001bbbb"}),
                             step_line(2, "2.0", {"0002aaaa", "0002bbbb"})};

  std::string text() const {
    std::vector<json> all = {header({"fc.weight", "fc.bias"})};
    all.insert(all.end(), ops.begin(), ops.end());
    all.insert(all.end(), steps.begin(), steps.end());
    return jsonl(all);
  }
};

Trace read_or_fail(const std::string& path) {
  auto trace = read_trace(path);
  EXPECT_TRUE(trace) << trace.error().message;
  return trace ? *trace : Trace{};
}

// Writes the two traces, each in its own run folder, and compares them.
TraceDiff compare_texts(const Scratch& scratch, const std::string& a, const std::string& b) {
  const Trace trace_a = read_or_fail(scratch.write("a/memdet-trace.jsonl", a));
  const Trace trace_b = read_or_fail(scratch.write("b/memdet-trace.jsonl", b));
  return compare_traces(trace_a, trace_b, Tolerance{});
}

// The error for a trace of these lines, which must start "PATH:LINE: ".
void expect_refused(const std::vector<std::string>& lines, size_t line, const std::string& says) {
  Scratch scratch;
  std::string text;
  for (const std::string& each : lines) text += each + "\n";
  const std::string path = scratch.write("memdet-trace.jsonl", text);

  auto trace = read_trace(path);

  ASSERT_FALSE(trace) << "read a bad trace:\n" << text;
  const std::string& message = trace.error().message;
  EXPECT_TRUE(message.starts_with(path + ":" + std::to_string(line) + ": ")) << message;
  EXPECT_NE(message.find(says), std::string::npos) << message;
}

std::string header_text() { return header({"w", "b"}).dump(); }

bool has_line_containing(const std::vector<std::string>& lines, const std::string& text) {
  for (const std::string& line : lines) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// A safetensors file of one F32 tensor "out0".
std::string safetensors_out0(const std::vector<float>& values) {
  std::string data(values.size() * sizeof(float), '\0');
  std::memcpy(data.data(), values.data(), data.size());
  const std::string header_json = "{\"out0\":{\"dtype\":\"F32\",\"shape\":[" +
                                  std::to_string(values.size()) + "],\"data_offsets\":[0," +
                                  std::to_string(data.size()) + "]}}";
  std::string file;
  for (int i = 0; i < 8; ++i) file += static_cast<char>((header_json.size() >> (8 * i)) & 0xff);
  return file + header_json + data;
}

// Reading.

TEST(TraceRead, ReadsEveryFieldOfAValidTraceWithBlankLines) {
  Scratch scratch;
  json op = op_line(7, "aten.fill_.Scalar", {tensor("self", "")}, {tensor("out0", "0000c0c0")});
  op["module"] = nullptr;
  op["phase"] = "backward";
  op["node"] = "AddmmBackward0";
  op["rng"] = "12345678";
  op["saved"] = "op-000007.safetensors";
  json step = step_line(0, "0.5", {"0000aaaa", "0000bbbb"});
  step["saved"] = "step-000000.safetensors";
  const std::string path = scratch.write(
      "memdet-trace.jsonl", header_text() + "\n\n" + op.dump() + "\n\n" + step.dump() + "\n\n");

  const Trace trace = read_or_fail(path);

  EXPECT_EQ(trace.path, path);
  EXPECT_EQ(trace.torch_version, "2.3.1");
  EXPECT_FALSE(trace.grads);
  ASSERT_EQ(trace.params.size(), 2u);
  EXPECT_EQ(trace.params[1].name, "b");
  EXPECT_EQ(trace.params[1].dtype, "float32");
  EXPECT_EQ(trace.params[1].shape, std::vector<uint64_t>{2});
  ASSERT_EQ(trace.steps.size(), 1u);
  EXPECT_EQ(trace.steps[0].loss, std::optional<std::string>("0.5"));
  EXPECT_EQ(trace.steps[0].params, (std::vector<std::string>{"0000aaaa", "0000bbbb"}));
  EXPECT_TRUE(trace.steps[0].grads.empty());
  EXPECT_EQ(trace.steps[0].saved, "step-000000.safetensors");
  ASSERT_EQ(trace.ops.size(), 1u);
  const TraceOp& read = trace.ops[0];
  EXPECT_EQ(read.call, 7);
  EXPECT_EQ(read.name, "aten.fill_.Scalar");
  EXPECT_EQ(read.phase, "backward");
  EXPECT_FALSE(read.module.has_value());
  EXPECT_EQ(read.node, "AddmmBackward0");
  EXPECT_EQ(read.args, "alpha=1");
  EXPECT_EQ(read.args_digest, "0000a1a1");
  ASSERT_EQ(read.inputs.size(), 1u);
  EXPECT_EQ(read.inputs[0].label, "self");
  EXPECT_FALSE(read.inputs[0].digest.has_value());
  ASSERT_EQ(read.outputs.size(), 1u);
  EXPECT_EQ(read.outputs[0].digest, std::optional<std::string>("0000c0c0"));
  EXPECT_EQ(read.outputs[0].shape, std::vector<uint64_t>{2});
  EXPECT_EQ(read.rng, std::optional<std::string>("12345678"));
  EXPECT_EQ(read.saved, "op-000007.safetensors");
}

TEST(TraceRead, ReadsGradientsWhenTheHeaderAsksForThem) {
  Scratch scratch;
  json step = step_line(0, "0.5", {"0000aaaa", "0000bbbb"});
  step["grads"] = {"0000cccc", nullptr};
  const std::string path =
      scratch.write("memdet-trace.jsonl", jsonl({header({"w", "b"}, true), step}));

  const Trace trace = read_or_fail(path);

  EXPECT_TRUE(trace.grads);
  ASSERT_EQ(trace.steps.size(), 1u);
  ASSERT_EQ(trace.steps[0].grads.size(), 2u);
  EXPECT_EQ(trace.steps[0].grads[0], std::optional<std::string>("0000cccc"));
  EXPECT_FALSE(trace.steps[0].grads[1].has_value());
}

TEST(TraceRead, RefusesALineThatIsNotJson) {
  expect_refused({header_text(), "{\"step\": 0, \"params\": [", "{}"}, 2, "JSON");
  expect_refused({header_text(), "[\"step\", 0]"}, 2, "not a JSON object");
}

TEST(TraceRead, RefusesAFirstLineThatIsNotAHeader) {
  expect_refused({step_line(0, "1.0", {"0000aaaa", "0000bbbb"}).dump()}, 1, "header");
}

TEST(TraceRead, RefusesAHeaderOfAnotherFormat) {
  json other = header({"w", "b"});
  other["memdet_trace"] = 2;
  expect_refused({other.dump()}, 1, "format 1");
}

TEST(TraceRead, RefusesHeaderParamsThatAreNotAList) {
  json other = header({"w"});
  other["params"] = json::object({{"w", "float32"}});
  expect_refused({other.dump()}, 1, "\"params\" must be a list");
}

TEST(TraceRead, RefusesAStepWithTheWrongNumberOfParameterDigests) {
  expect_refused({header_text(), step_line(0, "1.0", {"0000aaaa"}).dump()}, 2,
                 "one digest for each of the header's 2 parameters");
  expect_refused({header_text(), step_line(0, "1.0", {"1", "2", "3"}).dump()}, 2,
                 "one digest for each");
}

TEST(TraceRead, RefusesAStepNumberThatDoesNotIncrease) {
  const std::string one = step_line(1, "1.0", {"0000aaaa", "0000bbbb"}).dump();
  const std::string zero = step_line(0, "1.0", {"0000aaaa", "0000bbbb"}).dump();
  expect_refused({header_text(), zero, one, one}, 4, "step 1 comes after step 1");
  expect_refused({header_text(), one, zero}, 3, "step 0 comes after step 1");
}

TEST(TraceRead, RefusesAnOperatorCallNumberThatDoesNotIncrease) {
  const json five = op_line(5, "aten.mm.default", json::array(), json::array());
  const json three = op_line(3, "aten.mm.default", json::array(), json::array());
  expect_refused({header_text(), five.dump(), three.dump()}, 3,
                 "operator 3 comes after operator 5");
  expect_refused({header_text(), five.dump(), five.dump()}, 3, "operator 5 comes after operator 5");
}

TEST(TraceRead, RefusesASavedNameThatLeavesTheTensorFolder) {
  for (const char* name : {"../x", "a/b", "..", ".", ""}) {
    SCOPED_TRACE(name);
    json step = step_line(0, "1.0", {"0000aaaa", "0000bbbb"});
    step["saved"] = name;
    expect_refused({header_text(), step.dump()}, 2, "\"saved\" must name a file inside");
    json op = op_line(0, "aten.mm.default", json::array(), json::array());
    op["saved"] = name;
    expect_refused({header_text(), op.dump()}, 2, "\"saved\" must name a file inside");
  }
}

TEST(TraceRead, RefusesADigestLongerThan64Characters) {
  const std::string longest(64, 'f');
  Scratch scratch;
  const std::string path = scratch.write(
      "memdet-trace.jsonl", jsonl({header({"w", "b"}), step_line(0, "1.0", {longest, "1"})}));
  EXPECT_TRUE(read_trace(path)) << "a 64-character digest is allowed";

  expect_refused({header_text(), step_line(0, "1.0", {longest + "f", "1"}).dump()}, 2,
                 "a parameter digest must be a digest string or null");
  const json op = op_line(0, "aten.mm.default", {tensor("self", longest + "f")}, json::array());
  expect_refused({header_text(), op.dump()}, 2, "an entry of \"in\" must be a digest string");
}

TEST(TraceRead, RefusesAShapeWithANegativeSize) {
  json op = op_line(0, "aten.mm.default", json::array(), json::array());
  op["out"] = json::array({json::array({"out0", "0000aaaa", {2, -1}})});
  expect_refused({header_text(), op.dump()}, 2,
                 "an entry of \"out\"'s shape must be a list of sizes");

  json negative = header({"w"});
  negative["params"][0]["shape"] = {-2};
  expect_refused({negative.dump()}, 1, "\"shape\" must be a list of sizes");
}

TEST(TraceRead, RefusesAnInputThatIsNotLabelDigestShape) {
  const std::vector<json> entries = {
      json::array({"self", "0000aaaa"}),
      json::array({7, "0000aaaa", {2}}),
      json("self"),
      json::array({"self", "0000aaaa", {2}, "extra"}),
  };
  for (const json& entry : entries) {
    SCOPED_TRACE(entry.dump());
    json op = op_line(0, "aten.mm.default", json::array({entry}), json::array());
    expect_refused({header_text(), op.dump()}, 2,
                   "an entry of \"in\" must be [label, digest, shape]");
  }
}

TEST(TraceRead, RefusesAnEmptyFileNamingIt) {
  Scratch scratch;
  const std::string path = scratch.write("memdet-trace.jsonl", "");

  auto trace = read_trace(path);

  ASSERT_FALSE(trace);
  EXPECT_TRUE(trace.error().message.starts_with(path + ": ")) << trace.error().message;
  EXPECT_NE(trace.error().message.find("empty"), std::string::npos) << trace.error().message;
}

TEST(TraceRead, RefusesAFolderNamingIt) {
  Scratch scratch;

  auto trace = read_trace(scratch.path());

  ASSERT_FALSE(trace);
  EXPECT_TRUE(trace.error().message.starts_with(scratch.path() + ": ")) << trace.error().message;
  EXPECT_NE(trace.error().message.find("folder"), std::string::npos) << trace.error().message;
}

TEST(TraceRead, RefusesAMissingFileNamingIt) {
  Scratch scratch;
  const std::string path = scratch.path() + "/absent.jsonl";

  auto trace = read_trace(path);

  ASSERT_FALSE(trace);
  EXPECT_TRUE(trace.error().message.starts_with(path + ": ")) << trace.error().message;
}

TEST(TraceLooksLike, TrueForAHeaderAsTheHelperWritesIt) {
  Scratch scratch;
  EXPECT_TRUE(looks_like_trace(scratch.write("t.jsonl", Lines{}.text())));
}

TEST(TraceLooksLike, FalseForOtherJson) {
  Scratch scratch;
  EXPECT_FALSE(looks_like_trace(scratch.write("step.jsonl", jsonl({step_line(0, "1.0", {})}))));
  EXPECT_FALSE(looks_like_trace(scratch.write("other.json", "{\"memdet_tracer\":1,\"x\":2}\n")));
  EXPECT_FALSE(looks_like_trace(scratch.write("list.json", "[{\"memdet_trace\":1}]\n")));
}

TEST(TraceLooksLike, FalseForAShortFile) {
  Scratch scratch;
  EXPECT_FALSE(looks_like_trace(scratch.write("short.jsonl", "{\"memdet_tr")));
  EXPECT_FALSE(looks_like_trace(scratch.write("empty.jsonl", "")));
}

TEST(TraceLooksLike, FalseForAMissingFileOrAFolder) {
  Scratch scratch;
  EXPECT_FALSE(looks_like_trace(scratch.path() + "/absent.jsonl"));
  EXPECT_FALSE(looks_like_trace(scratch.path()));
}

// Steps.

// Steps 0 to count - 1 of a trace of parameters w and b, with the loss and
// digests a test may change.
struct StepTrace {
  std::vector<std::string> names = {"w", "b"};
  std::vector<json> steps;

  explicit StepTrace(int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      const std::string n = std::to_string(i);
      steps.push_back(step_line(i, "1.0", {"a000000" + n, "b000000" + n}));
    }
  }

  std::string text() const {
    std::vector<json> all = {header(names)};
    all.insert(all.end(), steps.begin(), steps.end());
    return jsonl(all);
  }
};

TEST(TraceCompare, IdenticalTracesAreIdentical) {
  Scratch scratch;
  const Lines lines;

  const TraceDiff diff = compare_texts(scratch, lines.text(), lines.text());

  EXPECT_TRUE(diff.identical);
  EXPECT_FALSE(diff.first_step.has_value());
  EXPECT_FALSE(diff.loss_differs);
  EXPECT_FALSE(diff.steps_part);
  EXPECT_TRUE(diff.header_problems.empty());
  EXPECT_TRUE(diff.differing_tensors.empty());
  EXPECT_TRUE(diff.growth.empty());
  EXPECT_EQ(diff.steps_a, 3u);
  EXPECT_EQ(diff.tensors, 2u);
  EXPECT_EQ(diff.ops_a, 3u);
  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kNone);
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff), "traces identical: 3 steps and 3"));
}

TEST(TraceCompare, ALossOnlyDifferenceNamesItsStep) {
  Scratch scratch;
  const StepTrace a(6);
  StepTrace b(6);
  b.steps[3]["loss"] = "1.0000001";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_FALSE(diff.identical);
  EXPECT_EQ(diff.first_step, std::optional<int64_t>(3));
  EXPECT_TRUE(diff.loss_differs);
  EXPECT_FALSE(diff.steps_part);
  EXPECT_TRUE(diff.differing_tensors.empty());
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff), "first divergent step: 3 (the loss)"));
}

TEST(TraceCompare, DifferingTensorsComeInModuleOrder) {
  Scratch scratch;
  StepTrace a(4);
  // Header order, not the alphabet's: "fc" before "embed".
  a.names = {"fc.weight", "embed.weight", "out.bias"};
  for (json& step : a.steps) step["params"] = {"00000001", "00000002", "00000003"};
  StepTrace b = a;
  b.steps[2]["params"] = {"0000000f", "0000000e", "00000003"};

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.first_step, std::optional<int64_t>(2));
  EXPECT_FALSE(diff.loss_differs);
  EXPECT_EQ(diff.differing_tensors, (std::vector<std::string>{"fc.weight", "embed.weight"}));
  EXPECT_EQ(diff.tensors, 3u);
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff),
                                  "first divergent step: 2 (2 of 3 tensors, first fc.weight)"));
}

TEST(TraceCompare, GrowthRowsDoubleTheirOffsetAndEndAtTheLastCommonStep) {
  Scratch scratch;
  const StepTrace a(15);
  StepTrace b(15);
  for (size_t i = 2; i < 15; ++i) {
    b.steps[i]["loss"] = "1.5";
    b.steps[i]["params"][0] = "ffffffff";
    if (i >= 6) b.steps[i]["params"][1] = "eeeeeeee";
  }

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  std::vector<int64_t> steps;
  for (const TraceGrowthRow& row : diff.growth) steps.push_back(row.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 3, 4, 6, 10, 14}));
  ASSERT_EQ(diff.growth.size(), 6u);
  EXPECT_EQ(diff.growth[0].loss_a, std::optional<std::string>("1.0"));
  EXPECT_EQ(diff.growth[0].loss_b, std::optional<std::string>("1.5"));
  EXPECT_EQ(diff.growth[0].loss_abs_diff, std::optional<double>(0.5));
  EXPECT_EQ(diff.growth[0].tensors_differing, 1u);
  EXPECT_EQ(diff.growth[2].tensors_differing, 1u);
  EXPECT_EQ(diff.growth[3].tensors_differing, 2u);
  EXPECT_EQ(diff.growth[5].tensors_differing, 2u);
  EXPECT_EQ(diff.growth[5].tensors, 2u);
}

TEST(TraceCompare, GrowthEndsAtTheShorterTracesLastStep) {
  Scratch scratch;
  StepTrace a(5);
  StepTrace b(9);
  b.steps[1]["loss"] = "2.0";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.first_step, std::optional<int64_t>(1));
  std::vector<int64_t> steps;
  for (const TraceGrowthRow& row : diff.growth) steps.push_back(row.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(diff.growth[1].loss_abs_diff, std::optional<double>(0.0));
}

TEST(TraceCompare, ALongerTracePartsWhereTheShorterEnds) {
  Scratch scratch;
  const StepTrace a(4);
  const StepTrace b(6);

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_FALSE(diff.identical);
  EXPECT_TRUE(diff.steps_part);
  EXPECT_EQ(diff.first_step, std::optional<int64_t>(4));
  EXPECT_EQ(diff.steps_a, 4u);
  EXPECT_EQ(diff.steps_b, 6u);
  EXPECT_TRUE(diff.growth.empty());
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff, "run1", "run2"),
                                  "steps part at step 4 (run1 has 4 steps, run2 6)"));

  const TraceDiff reversed = compare_texts(scratch, b.text(), a.text());
  EXPECT_TRUE(reversed.steps_part);
  EXPECT_EQ(reversed.first_step, std::optional<int64_t>(4));
}

TEST(TraceCompare, StepNumbersThatDisagreePartAtTheSmaller) {
  Scratch scratch;
  const StepTrace a(3);
  StepTrace b(3);
  b.steps[1]["step"] = 2;
  b.steps[2]["step"] = 3;

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_TRUE(diff.steps_part);
  EXPECT_EQ(diff.first_step, std::optional<int64_t>(1));
}

TEST(TraceCompare, HeaderProblemsNameEachDisagreement) {
  Scratch scratch;
  json head_a = header({"w", "only_a", "d"});
  json head_b = header({"w", "d", "only_b"});
  head_b["params"][1]["dtype"] = "float16";
  const std::string a = jsonl({head_a, step_line(0, "1.0", {"1", "2", "3"})});
  const std::string b = jsonl({head_b, step_line(0, "1.0", {"1", "3", "4"})});

  const TraceDiff diff = compare_texts(scratch, a, b);

  EXPECT_FALSE(diff.identical);
  EXPECT_EQ(diff.header_problems,
            (std::vector<std::string>{"parameter only_a is only in {A}",
                                      "parameter d is float32 (2,) in {A} and float16 (2,) in {B}",
                                      "parameter only_b is only in {B}"}));
  EXPECT_EQ(diff.tensors, 1u);
  EXPECT_FALSE(diff.first_step.has_value());
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff, "left", "right"),
                                  "parameter only_b is only in right"));
}

TEST(TraceCompare, GradientsRecordedInBothAreNamedAfterTheirParameter) {
  Scratch scratch;
  std::vector<json> a = {header({"w", "b"}, true)};
  for (int64_t i = 0; i < 3; ++i) {
    json step = step_line(i, "1.0", {"0000000a", "0000000b"});
    step["grads"] = {"0000001a", "0000001b"};
    a.push_back(step);
  }
  std::vector<json> b = a;
  b[2]["grads"][1] = "0000002b";

  const TraceDiff diff = compare_texts(scratch, jsonl(a), jsonl(b));

  EXPECT_EQ(diff.tensors, 4u);
  EXPECT_EQ(diff.first_step, std::optional<int64_t>(1));
  EXPECT_EQ(diff.differing_tensors, std::vector<std::string>{"grad of b"});
  EXPECT_TRUE(diff.header_problems.empty());
}

TEST(TraceCompare, GradientsRecordedInOneAreAHeaderProblem) {
  Scratch scratch;
  json step = step_line(0, "1.0", {"0000000a", "0000000b"});
  json with_grads = step;
  with_grads["grads"] = {"0000001a", nullptr};

  const TraceDiff diff = compare_texts(scratch, jsonl({header({"w", "b"}), step}),
                                       jsonl({header({"w", "b"}, true), with_grads}));

  EXPECT_EQ(diff.header_problems, std::vector<std::string>{"gradients were recorded only in {B}"});
  EXPECT_EQ(diff.tensors, 2u);
  EXPECT_FALSE(diff.identical);
}

// Operators.

TEST(TraceOps, TheCauseIsTheFirstOperatorWhoseInputsMatchedAndOutputDiffered) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops[1]["out"][0][1] = "0000e0ff";
  b.ops[2]["in"][0][1] = "0000e0ff";  // the echo downstream
  b.ops[2]["out"][0][1] = "0000f0ff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_FALSE(diff.identical);
  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kCause);
  ASSERT_TRUE(diff.op.a && diff.op.b);
  EXPECT_EQ(diff.op.a->call, 1);
  EXPECT_EQ(diff.op.a->name, "aten.add.Tensor");
  EXPECT_EQ(diff.op.b->outputs[0].digest, std::optional<std::string>("0000e0ff"));
  EXPECT_EQ(diff.op.labels, std::vector<std::string>{"out0"});
  EXPECT_FALSE(diff.op.elements.has_value());
  EXPECT_FALSE(diff.op.elements_note.empty()) << "nothing was saved, and the note says so";
}

TEST(TraceOps, AGarbageOutputIsNeverCompared) {
  Scratch scratch;
  Lines a;
  a.ops[1] =
      op_line(1, "aten.empty_like.default", {tensor("self", "000000c0")}, {tensor("out0", "")});
  Lines b = a;
  // One side's digest alone is never compared.
  b.ops[1]["out"][0][1] = "0000dead";
  b.ops[2]["out"][0][1] = "0000f0ff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kCause);
  ASSERT_TRUE(diff.op.a);
  EXPECT_EQ(diff.op.a->call, 2);
  EXPECT_EQ(diff.op.a->name, "aten.relu.default");
}

TEST(TraceOps, AnInputWithoutADigestIsNeverCompared) {
  Scratch scratch;
  Lines a;
  a.ops[1] = op_line(1, "aten.fill_.Scalar", {tensor("self", "")}, {tensor("out0", "000000e0")});
  Lines b = a;
  // The destination's old bytes: garbage, so not compared.
  b.ops[1]["in"][0][1] = "0000dead";
  b.ops[1]["out"][0][1] = "0000e0ff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kCause);
  ASSERT_TRUE(diff.op.a);
  EXPECT_EQ(diff.op.a->call, 1);
  EXPECT_EQ(diff.op.labels, std::vector<std::string>{"out0"});
}

TEST(TraceOps, ADifferentGeneratorStateIsNamed) {
  Scratch scratch;
  Lines a;
  a.ops[1] =
      op_line(1, "aten.bernoulli_.float", {tensor("self", "")}, {tensor("out0", "000000e0")});
  a.ops[1]["rng"] = "11111111";
  Lines b = a;
  b.ops[1]["rng"] = "22222222";
  b.ops[1]["out"][0][1] = "0000e0ff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kRngDiffered);
  ASSERT_TRUE(diff.op.a && diff.op.b);
  EXPECT_EQ(diff.op.a->call, 1);
  EXPECT_EQ(diff.op.a->rng, std::optional<std::string>("11111111"));
  EXPECT_EQ(diff.op.b->rng, std::optional<std::string>("22222222"));
  EXPECT_EQ(diff.op.labels, std::vector<std::string>{"out0"});
  EXPECT_EQ(trace_diff_json(diff)["operator"]["kind"], "rng_state_differed");
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff), "RNG state differed at #1"));
}

TEST(TraceOps, DifferentNonTensorArgumentsAreNamed) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops[1]["args"] = "alpha=2";
  b.ops[1]["args_digest"] = "0000a2a2";
  b.ops[1]["out"][0][1] = "0000e0ff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kArgsDiffered);
  ASSERT_TRUE(diff.op.a);
  EXPECT_EQ(diff.op.a->call, 1);
  EXPECT_EQ(trace_diff_json(diff)["operator"]["kind"], "arguments_differed");
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff), "alpha=1 vs alpha=2"));
}

TEST(TraceOps, ADifferingInputNoOperatorMadeCameFromOutside) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops[1]["in"][1][1] = "0000d0ff";
  b.ops[1]["out"][0][1] = "0000e0ff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kInputFromOutside);
  ASSERT_TRUE(diff.op.a);
  EXPECT_EQ(diff.op.a->call, 1);
  EXPECT_EQ(diff.op.labels, std::vector<std::string>{"other"});
  EXPECT_EQ(trace_diff_json(diff)["operator"]["kind"], "input_from_outside");
}

TEST(TraceOps, ADifferingInputIsNamedEvenWhenTheOutputsMatch) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops[0]["in"][0][1] = "0000a0ff";  // its output stays the same
  b.ops[2]["out"][0][1] = "0000f0ff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kInputFromOutside);
  ASSERT_TRUE(diff.op.a);
  EXPECT_EQ(diff.op.a->call, 0);
  EXPECT_EQ(diff.op.labels, std::vector<std::string>{"self"});
}

// Ops recorded for step 2 only, of a trace of steps 0 to 3.
std::string ops_at_step_two(const StepTrace& steps, const std::vector<json>& ops) {
  std::vector<json> all = {header(steps.names)};
  for (const json& step : steps.steps) {
    if (step["step"] == 2) all.insert(all.end(), ops.begin(), ops.end());
    all.push_back(step);
  }
  return jsonl(all);
}

TEST(TraceOps, ParametersDifferingBeforeTheFirstRecordedStepDivergedBefore) {
  Scratch scratch;
  Lines ops;
  for (json& op : ops.ops) op["step"] = 2;
  const StepTrace a(4);
  StepTrace b(4);
  for (size_t i = 1; i < 4; ++i) b.steps[i]["params"][0] = "ffffffff";

  const TraceDiff diff =
      compare_texts(scratch, ops_at_step_two(a, ops.ops), ops_at_step_two(b, ops.ops));

  EXPECT_EQ(diff.first_step, std::optional<int64_t>(1));
  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kDivergedBefore);
  EXPECT_EQ(trace_diff_json(diff)["operator"]["kind"], "diverged_before_recorded_range");
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff), "diverged before the recorded range"));
}

TEST(TraceOps, ParametersDifferingAtTheRecordedStepAreTracedToTheirOperator) {
  Scratch scratch;
  Lines ops_a;
  for (json& op : ops_a.ops) op["step"] = 2;
  Lines ops_b = ops_a;
  ops_b.ops[2]["out"][0][1] = "0000f0ff";
  const StepTrace a(4);
  StepTrace b(4);
  for (size_t i = 2; i < 4; ++i) b.steps[i]["params"][0] = "ffffffff";

  const TraceDiff diff =
      compare_texts(scratch, ops_at_step_two(a, ops_a.ops), ops_at_step_two(b, ops_b.ops));

  EXPECT_EQ(diff.first_step, std::optional<int64_t>(2));
  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kCause);
  ASSERT_TRUE(diff.op.a);
  EXPECT_EQ(diff.op.a->call, 2);
}

TEST(TraceOps, DifferentOperatorsAtOneIndexPartTheSequences) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops[1]["name"] = "aten.sub.Tensor";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kSequencesPart);
  ASSERT_TRUE(diff.op.a && diff.op.b);
  EXPECT_EQ(diff.op.a->name, "aten.add.Tensor");
  EXPECT_EQ(diff.op.b->name, "aten.sub.Tensor");
  EXPECT_EQ(diff.op.a->call, 1);
  EXPECT_EQ(trace_diff_json(diff)["operator"]["kind"], "sequences_part");
  EXPECT_TRUE(
      has_line_containing(describe_trace_diff(diff), "the operator sequences part at call 1"));
}

TEST(TraceOps, OneTraceWithMoreOperatorsPartsTheSequences) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops.push_back(
      op_line(3, "aten.sum.default", {tensor("self", "000000f0")}, {tensor("out0", "00000100")}));

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_FALSE(diff.identical);
  EXPECT_EQ(diff.ops_a, 3u);
  EXPECT_EQ(diff.ops_b, 4u);
  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kSequencesPart);
  EXPECT_FALSE(diff.op.a.has_value());
  ASSERT_TRUE(diff.op.b);
  EXPECT_EQ(diff.op.b->call, 3);
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff, "A", "run2"),
                                  "part at call 3: only run2 goes on, with #3 aten.sum.default"));
}

// Saved tensors.

TEST(TraceSaved, TheCausesSavedOutputsAreComparedElementByElement) {
  Scratch scratch;
  Lines a;
  a.ops[1]["saved"] = "op-000001.safetensors";
  Lines b = a;
  b.ops[1]["out"][0][1] = "0000e0ff";
  scratch.write("a/memdet-trace.tensors/op-000001.safetensors", safetensors_out0({1.0f, 2.0f}));
  scratch.write("b/memdet-trace.tensors/op-000001.safetensors", safetensors_out0({1.0f, 2.5f}));

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  ASSERT_EQ(diff.op.kind, OpFinding::Kind::kCause);
  ASSERT_TRUE(diff.op.elements.has_value()) << diff.op.elements_note;
  ASSERT_EQ(diff.op.elements->findings.size(), 1u);
  const TensorFinding& finding = diff.op.elements->findings[0];
  EXPECT_EQ(finding.tensor, "out0");
  EXPECT_EQ(finding.kind, FindingKind::kDiffers);
  EXPECT_EQ(finding.diff.differing, 1u);
  EXPECT_EQ(finding.diff.first_index, std::vector<uint64_t>{1});
  EXPECT_EQ(diff.op.elements->verdict, Verdict::kDiffer);
  EXPECT_TRUE(trace_diff_json(diff)["operator"]["elements"].is_array());
}

TEST(TraceSaved, AMissingSavedFileLeavesANote) {
  Scratch scratch;
  Lines a;
  a.ops[1]["saved"] = "op-000001.safetensors";
  Lines b = a;
  b.ops[1]["out"][0][1] = "0000e0ff";
  scratch.write("a/memdet-trace.tensors/op-000001.safetensors", safetensors_out0({1.0f, 2.0f}));

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  ASSERT_EQ(diff.op.kind, OpFinding::Kind::kCause);
  EXPECT_FALSE(diff.op.elements.has_value());
  EXPECT_NE(diff.op.elements_note.find("saved tensors not compared"), std::string::npos)
      << diff.op.elements_note;
  const Report elements = trace_diff_json(diff)["operator"]["elements"];
  EXPECT_TRUE(elements.is_array() && elements.empty()) << elements.dump();
}

TEST(TraceSaved, TheFirstDivergentStepsSavedParametersAreCompared) {
  Scratch scratch;
  StepTrace a(3);
  a.steps[1]["saved"] = "step-000001.safetensors";
  StepTrace b = a;
  b.steps[1]["params"][1] = "ffffffff";
  scratch.write("a/memdet-trace.tensors/step-000001.safetensors",
                safetensors_out0({1.0f, 2.0f, 3.0f}));
  scratch.write("b/memdet-trace.tensors/step-000001.safetensors",
                safetensors_out0({1.0f, 2.0f, -3.0f}));

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.first_step, std::optional<int64_t>(1));
  ASSERT_TRUE(diff.step_elements.has_value()) << diff.step_elements_note;
  ASSERT_EQ(diff.step_elements->findings.size(), 1u);
  EXPECT_EQ(diff.step_elements->findings[0].diff.first_index, std::vector<uint64_t>{2});
}

// Reports.

TEST(TraceDescribe, TheCauseLineNamesTheOperatorAndItsArguments) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops[1]["out"][0][1] = "0000e0ff";

  const std::vector<std::string> lines =
      describe_trace_diff(compare_texts(scratch, a.text(), b.text()));

  EXPECT_TRUE(has_line_containing(lines,
                                  "  first divergent operator: #1 aten.add.Tensor(alpha=1) at "
                                  "step 0, forward, module fc"))
      << joined(lines);
  EXPECT_TRUE(has_line_containing(lines, "its inputs matched: self (2,), other (2,)"))
      << joined(lines);
  EXPECT_TRUE(has_line_containing(lines, "its output differed: out0")) << joined(lines);
  for (const std::string& line : lines) EXPECT_TRUE(line.starts_with("  ")) << line;
}

TEST(TraceDescribe, NameSidesReplacesEveryMark) {
  EXPECT_EQ(name_sides("only in {A}, not {B}; {A} again", "run1", "run2"),
            "only in run1, not run2; run1 again");
  EXPECT_EQ(name_sides("{A}{B}{A}", "", "b"), "b");
  EXPECT_EQ(name_sides("{A} and {B}", "{A}{A}", "x{B}"), "{A}{A} and x{B}")
      << "a name holding a mark is not replaced again";
  EXPECT_EQ(name_sides("no marks", "a", "b"), "no marks");
}

TEST(TraceJson, TheCauseIsKindCause) {
  Scratch scratch;
  const Lines a;
  Lines b;
  b.ops[1]["out"][0][1] = "0000e0ff";

  const Report report = trace_diff_json(compare_texts(scratch, a.text(), b.text()));

  EXPECT_EQ(report["identical"], false);
  EXPECT_EQ(report["operator"]["kind"], "cause");
  EXPECT_EQ(report["operator"]["labels"], Report::array({"out0"}));
  EXPECT_EQ(report["operator"]["a"]["call"], 1);
  EXPECT_EQ(report["operator"]["a"]["name"], "aten.add.Tensor");
  EXPECT_EQ(report["operator"]["a"]["outputs"][0]["digest"], "000000e0");
  EXPECT_EQ(report["operator"]["b"]["outputs"][0]["digest"], "0000e0ff");
}

TEST(TraceJson, IdenticalTracesHaveNoFirstStep) {
  Scratch scratch;
  const Lines lines;

  const Report report = trace_diff_json(compare_texts(scratch, lines.text(), lines.text()));

  EXPECT_EQ(report["identical"], true);
  EXPECT_TRUE(report["first_step"].is_null());
  EXPECT_EQ(report["operator"]["kind"], "none");
  EXPECT_TRUE(report["growth"].empty());
  EXPECT_EQ(report["steps_a"], 3);
}

TEST(TraceJson, HeaderProblemsNameTheSidesAAndB) {
  Scratch scratch;
  const std::string a = jsonl({header({"w"}), step_line(0, "1.0", {"1"})});
  const std::string b = jsonl({header({"v"}), step_line(0, "1.0", {"1"})});

  const Report report = trace_diff_json(compare_texts(scratch, a, b));

  EXPECT_EQ(report["header_problems"],
            Report::array({"parameter w is only in A", "parameter v is only in B"}));
  EXPECT_EQ(report["tensors"], 0);
}

TEST(TraceRead, RefusesATraceWhoseFirstLineIsBlank) {
  Scratch scratch;
  const std::string path =
      scratch.write("memdet-trace.jsonl", "\n" + step_line(0, "1.0", {}).dump() + "\n");

  auto trace = read_trace(path);

  ASSERT_FALSE(trace) << "read a trace with no header, of " << trace->steps.size() << " steps";
  EXPECT_TRUE(trace.error().message.starts_with(path + ":")) << trace.error().message;
}

TEST(TraceRead, RefusesAFileOfBlankLines) {
  Scratch scratch;
  const std::string path = scratch.write("memdet-trace.jsonl", "\n\n");

  auto trace = read_trace(path);

  ASSERT_FALSE(trace) << "read a file of blank lines as a trace with no parameters";
  EXPECT_TRUE(trace.error().message.starts_with(path + ":")) << trace.error().message;
}

TEST(TraceCompare, EqualInfiniteLossesDifferByNothing) {
  Scratch scratch;
  StepTrace a(2);
  for (json& step : a.steps) step["loss"] = "inf";
  StepTrace b = a;
  b.steps[0]["params"][0] = "ffffffff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  ASSERT_EQ(diff.growth.size(), 2u);
  EXPECT_EQ(diff.growth[0].loss_abs_diff, std::optional<double>(0.0));
  EXPECT_FALSE(has_line_containing(describe_trace_diff(diff), "nan"));
}

TEST(TraceDescribe, NameSidesLeavesAMarkInsideANameAlone) {
  EXPECT_EQ(name_sides("parameter w is only in {A}", "runs/{B}", "other"),
            "parameter w is only in runs/{B}");
}

TEST(TraceRead, RefusesWhatTheHelperNeverWrites) {
  const std::string head = header_text();
  expect_refused({head, R"({"step":-1,"loss":"1","params":["a","b"]})"}, 2, "from 0 to 2^63 - 1");
  expect_refused({head, R"({"step":9223372036854775808,"loss":"1","params":["a","b"]})"}, 2,
                 "from 0 to 2^63 - 1");
  expect_refused({head, R"({"step":0,"params":["a","b"],"params":["a","b"]})"}, 2,
                 "\"params\" appears twice");
  constexpr char kNul[] = "{\"step\":0,\"params\":[\"a\",\"b\"]}\0{}";
  expect_refused({head, std::string(kNul, sizeof(kNul) - 1)}, 2, "NUL");
  expect_refused({header({"w", "w"}).dump()}, 1, "parameter w is named twice");
  expect_refused({R"({"memdet_trace":1,"ops":"zzz","params":[]})"}, 1, "\"ops\"");
}

TEST(TraceRead, ALastLineCutShortIsLeftOut) {
  Scratch scratch;
  Lines lines;
  std::string text = lines.text();
  text.resize(text.size() - 10);  // into the last step line, and its line break
  const std::string path = scratch.write("memdet-trace.jsonl", text);

  auto trace = read_trace(path);

  ASSERT_TRUE(trace) << trace.error().message;
  EXPECT_TRUE(trace->cut_short);
  EXPECT_EQ(trace->steps.size(), 2u);
}

TEST(TraceCompare, InitialStateThatDiffersIsNamedAndBlamesNoOperator) {
  Scratch scratch;
  Lines a;
  std::string text_a = a.text();
  json head_a = header({"fc.weight", "fc.bias"});
  head_a["initial"] = {"00000001", "00000002"};
  json head_b = head_a;
  head_b["initial"][1] = "00000003";
  Lines b = a;
  b.ops[0]["in"][0][1] = "0000ffff";
  auto with_header = [](const Lines& lines, const json& head) {
    std::string text = lines.text();
    return head.dump() + text.substr(text.find('\n'));
  };

  const TraceDiff diff = compare_texts(scratch, with_header(a, head_a), with_header(b, head_b));

  EXPECT_FALSE(diff.identical);
  EXPECT_EQ(diff.initial_differing, std::vector<std::string>{"fc.bias"});
  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kDivergedBefore);
}

TEST(TraceOps, StepsThatPartAfterTheRecordedOnesSayWhichStepToRecord) {
  Scratch scratch;
  Lines a;
  Lines b = a;
  b.steps[2]["params"][0] = "ffffffff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kAfterRecordedRange);
  EXPECT_TRUE(has_line_containing(describe_trace_diff(diff), "ops=range(2, 3)"))
      << joined(describe_trace_diff(diff));
}

TEST(TraceOps, StateThatDiffersThoughEveryOperatorMatchedWasChangedOutsideThem) {
  Scratch scratch;
  Lines a;
  Lines b = a;
  b.steps[0]["params"][1] = "ffffffff";

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kOutsideOperators);
  EXPECT_FALSE(diff.identical);
}

TEST(TraceOps, CallNumbersThatDisagreePartTheSequences) {
  Scratch scratch;
  Lines a;
  Lines b = a;
  b.ops[2]["op"] = 7;

  const TraceDiff diff = compare_texts(scratch, a.text(), b.text());

  EXPECT_EQ(diff.op.kind, OpFinding::Kind::kSequencesPart);
}

}  // namespace
}  // namespace memdet::compare
