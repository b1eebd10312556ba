#include "compare/strict_json.h"

#include <set>
#include <vector>

namespace memdet::compare {

namespace {

using json = nlohmann::json;

// Thrown from inside the parser's callback, which has no other way to stop
// the parse, and caught below.
struct Refused {
  StrictJsonError error;
};

}  // namespace

Result<json> parse_strict_json(std::string_view text, int max_depth, StrictJsonError& error) {
  if (text.find('\0') != std::string_view::npos) {
    error = {StrictJsonError::Kind::kInvalid, "holds a NUL byte"};
    return make_error(error.detail);
  }
  std::vector<std::set<std::string>> keys;
  const json::parser_callback_t check = [&keys, max_depth](int depth, json::parse_event_t event,
                                                           json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth) throw Refused{{StrictJsonError::Kind::kTooDeep, ""}};
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second) {
          throw Refused{{StrictJsonError::Kind::kDuplicateKey, parsed.get<std::string>()}};
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };

  try {
    return json::parse(text.begin(), text.end(), check);
  } catch (const Refused& refused) {
    error = refused.error;
  } catch (const json::parse_error& failure) {
    std::string what = failure.what();
    const size_t bracket = what.find("] ");
    if (what.starts_with("[json.") && bracket != std::string::npos) what.erase(0, bracket + 2);
    error = {StrictJsonError::Kind::kInvalid, what, failure.byte};
  } catch (const json::exception& failure) {
    // nlohmann's messages start with "[json.exception.parse_error.101] "; a
    // number too large for a double is its out_of_range.406.
    std::string what = failure.what();
    const size_t bracket = what.find("] ");
    if (what.starts_with("[json.") && bracket != std::string::npos) what.erase(0, bracket + 2);
    error = {StrictJsonError::Kind::kInvalid, what};
  }
  return make_error(error.detail);
}

}  // namespace memdet::compare
