// JSON from untrusted files, parsed strictly: nlohmann keeps the last of
// two equal keys silently and stops at a NUL byte as if the text ended
// there, so both are refused here, as is nesting deeper than a format uses.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace memdet::compare {

struct StrictJsonError {
  enum class Kind { kDuplicateKey, kTooDeep, kInvalid } kind = Kind::kInvalid;
  // The key for kDuplicateKey; nlohmann's message, without its
  // "[json.exception...]" prefix, for kInvalid.
  std::string detail;
  // For a parse error, how many bytes the parser had read: the text's
  // size when the text ended before its JSON did.
  size_t byte = 0;
};

// Parses text, refusing duplicate keys at any level, objects or arrays at
// depth max_depth or below, and NUL bytes.
Result<nlohmann::json> parse_strict_json(std::string_view text, int max_depth,
                                         StrictJsonError& error);

}  // namespace memdet::compare
