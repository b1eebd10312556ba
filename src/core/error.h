// Errors that end a command. They carry the exit status the command must
// return; main() catches them in one place and prints the message alone,
// with no trace, because each is the user's input or the host's refusal,
// not a bug in memdet.
#pragma once

#include <stdexcept>
#include <string>

namespace memdet {

// Documented exit statuses of the analysis commands.
enum class Exit : int {
  kNoDifference = 0,
  kDiffers = 1,
  kUsage = 2,
  kWorkloadFailed = 3,
  kInterrupted = 130,
};

// Statuses of `memdet run`, chosen as env(1) does so that memdet's own
// failure cannot be mistaken for the child's status.
enum class RunExit : int {
  kTimeout = 124,
  kInternal = 125,
  kCannotExecute = 126,
  kNotFound = 127,
};

class CommandError : public std::runtime_error {
 public:
  CommandError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The user's input is wrong: a bad option, an unreadable or lying file.
inline CommandError usage_error(const std::string& message) {
  return CommandError(static_cast<int>(Exit::kUsage), message);
}

}  // namespace memdet
