// Text that reaches a terminal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace memdet {

// `text` with control characters shown as \xNN, so a file name or a header
// read from a lying file cannot move the cursor or change colours.
std::string printable(std::string_view text);

// `text` without leading and trailing spaces, tabs and line breaks.
std::string_view trim(std::string_view text);

// The last component of a path: "libblas.so.3" for "/usr/lib/libblas.so.3".
std::string_view base_name(std::string_view path);

// The items with `separator` between them.
std::string join(const std::vector<std::string>& items, const char* separator = ", ");

// `text` broken at spaces into lines of at most 78 columns, each after
// `indent` and ending in a line break.
std::string wrapped(const std::string& text, const std::string& indent);

// One argument as a POSIX shell would need it quoted to mean itself.
std::string shell_quote(std::string_view arg);

}  // namespace memdet
