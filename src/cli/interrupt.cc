#include "cli/interrupt.h"

#include <csignal>

namespace memdet::cli {
namespace {

volatile std::sig_atomic_t g_interrupt = 0;

void on_interrupt(int signal_number) {
  if (g_interrupt != 0) {
    ::signal(signal_number, SIG_DFL);
    ::raise(signal_number);
  }
  g_interrupt = signal_number;
}

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

}  // namespace

InterruptGuard::InterruptGuard() {
  g_interrupt = 0;
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 3; ++i) {
    ::sigaction(kSignals[i], &action, &saved_[i]);
  }
}

InterruptGuard::~InterruptGuard() {
  for (int i = 0; i < 3; ++i) {
    ::sigaction(kSignals[i], &saved_[i], nullptr);
  }
}

const volatile std::sig_atomic_t* InterruptGuard::flag() const { return &g_interrupt; }

}  // namespace memdet::cli
