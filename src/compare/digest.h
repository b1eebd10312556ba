// Content digests of artifacts: XXH3-128, the same on every host.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace memdet::compare {

// Lower-case hex of the 128-bit digest, high half first (as xxhsum prints it).
Result<std::string> digest_file(const std::string& path);
std::string digest_bytes(std::string_view bytes);

// A digest fed in pieces, for content that is transformed on its way in
// (masked text) and should not be held whole in memory.
class Digester {
 public:
  Digester();
  Digester(const Digester&) = delete;
  Digester& operator=(const Digester&) = delete;
  ~Digester();

  void update(std::string_view bytes);
  std::string finish();

 private:
  void* state_;
};

}  // namespace memdet::compare
