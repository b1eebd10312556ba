// How a campaign stops on SIGINT, SIGTERM or SIGHUP: the first signal lets
// the current run finish and the records be written; a second one, for a
// run that does not finish, ends memdet. During a run the launcher forwards
// the signal to the workload.
#pragma once

#include <csignal>

namespace memdet::cli {

// Installs the handlers for its lifetime and restores the previous ones.
class InterruptGuard {
 public:
  InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  ~InterruptGuard();

  // The signal received, 0 while none was.
  const volatile std::sig_atomic_t* flag() const;

 private:
  struct sigaction saved_[3]{};
};

}  // namespace memdet::cli
