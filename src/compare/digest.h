// Content digests of artifacts: XXH3-128, the same on every host.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace memdet::compare {

// Lower-case hex of the 128-bit digest, high half first (as xxhsum prints it).
Result<std::string> digest_file(const std::string& path);
std::string digest_bytes(std::string_view bytes);

}  // namespace memdet::compare
