// Per-step training traces, as python/memdet_trace.py writes them, and
// where two of them first part.
//
// A trace is JSON Lines: a header naming the parameters in module order,
// then one line per step (its loss as repr() prints it and a digest of each
// parameter, and of each gradient when asked), and for the steps chosen one
// line per operator in call order. Digests compare bits only; the
// tolerance applies to the tensors a trace saved beside it.
//
// Two traces are compared at two depths. Steps: the first step whose loss
// or any digest differs, the first tensor in module order to differ there,
// and how the difference grows after it. Operators: the first operator whose
// inputs matched and whose output differed, which is the cause, not one of
// its echoes downstream.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "compare/tensor_diff.h"
#include "core/result.h"

namespace memdet::compare {

inline constexpr std::string_view kTraceFileName = "memdet-trace.jsonl";
// The folder beside a trace that holds the tensors it saved.
inline constexpr std::string_view kTraceTensorDir = "memdet-trace.tensors";

// A parameter or buffer, named as state_dict names it.
struct TraceParam {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::string kind;  // "parameter" or "buffer"; empty when not given
};

struct TraceStep {
  int64_t step = 0;
  std::optional<std::string> loss;                // as repr() printed it
  std::vector<std::string> params;                // digests, in header order
  std::vector<std::optional<std::string>> grads;  // empty unless recorded
  std::string saved;                              // safetensors file name, or empty
};

// One tensor an operator read or wrote. No digest: never compared, since
// the bytes are garbage by design (an empty_like output, a bernoulli_
// destination) or the argument was None.
struct TraceTensor {
  std::string label;
  std::optional<std::string> digest;
  std::vector<uint64_t> shape;
};

struct TraceOp {
  int64_t call = 0;
  int64_t step = 0;
  std::string name;   // "aten.index_put.default"
  std::string phase;  // forward, backward, or update (after the backward)
  // The module path ("" the model itself); none outside the model. Exact
  // in forward, attributed through the autograd nodes in backward.
  std::optional<std::string> module;
  std::string node;  // the autograd node, in backward
  std::string args;  // the non-tensor arguments, as text
  std::string args_digest;
  std::vector<TraceTensor> inputs;
  std::vector<TraceTensor> outputs;
  std::optional<std::string> rng;  // the generator's state, for random operators
  std::string saved;
};

struct Trace {
  std::string path;
  std::string torch_version;
  bool grads = false;
  std::vector<TraceParam> params;
  std::vector<std::string> initial;  // digests before the first step; empty when not given
  // The last line had no line break and did not parse: the run was cut
  // short while writing it, so it is left out.
  bool cut_short = false;
  std::vector<TraceStep> steps;
  std::vector<TraceOp> ops;
};

// Whether the file's first line opens a trace header. Reads at most 4 KiB.
bool looks_like_trace(const std::string& path);

// Reads a whole trace. Errors name the file and line.
Result<Trace> read_trace(const std::string& path);

// The same over a stream, which path names in errors.
Result<Trace> parse_trace(std::istream& in, const std::string& path);

// One step in the table of how the difference grows.
struct TraceGrowthRow {
  int64_t step = 0;
  std::optional<std::string> loss_a;
  std::optional<std::string> loss_b;
  std::optional<double> loss_abs_diff;  // both losses parsed as numbers
  size_t tensors_differing = 0;
  size_t tensors = 0;
};

struct OpFinding {
  enum class Kind {
    kNone,                // no operator differs, or no operators recorded
    kCause,               // inputs matched, an output differed
    kRngDiffered,         // a random operator's generator state differed
    kArgsDiffered,        // the non-tensor arguments differed
    kDivergedBefore,      // parameters differed before the first recorded step
    kInputFromOutside,    // an input differed that no recorded operator made
    kSequencesPart,       // the two runs ran different operators
    kAfterRecordedRange,  // every recorded operator matched; the steps part later
    kOutsideOperators,    // every recorded operator matched, yet a recorded step's state differs
  } kind = Kind::kNone;
  std::optional<TraceOp> a;  // the operator in each trace
  std::optional<TraceOp> b;
  std::vector<std::string> labels;     // the outputs, or inputs, that differ
  std::optional<DiffReport> elements;  // the saved outputs, compared
  std::string elements_note;           // why there are none
};

struct TraceDiff {
  std::string path_a;
  std::string path_b;
  bool identical = true;
  std::vector<std::string> header_problems;  // the parameter lists disagree
  size_t steps_a = 0;
  size_t steps_b = 0;
  // The first step whose loss or any digest differs, or at which one trace
  // ends or the step numbers disagree.
  std::optional<int64_t> first_step;
  bool loss_differs = false;
  bool steps_part = false;                     // the step numbers disagree or one trace ends
  std::vector<std::string> differing_tensors;  // at first_step, module order
  std::vector<std::string> initial_differing;  // before the first step, module order
  std::optional<int64_t> first_loss_step;      // the first step whose loss differs
  size_t tensors = 0;                          // compared at each step
  std::vector<TraceGrowthRow> growth;
  std::optional<DiffReport> step_elements;  // the saved tensors of first_step
  std::string step_elements_note;
  size_t ops_a = 0;
  size_t ops_b = 0;
  std::optional<int64_t> last_recorded_step;  // the last step with operators, in both
  OpFinding op;
  bool cut_short_a = false;
  bool cut_short_b = false;
};

// Compares two traces. Saved tensors that cannot be read leave a note in
// place of their figures.
TraceDiff compare_traces(const Trace& a, const Trace& b, const Tolerance& tolerance);

// The report, one line per entry, each indented by two spaces, calling the
// two traces name_a and name_b.
std::vector<std::string> describe_trace_diff(const TraceDiff& diff, std::string_view name_a = "A",
                                             std::string_view name_b = "B");

// Header problems and notes mark the traces "{A}" and "{B}"; this names them.
std::string name_sides(std::string text, std::string_view name_a, std::string_view name_b);

nlohmann::json trace_diff_json(const TraceDiff& diff);

}  // namespace memdet::compare
