// Fuzzes the trace reader, then compares what it read with itself: a
// trace can never differ from itself.
#include <cstdint>
#include <sstream>
#include <string>

#include "compare/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  auto trace = memdet::compare::parse_trace(in, "fuzz.jsonl");
  if (!trace) return 0;
  memdet::compare::TraceDiff diff =
      memdet::compare::compare_traces(*trace, *trace, memdet::compare::Tolerance{});
  if (!diff.identical) __builtin_trap();
  (void)memdet::compare::describe_trace_diff(diff);
  (void)memdet::compare::trace_diff_json(diff).dump();
  return 0;
}
