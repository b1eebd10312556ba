#include "compare/trace.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <set>
#include <utility>

#include "compare/finding_report.h"
#include "compare/strict_json.h"
#include "core/text.h"

namespace memdet::compare {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kHeaderStart = "{\"memdet_trace\":";
// Digests are 8 hex digits; a little room is left for longer ones.
constexpr size_t kLongestDigest = 64;
// A line holds one step or one operator. Parsed JSON takes about 25 times
// its text in memory, so a longer line is refused rather than parsed.
constexpr size_t kLongestLine = size_t{16} << 20;
// Header: object, params, a parameter, its shape. Operator: object, inputs,
// an input, its shape.
constexpr int kMaxDepth = 5;

// Reads one line's fields, naming the file and line in every error.
class LineReader {
 public:
  LineReader(const std::string& path, size_t line, const json& object)
      : where_(path + ":" + std::to_string(line) + ": "), object_(object) {}

  Error error(const std::string& problem) const { return make_error(where_ + problem); }

  const json* field(const char* name) const {
    auto it = object_.find(name);
    return it == object_.end() ? nullptr : &*it;
  }

  Result<std::string> string(const char* name) const {
    const json* value = field(name);
    if (value == nullptr || !value->is_string()) {
      return error(std::string("\"") + name + "\" must be a string");
    }
    return value->get<std::string>();
  }

  // Absent or null gives an empty optional.
  Result<std::optional<std::string>> optional_string(const char* name) const {
    const json* value = field(name);
    if (value == nullptr || value->is_null()) return std::optional<std::string>();
    if (!value->is_string()) return error(std::string("\"") + name + "\" must be a string or null");
    return std::optional<std::string>(value->get<std::string>());
  }

  // A whole number from 0 to 2^63 - 1.
  Result<int64_t> count(const char* name) const {
    const json* value = field(name);
    if (value == nullptr || !value->is_number_unsigned() ||
        value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return error(std::string("\"") + name + "\" must be a whole number from 0 to 2^63 - 1");
    }
    return static_cast<int64_t>(value->get<uint64_t>());
  }

  Result<std::optional<std::string>> digest(const json& value, const std::string& what) const {
    if (value.is_null()) return std::optional<std::string>();
    if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
        value.get_ref<const std::string&>().size() > kLongestDigest) {
      return error(what + " must be a digest string or null");
    }
    return std::optional<std::string>(value.get<std::string>());
  }

  // One digest for each parameter, none null; `problem` says so when the
  // list is not that, and `each` names an entry.
  Result<std::vector<std::string>> state_digests(const json* value, size_t count,
                                                 const std::string& problem,
                                                 const std::string& each) const {
    if (value == nullptr || !value->is_array() || value->size() != count) return error(problem);
    std::vector<std::string> digests;
    for (const json& entry : *value) {
      auto one = digest(entry, each);
      if (!one) return one.error();
      if (!one->has_value()) return error(each + " must not be null");
      digests.push_back(**one);
    }
    return digests;
  }

  Result<std::vector<uint64_t>> shape(const json& value, const std::string& what) const {
    if (!value.is_array()) return error(what + " must be a list of sizes");
    std::vector<uint64_t> shape;
    for (const json& size : value) {
      if (!size.is_number_unsigned()) return error(what + " must be a list of sizes");
      shape.push_back(size.get<uint64_t>());
    }
    return shape;
  }

  // A file name inside the tensor folder: no path can leave it.
  Result<std::string> saved() const {
    auto name = optional_string("saved");
    if (!name) return name.error();
    if (!name->has_value()) return std::string();
    const std::string& text = **name;
    if (text.empty() || text == "." || text == ".." || text.find('/') != std::string::npos ||
        text.find('\0') != std::string::npos) {
      return error("\"saved\" must name a file inside " + std::string(kTraceTensorDir));
    }
    return text;
  }

  Result<std::vector<TraceTensor>> tensors(const char* name) const {
    const json* value = field(name);
    if (value == nullptr || !value->is_array()) {
      return error(std::string("\"") + name + "\" must be a list");
    }
    std::vector<TraceTensor> tensors;
    for (const json& entry : *value) {
      const std::string what = std::string("an entry of \"") + name + "\"";
      if (!entry.is_array() || entry.size() != 3 || !entry[0].is_string()) {
        return error(what + " must be [label, digest, shape]");
      }
      TraceTensor tensor;
      tensor.label = entry[0].get<std::string>();
      auto digest_value = digest(entry[1], what);
      if (!digest_value) return digest_value.error();
      tensor.digest = *digest_value;
      if (!entry[2].is_null()) {
        auto sizes = shape(entry[2], what + "'s shape");
        if (!sizes) return sizes.error();
        tensor.shape = std::move(*sizes);
      }
      tensors.push_back(std::move(tensor));
    }
    return tensors;
  }

 private:
  std::string where_;
  const json& object_;
};

Status read_header(const LineReader& line, Trace& trace) {
  const json* format = line.field("memdet_trace");
  if (format == nullptr || !format->is_number_integer() || format->get<int64_t>() != 1) {
    return line.error("a trace header of format 1 was expected (\"memdet_trace\": 1)");
  }
  auto torch = line.optional_string("torch");
  if (!torch) return torch.error();
  trace.torch_version = torch->value_or("");
  const json* grads = line.field("grads");
  if (grads != nullptr && !grads->is_boolean())
    return line.error("\"grads\" must be true or false");
  trace.grads = grads != nullptr && grads->get<bool>();
  const json* ops = line.field("ops");
  if (ops != nullptr && !ops->is_null() &&
      !(ops->is_array() && ops->size() == 2 && (*ops)[0].is_number_unsigned() &&
        (*ops)[1].is_number_unsigned())) {
    return line.error("\"ops\" must be null or [first step, stop step]");
  }
  const json* params = line.field("params");
  if (params == nullptr || !params->is_array()) return line.error("\"params\" must be a list");
  std::set<std::string> names;
  for (const json& entry : *params) {
    if (!entry.is_object()) return line.error("each of \"params\" must be an object");
    LineReader param(trace.path, 1, entry);
    TraceParam value;
    auto name = param.string("name");
    if (!name) return name.error();
    auto dtype = param.string("dtype");
    if (!dtype) return dtype.error();
    if (name->empty() || dtype->empty())
      return line.error("a parameter's name and dtype must not be empty");
    auto kind = param.optional_string("kind");
    if (!kind) return kind.error();
    if (kind->has_value() && **kind != "parameter" && **kind != "buffer") {
      return line.error("a parameter's \"kind\" must be \"parameter\" or \"buffer\"");
    }
    value.kind = kind->value_or("");
    const json* shape = param.field("shape");
    if (shape == nullptr) return line.error("a parameter has no \"shape\"");
    auto sizes = param.shape(*shape, "\"shape\"");
    if (!sizes) return sizes.error();
    if (!names.insert(*name).second) {
      return line.error("parameter " + printable(*name) + " is named twice");
    }
    value.name = std::move(*name);
    value.dtype = std::move(*dtype);
    value.shape = std::move(*sizes);
    trace.params.push_back(std::move(value));
  }
  const json* initial = line.field("initial");
  if (initial != nullptr && !initial->is_null()) {
    auto digests = line.state_digests(initial, trace.params.size(),
                                      "\"initial\" must hold one digest for each parameter",
                                      "an initial digest");
    if (!digests) return digests.error();
    trace.initial = std::move(*digests);
  }
  return {};
}

Status read_step(const LineReader& line, Trace& trace) {
  TraceStep step;
  auto number = line.count("step");
  if (!number) return number.error();
  step.step = *number;
  if (!trace.steps.empty() && step.step <= trace.steps.back().step) {
    return line.error("step " + std::to_string(step.step) + " comes after step " +
                      std::to_string(trace.steps.back().step));
  }
  auto loss = line.optional_string("loss");
  if (!loss) return loss.error();
  step.loss = *loss;
  auto params = line.state_digests(line.field("params"), trace.params.size(),
                                   "\"params\" must hold one digest for each of the header's " +
                                       std::to_string(trace.params.size()) + " parameters",
                                   "a parameter digest");
  if (!params) return params.error();
  step.params = std::move(*params);
  if (trace.grads) {
    const json* grads = line.field("grads");
    if (grads == nullptr || !grads->is_array() || grads->size() != trace.params.size()) {
      return line.error("\"grads\" must hold one digest or null for each parameter");
    }
    for (const json& value : *grads) {
      auto digest = line.digest(value, "a gradient digest");
      if (!digest) return digest.error();
      step.grads.push_back(*digest);
    }
  }
  auto saved = line.saved();
  if (!saved) return saved.error();
  step.saved = std::move(*saved);
  trace.steps.push_back(std::move(step));
  return {};
}

Status read_op(const LineReader& line, Trace& trace) {
  TraceOp op;
  auto call = line.count("op");
  if (!call) return call.error();
  op.call = *call;
  if (!trace.ops.empty() && op.call <= trace.ops.back().call) {
    return line.error("operator " + std::to_string(op.call) + " comes after operator " +
                      std::to_string(trace.ops.back().call));
  }
  auto step = line.count("step");
  if (!step) return step.error();
  op.step = *step;
  for (auto [name, target] : {std::pair{"name", &op.name},
                              {"phase", &op.phase},
                              {"args", &op.args},
                              {"args_digest", &op.args_digest}}) {
    auto value = line.string(name);
    if (!value) return value.error();
    *target = std::move(*value);
  }
  auto module = line.optional_string("module");
  if (!module) return module.error();
  op.module = *module;
  auto node = line.optional_string("node");
  if (!node) return node.error();
  op.node = node->value_or("");
  auto inputs = line.tensors("in");
  if (!inputs) return inputs.error();
  op.inputs = std::move(*inputs);
  auto outputs = line.tensors("out");
  if (!outputs) return outputs.error();
  op.outputs = std::move(*outputs);
  const json* rng = line.field("rng");
  if (rng != nullptr) {
    auto digest = line.digest(*rng, "\"rng\"");
    if (!digest) return digest.error();
    op.rng = *digest;
  }
  auto saved = line.saved();
  if (!saved) return saved.error();
  op.saved = std::move(*saved);
  trace.ops.push_back(std::move(op));
  return {};
}

enum class LineRead { kLine, kTooLong, kEnd };

// One line without its line break, read at most kLongestLine bytes into
// memory however long it is. Sets eof on the stream when the last line has
// no line break.
LineRead read_line(std::istream& in, std::string& text) {
  text.clear();
  std::streambuf* buffer = in.rdbuf();
  bool any = false;
  for (;;) {
    const int next = buffer->sbumpc();
    if (next == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      return any ? LineRead::kLine : LineRead::kEnd;
    }
    any = true;
    if (next == '\n') return LineRead::kLine;
    if (text.size() == kLongestLine) return LineRead::kTooLong;
    text += static_cast<char>(next);
  }
}

std::string tensor_dir(const std::string& trace_path) {
  return (fs::path(trace_path).parent_path() / kTraceTensorDir).string();
}

// A saved file is read only when it and its folder are what the helper
// writes: a plain file in a plain folder, never a link that could lead
// outside the trace's folder.
std::optional<std::string> saved_file_problem(const std::string& file) {
  std::error_code error;
  const fs::path path(file);
  fs::file_status folder = fs::symlink_status(path.parent_path(), error);
  if (error || !fs::is_directory(folder)) {
    return path.parent_path().string() + " is not a folder" +
           (fs::is_symlink(folder) ? " but a link" : "");
  }
  fs::file_status status = fs::symlink_status(path, error);
  if (error || !fs::exists(status)) return file + ": no such file";
  if (!fs::is_regular_file(status)) {
    return file + " is not a plain file" + (fs::is_symlink(status) ? " but a link" : "");
  }
  return std::nullopt;
}

// The saved files of both sides, compared; a note instead when either is
// missing or unreadable.
void compare_saved(const std::string& path_a, const std::string& saved_a, const std::string& path_b,
                   const std::string& saved_b, const Tolerance& tolerance,
                   std::optional<DiffReport>& report, std::string& note) {
  if (saved_a.empty() || saved_b.empty()) {
    const char* side = saved_a.empty() && saved_b.empty() ? "either trace"
                       : saved_a.empty()                  ? "{A}"
                                                          : "{B}";
    note = std::string("no tensors saved for it in ") + side +
           " (the helper's save= chooses the steps)";
    return;
  }
  const std::string file_a = tensor_dir(path_a) + "/" + saved_a;
  const std::string file_b = tensor_dir(path_b) + "/" + saved_b;
  for (const std::string& file : {file_a, file_b}) {
    if (auto problem = saved_file_problem(file)) {
      note = "saved tensors not compared: " + *problem;
      return;
    }
  }
  auto compared = diff_paths(file_a, file_b, tolerance);
  if (!compared) {
    note = "saved tensors not compared: " + compared.error().message;
    return;
  }
  report = std::move(*compared);
}

std::optional<double> parse_loss(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double value = std::strtod(text->c_str(), &end);
  if (end != text->c_str() + text->size() || errno == ERANGE) return std::nullopt;
  return value;
}

// The tensors compared at each step: parameters present in both with one
// dtype and shape, then their gradients when both recorded them.
struct Pairing {
  struct Pair {
    std::string name;
    size_t a;
    size_t b;
    bool grad;
  };
  std::vector<Pair> pairs;
};

Pairing pair_params(const Trace& a, const Trace& b, std::vector<std::string>& problems) {
  std::map<std::string, size_t> in_b;
  for (size_t i = 0; i < b.params.size(); ++i) in_b.emplace(b.params[i].name, i);
  Pairing pairing;
  const bool grads = a.grads && b.grads;
  for (size_t i = 0; i < a.params.size(); ++i) {
    const TraceParam& param = a.params[i];
    auto it = in_b.find(param.name);
    if (it == in_b.end()) {
      problems.push_back("parameter " + param.name + " is only in {A}");
      continue;
    }
    const TraceParam& other = b.params[it->second];
    if (param.dtype != other.dtype || param.shape != other.shape) {
      problems.push_back("parameter " + param.name + " is " + param.dtype + " " +
                         shape_text(param.shape) + " in {A} and " + other.dtype + " " +
                         shape_text(other.shape) + " in {B}");
      in_b.erase(it);
      continue;
    }
    pairing.pairs.push_back({param.name, i, it->second, false});
    if (grads) pairing.pairs.push_back({"grad of " + param.name, i, it->second, true});
    in_b.erase(it);
  }
  for (const auto& [name, index] : in_b)
    problems.push_back("parameter " + name + " is only in {B}");
  if (a.grads != b.grads) {
    problems.push_back(std::string("gradients were recorded only in ") + (a.grads ? "{A}" : "{B}"));
  }
  return pairing;
}

std::vector<std::string> differing(const Pairing& pairing, const TraceStep& a, const TraceStep& b) {
  std::vector<std::string> names;
  for (const Pairing::Pair& pair : pairing.pairs) {
    bool same =
        pair.grad ? a.grads[pair.a] == b.grads[pair.b] : a.params[pair.a] == b.params[pair.b];
    if (!same) names.push_back(pair.name);
  }
  return names;
}

TraceGrowthRow growth_row(const Pairing& pairing, const TraceStep& a, const TraceStep& b) {
  TraceGrowthRow row;
  row.step = a.step;
  row.loss_a = a.loss;
  row.loss_b = b.loss;
  auto value_a = parse_loss(a.loss);
  auto value_b = parse_loss(b.loss);
  if (value_a && value_b) {
    row.loss_abs_diff = a.loss == b.loss ? 0.0 : std::fabs(*value_a - *value_b);
  }
  row.tensors_differing = differing(pairing, a, b).size();
  row.tensors = pairing.pairs.size();
  return row;
}

void compare_steps(const Trace& a, const Trace& b, const Tolerance& tolerance, TraceDiff& diff) {
  Pairing pairing = pair_params(a, b, diff.header_problems);
  diff.tensors = pairing.pairs.size();
  if (!a.initial.empty() && !b.initial.empty()) {
    for (const Pairing::Pair& pair : pairing.pairs) {
      if (!pair.grad && a.initial[pair.a] != b.initial[pair.b]) {
        diff.initial_differing.push_back(pair.name);
      }
    }
  }
  const size_t common = std::min(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < common && a.steps[i].step == b.steps[i].step; ++i) {
    if (a.steps[i].loss != b.steps[i].loss) {
      diff.first_loss_step = a.steps[i].step;
      break;
    }
  }
  std::optional<size_t> first;
  for (size_t i = 0; i < common; ++i) {
    const TraceStep& step_a = a.steps[i];
    const TraceStep& step_b = b.steps[i];
    if (step_a.step != step_b.step) {
      diff.steps_part = true;
      diff.first_step = std::min(step_a.step, step_b.step);
      break;
    }
    std::vector<std::string> names = differing(pairing, step_a, step_b);
    bool loss = step_a.loss != step_b.loss;
    if (names.empty() && !loss) continue;
    first = i;
    diff.first_step = step_a.step;
    diff.loss_differs = loss;
    diff.differing_tensors = std::move(names);
    break;
  }
  if (!diff.first_step && a.steps.size() != b.steps.size()) {
    diff.steps_part = true;
    const Trace& longer = a.steps.size() > b.steps.size() ? a : b;
    diff.first_step = longer.steps[common].step;
  }
  if (!first) return;

  // Offsets 0, 1, 2, 4, 8, ... from the first divergent step, and the last
  // step both traces hold.
  for (size_t offset = 0; *first + offset < common; offset = offset == 0 ? 1 : offset * 2) {
    const size_t i = *first + offset;
    if (a.steps[i].step != b.steps[i].step) break;
    diff.growth.push_back(growth_row(pairing, a.steps[i], b.steps[i]));
  }
  const size_t last = common - 1;
  if (diff.growth.back().step != a.steps[last].step && a.steps[last].step == b.steps[last].step) {
    diff.growth.push_back(growth_row(pairing, a.steps[last], b.steps[last]));
  }
  compare_saved(a.path, a.steps[*first].saved, b.path, b.steps[*first].saved, tolerance,
                diff.step_elements, diff.step_elements_note);
}

std::vector<std::string> differing_labels(const std::vector<TraceTensor>& a,
                                          const std::vector<TraceTensor>& b) {
  std::vector<std::string> labels;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].digest && b[i].digest && *a[i].digest != *b[i].digest) labels.push_back(a[i].label);
  }
  return labels;
}

bool same_signature(const TraceOp& a, const TraceOp& b) {
  if (a.call != b.call || a.name != b.name || a.phase != b.phase ||
      a.inputs.size() != b.inputs.size() || a.outputs.size() != b.outputs.size()) {
    return false;
  }
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    if (a.inputs[i].label != b.inputs[i].label || a.inputs[i].shape != b.inputs[i].shape) {
      return false;
    }
  }
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    if (a.outputs[i].shape != b.outputs[i].shape) return false;
  }
  return true;
}

void compare_ops(const Trace& a, const Trace& b, const Tolerance& tolerance, TraceDiff& diff) {
  diff.ops_a = a.ops.size();
  diff.ops_b = b.ops.size();
  OpFinding& finding = diff.op;
  if (a.ops.empty() || b.ops.empty()) return;
  diff.last_recorded_step = std::min(a.ops.back().step, b.ops.back().step);

  // State that already differs when recording starts makes every recorded
  // operator an echo.
  const int64_t first_recorded = std::min(a.ops.front().step, b.ops.front().step);
  if (!diff.initial_differing.empty() ||
      (diff.first_step && *diff.first_step < first_recorded && !diff.steps_part)) {
    finding.kind = OpFinding::Kind::kDivergedBefore;
    return;
  }

  // The first operator in which anything differs: whatever made the runs
  // part, it shows here first, since every later difference is its echo.
  const size_t common = std::min(a.ops.size(), b.ops.size());
  for (size_t i = 0; i < common; ++i) {
    const TraceOp& op_a = a.ops[i];
    const TraceOp& op_b = b.ops[i];
    if (!same_signature(op_a, op_b) || op_a.step != op_b.step) {
      finding.kind = OpFinding::Kind::kSequencesPart;
      finding.a = op_a;
      finding.b = op_b;
      return;
    }
    std::vector<std::string> outputs = differing_labels(op_a.outputs, op_b.outputs);
    std::vector<std::string> inputs = differing_labels(op_a.inputs, op_b.inputs);
    const bool rng = op_a.rng != op_b.rng;
    const bool args = op_a.args_digest != op_b.args_digest;
    if (outputs.empty() && inputs.empty() && !rng && !args) continue;
    finding.a = op_a;
    finding.b = op_b;
    if (rng) {
      finding.kind = OpFinding::Kind::kRngDiffered;
      finding.labels = outputs;
    } else if (args) {
      finding.kind = OpFinding::Kind::kArgsDiffered;
      finding.labels = outputs;
    } else if (!inputs.empty()) {
      finding.kind = OpFinding::Kind::kInputFromOutside;
      finding.labels = inputs;
    } else {
      finding.kind = OpFinding::Kind::kCause;
      finding.labels = outputs;
    }
    if (!outputs.empty()) {
      compare_saved(a.path, op_a.saved, b.path, op_b.saved, tolerance, finding.elements,
                    finding.elements_note);
    }
    return;
  }
  if (a.ops.size() != b.ops.size()) {
    finding.kind = OpFinding::Kind::kSequencesPart;
    if (common < a.ops.size()) finding.a = a.ops[common];
    if (common < b.ops.size()) finding.b = b.ops[common];
    return;
  }
  if (diff.first_step && !diff.steps_part) {
    finding.kind = *diff.first_step > *diff.last_recorded_step
                       ? OpFinding::Kind::kAfterRecordedRange
                       : OpFinding::Kind::kOutsideOperators;
  }
}

std::string module_text(const TraceOp& op) {
  if (!op.module) return "outside the model";
  if (op.module->empty()) return "module (root)";
  return "module " + printable(*op.module);
}

std::string op_text(const TraceOp& op) {
  std::string text = "#" + std::to_string(op.call) + " " + printable(op.name);
  if (!op.args.empty()) text += "(" + printable(op.args) + ")";
  text +=
      " at step " + std::to_string(op.step) + ", " + printable(op.phase) + ", " + module_text(op);
  if (!op.node.empty()) text += " via " + printable(op.node);
  return text;
}

std::string tensors_text(const std::vector<TraceTensor>& tensors) {
  std::string text;
  for (const TraceTensor& tensor : tensors) {
    if (!text.empty()) text += ", ";
    text += printable(tensor.label) + " " + shape_text(tensor.shape);
    if (!tensor.digest) text += " (not compared)";
  }
  return text.empty() ? "none" : text;
}

std::string join(const std::vector<std::string>& names, size_t most) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < most; ++i) {
    text += (i > 0 ? ", " : "") + printable(names[i]);
  }
  if (names.size() > most) text += ", and " + std::to_string(names.size() - most) + " more";
  return text;
}

void describe_elements(const std::optional<DiffReport>& report, const std::string& note,
                       std::vector<std::string>& lines) {
  if (!report) {
    if (!note.empty()) lines.push_back("      " + printable(note));
    return;
  }
  if (report->verdict == Verdict::kIdentical) {
    lines.push_back("      the saved tensors are bitwise identical");
  }
  for (const TensorFinding& finding : report->findings) {
    for (std::string& line : describe_finding(finding, *report, 6)) lines.push_back(line);
  }
}

void describe_op(const TraceDiff& diff, std::vector<std::string>& lines) {
  const OpFinding& finding = diff.op;
  if (diff.ops_a == 0 && diff.ops_b == 0) return;
  if (diff.ops_a == 0 || diff.ops_b == 0) {
    lines.push_back(std::string("  operators were recorded only in ") +
                    (diff.ops_a > 0 ? "{A}" : "{B}") + ", so none are compared");
    return;
  }
  switch (finding.kind) {
    case OpFinding::Kind::kNone:
      lines.push_back("  the " + std::to_string(diff.ops_a) +
                      " recorded operators match in every input, argument and output");
      return;
    case OpFinding::Kind::kDivergedBefore:
      if (!diff.initial_differing.empty()) {
        lines.push_back(
            "  diverged before the recorded range: the state differs before the "
            "first step, so the runs started apart (initialisation, a checkpoint, "
            "a seed)");
      } else {
        lines.push_back(
            "  diverged before the recorded range: the state already differs at step " +
            std::to_string(*diff.first_step) +
            ", before the first recorded operator; record the operators of an earlier step to "
            "find the cause");
      }
      return;
    case OpFinding::Kind::kAfterRecordedRange:
      lines.push_back(
          "  the " + std::to_string(diff.ops_a) + " recorded operators match, up to step " +
          std::to_string(*diff.last_recorded_step) + "; the runs part at step " +
          std::to_string(*diff.first_step) + ": record that step's operators (ops=range(" +
          std::to_string(*diff.first_step) + ", " +
          std::to_string(static_cast<uint64_t>(*diff.first_step) + 1) + ")) to find the cause");
      return;
    case OpFinding::Kind::kOutsideOperators:
      lines.push_back("  every recorded operator matches, yet the state differs at step " +
                      std::to_string(*diff.first_step) +
                      ": it was changed outside the operators the dispatcher sees (through "
                      ".data, numpy, or another thread)");
      return;
    case OpFinding::Kind::kSequencesPart:
      if (finding.a && finding.b) {
        lines.push_back("  the operator sequences part at call " + std::to_string(finding.a->call) +
                        ": " + op_text(*finding.a) + " [" + tensors_text(finding.a->inputs) +
                        "] vs " + op_text(*finding.b) + " [" + tensors_text(finding.b->inputs) +
                        "]");
      } else {
        const TraceOp& extra = finding.a ? *finding.a : *finding.b;
        lines.push_back("  the operator sequences part at call " + std::to_string(extra.call) +
                        ": only " + (finding.a ? "{A}" : "{B}") + " goes on, with " +
                        op_text(extra));
      }
      return;
    case OpFinding::Kind::kCause:
      lines.push_back("  first divergent operator: " + op_text(*finding.a));
      lines.push_back("      its inputs matched: " + tensors_text(finding.a->inputs));
      lines.push_back("      its output differed: " + join(finding.labels, 8));
      break;
    case OpFinding::Kind::kRngDiffered:
      lines.push_back("  RNG state differed at " + op_text(*finding.a) +
                      ": the generator was seeded differently or drawn from a different "
                      "number of times before it");
      break;
    case OpFinding::Kind::kArgsDiffered:
      lines.push_back("  non-tensor arguments differed at " + op_text(*finding.a) + ": " +
                      printable(finding.a->args) + " vs " + printable(finding.b->args));
      break;
    case OpFinding::Kind::kInputFromOutside:
      lines.push_back("  first operator with a differing input: " + op_text(*finding.a));
      lines.push_back("      its input " + join(finding.labels, 8) + " already differed" +
                      (differing_labels(finding.a->outputs, finding.b->outputs).empty()
                           ? " (its outputs matched)"
                           : "") +
                      ", and no recorded operator made a different value: it came from outside "
                      "the recorded operators (data, a tensor made before recording began, a "
                      "write the dispatcher does not see, another thread)");
      break;
  }
  if (finding.a && finding.a->phase == "backward") {
    lines.push_back(
        "      (module paths in backward are attributed through the autograd nodes, "
        "best effort)");
  }
  describe_elements(finding.elements, finding.elements_note, lines);
}

std::string_view op_kind_word(OpFinding::Kind kind) {
  switch (kind) {
    case OpFinding::Kind::kNone:
      return "none";
    case OpFinding::Kind::kCause:
      return "cause";
    case OpFinding::Kind::kRngDiffered:
      return "rng_state_differed";
    case OpFinding::Kind::kArgsDiffered:
      return "arguments_differed";
    case OpFinding::Kind::kDivergedBefore:
      return "diverged_before_recorded_range";
    case OpFinding::Kind::kInputFromOutside:
      return "input_from_outside";
    case OpFinding::Kind::kAfterRecordedRange:
      return "after_recorded_range";
    case OpFinding::Kind::kOutsideOperators:
      return "outside_operators";
    case OpFinding::Kind::kSequencesPart:
      break;
  }
  return "sequences_part";
}

json tensors_json(const std::vector<TraceTensor>& tensors) {
  json list = json::array();
  for (const TraceTensor& tensor : tensors) {
    list.push_back({{"label", tensor.label},
                    {"shape", tensor.shape},
                    {"digest", tensor.digest ? json(*tensor.digest) : json(nullptr)}});
  }
  return list;
}

// One side's operator, with that side's digests.
json op_json(const TraceOp& op) {
  return {
      {"call", op.call},
      {"step", op.step},
      {"name", op.name},
      {"phase", op.phase},
      {"module", op.module ? json(*op.module) : json(nullptr)},
      {"module_exact", op.phase != "backward"},
      {"node", op.node},
      {"args", op.args},
      {"inputs", tensors_json(op.inputs)},
      {"outputs", tensors_json(op.outputs)},
      {"rng", op.rng ? json(*op.rng) : json(nullptr)},
  };
}

// Always a list, empty when nothing was saved or compared.
json elements_json(const std::optional<DiffReport>& report) {
  if (!report) return json::array();
  json list = json::array();
  for (const TensorFinding& finding : report->findings) list.push_back(finding_json(finding));
  return list;
}

std::vector<std::string> describe_trace_lines(const TraceDiff& diff);

}  // namespace

bool looks_like_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  // Blank lines before the header are skipped when the trace is read.
  std::string start(4096, '\0');
  in.read(start.data(), static_cast<std::streamsize>(start.size()));
  start.resize(static_cast<size_t>(in.gcount()));
  const size_t first = start.find_first_not_of(" \t\r\n");
  return first != std::string::npos &&
         std::string_view(start).substr(first).starts_with(kHeaderStart);
}

Result<Trace> read_trace(const std::string& path) {
  std::error_code error;
  if (fs::is_directory(path, error)) return make_error(path + ": is a folder, not a trace");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path + ": cannot open: " + std::string(std::strerror(errno)));
  return parse_trace(in, path);
}

Result<Trace> parse_trace(std::istream& in, const std::string& path) {
  Trace trace;
  trace.path = path;
  std::string text;
  size_t number = 0;
  bool header = false;
  for (;;) {
    const LineRead got = read_line(in, text);
    if (got == LineRead::kEnd) break;
    ++number;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (got == LineRead::kTooLong) return make_error(where + "a line longer than 16 MiB");
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    StrictJsonError problem;
    auto parsed = parse_strict_json(text, kMaxDepth, problem);
    if (!parsed && in.eof() && header && problem.kind == StrictJsonError::Kind::kInvalid &&
        text.starts_with('{') && problem.byte >= text.size()) {
      // The last line has no line break, opens an object and ends before
      // its JSON does: the helper was stopped while writing it.
      trace.cut_short = true;
      break;
    }
    if (!parsed) {
      switch (problem.kind) {
        case StrictJsonError::Kind::kDuplicateKey:
          return make_error(where + "key \"" + printable(problem.detail) + "\" appears twice");
        case StrictJsonError::Kind::kTooDeep:
          return make_error(where + "nests deeper than a trace does");
        case StrictJsonError::Kind::kInvalid:
          break;
      }
      return make_error(where + "not JSON: " + problem.detail);
    }
    const json& object = *parsed;
    LineReader line(path, number, object);
    if (!object.is_object()) return line.error("not a JSON object");
    Status status;
    if (!header) {
      status = read_header(line, trace);
      header = true;
    } else if (object.contains("op")) {
      status = read_op(line, trace);
    } else if (object.contains("step")) {
      status = read_step(line, trace);
    } else {
      status = line.error("neither a step nor an operator");
    }
    if (!status) return status.error();
  }
  if (in.bad()) return make_error(path + ": read failed");
  if (!header) return make_error(path + ": empty, not a trace");
  return trace;
}

TraceDiff compare_traces(const Trace& a, const Trace& b, const Tolerance& tolerance) {
  TraceDiff diff;
  diff.path_a = a.path;
  diff.path_b = b.path;
  diff.steps_a = a.steps.size();
  diff.steps_b = b.steps.size();
  diff.cut_short_a = a.cut_short;
  diff.cut_short_b = b.cut_short;
  compare_steps(a, b, tolerance, diff);
  compare_ops(a, b, tolerance, diff);
  diff.identical = diff.header_problems.empty() && !diff.first_step &&
                   diff.initial_differing.empty() && diff.op.kind == OpFinding::Kind::kNone &&
                   diff.ops_a == diff.ops_b;
  return diff;
}

std::vector<std::string> describe_trace_diff(const TraceDiff& diff, std::string_view name_a,
                                             std::string_view name_b) {
  std::vector<std::string> lines = describe_trace_lines(diff);
  for (std::string& line : lines) line = name_sides(line, name_a, name_b);
  return lines;
}

std::string name_sides(std::string text, std::string_view name_a, std::string_view name_b) {
  // One pass, so a name that holds a mark is left as it is.
  std::string named;
  size_t at = 0;
  for (size_t mark = text.find('{'); mark != std::string::npos; mark = text.find('{', at)) {
    const std::string_view rest = std::string_view(text).substr(mark);
    named.append(text, at, mark - at);
    if (rest.starts_with("{A}") || rest.starts_with("{B}")) {
      named += rest[1] == 'A' ? name_a : name_b;
      at = mark + 3;
    } else {
      named += '{';
      at = mark + 1;
    }
  }
  named.append(text, at);
  return named;
}

namespace {

std::vector<std::string> describe_trace_lines(const TraceDiff& diff) {
  std::vector<std::string> lines;
  for (auto [cut, side] : {std::pair{diff.cut_short_a, "{A}"}, {diff.cut_short_b, "{B}"}}) {
    if (cut) {
      lines.push_back(std::string("  the last line of ") + side +
                      " is cut short, as when a run is stopped while writing it; it is left out");
    }
  }
  if (diff.identical) {
    lines.push_back("  traces identical: " + std::to_string(diff.steps_a) + " steps and " +
                    std::to_string(diff.ops_a) + " operators, every loss and digest the same");
    return lines;
  }
  for (const std::string& problem : diff.header_problems)
    lines.push_back("  " + printable(problem));
  if (!diff.initial_differing.empty()) {
    lines.push_back("  the state differs before the first step: " +
                    std::to_string(diff.initial_differing.size()) + " of " +
                    std::to_string(diff.tensors) + " tensors, first " +
                    printable(diff.initial_differing.front()));
  }
  if (diff.steps_part && diff.first_step) {
    lines.push_back("  the traces' steps part at step " + std::to_string(*diff.first_step) +
                    " ({A} has " + std::to_string(diff.steps_a) + " steps, {B} " +
                    std::to_string(diff.steps_b) + ")");
  } else if (diff.first_step) {
    std::string what;
    if (diff.loss_differs) what = "the loss";
    if (!diff.differing_tensors.empty()) {
      what += std::string(what.empty() ? "" : " and ") +
              std::to_string(diff.differing_tensors.size()) + " of " +
              std::to_string(diff.tensors) + " tensors, first " +
              printable(diff.differing_tensors.front());
    }
    lines.push_back("  first divergent step: " + std::to_string(*diff.first_step) + " (" + what +
                    ")");
    if (diff.differing_tensors.size() > 1) {
      lines.push_back("      differing there: " + join(diff.differing_tensors, 8));
    }
    if (diff.first_loss_step && *diff.first_loss_step != *diff.first_step) {
      lines.push_back("      the loss first differs at step " +
                      std::to_string(*diff.first_loss_step));
    }
    describe_elements(diff.step_elements, diff.step_elements_note, lines);
  } else if (diff.header_problems.empty()) {
    lines.push_back("  every step's loss and digests match (" + std::to_string(diff.steps_a) +
                    (diff.steps_a == 1 ? " step)" : " steps)"));
  }
  if (!diff.growth.empty()) {
    lines.push_back("  how the difference grows:");
    lines.push_back("      step        loss difference     tensors differing");
    for (const TraceGrowthRow& row : diff.growth) {
      char text[160];
      std::string delta = row.loss_abs_diff ? number_text(*row.loss_abs_diff) : "-";
      std::snprintf(text, sizeof(text), "      %-11lld %-19s %zu of %zu",
                    static_cast<long long>(row.step), delta.c_str(), row.tensors_differing,
                    row.tensors);
      lines.push_back(text);
    }
  }
  describe_op(diff, lines);
  return lines;
}

}  // namespace

json trace_diff_json(const TraceDiff& diff) {
  json growth = json::array();
  for (const TraceGrowthRow& row : diff.growth) {
    growth.push_back(
        {{"step", row.step},
         {"loss_a", row.loss_a ? json(*row.loss_a) : json(nullptr)},
         {"loss_b", row.loss_b ? json(*row.loss_b) : json(nullptr)},
         {"loss_abs_diff", row.loss_abs_diff ? json_number(*row.loss_abs_diff) : json(nullptr)},
         {"tensors_differing", row.tensors_differing},
         {"tensors", row.tensors}});
  }
  const OpFinding& finding = diff.op;
  json op = {{"kind", op_kind_word(finding.kind)}, {"labels", finding.labels}};
  if (finding.a) op["a"] = op_json(*finding.a);
  if (finding.b) op["b"] = op_json(*finding.b);
  op["elements"] = elements_json(finding.elements);
  op["elements_note"] = name_sides(finding.elements_note, "A", "B");
  std::vector<std::string> problems;
  for (const std::string& problem : diff.header_problems) {
    problems.push_back(name_sides(problem, "A", "B"));
  }
  return {
      {"a", diff.path_a},
      {"b", diff.path_b},
      {"identical", diff.identical},
      {"header_problems", problems},
      {"steps_a", diff.steps_a},
      {"steps_b", diff.steps_b},
      {"first_step", diff.first_step ? json(*diff.first_step) : json(nullptr)},
      {"steps_part", diff.steps_part},
      {"loss_differs", diff.loss_differs},
      {"differing_tensors", diff.differing_tensors},
      {"initial_differing", diff.initial_differing},
      {"first_loss_step", diff.first_loss_step ? json(*diff.first_loss_step) : json(nullptr)},
      {"last_recorded_step",
       diff.last_recorded_step ? json(*diff.last_recorded_step) : json(nullptr)},
      {"cut_short_a", diff.cut_short_a},
      {"cut_short_b", diff.cut_short_b},
      {"tensors", diff.tensors},
      {"growth", growth},
      {"step_elements", elements_json(diff.step_elements)},
      {"step_elements_note", name_sides(diff.step_elements_note, "A", "B")},
      {"ops_a", diff.ops_a},
      {"ops_b", diff.ops_b},
      {"operator", op},
  };
}

}  // namespace memdet::compare
