// memdet restore
//
// Puts back the system-wide settings that a memdet killed mid-run (kill -9,
// a crash) left changed, as the journal records them, and prints one line
// per setting. memdet run and check do the same when they start; this is
// the on-demand form, for root after a memdet without root said so. Exits
// 0 when nothing was left or everything was put back, 1 when a setting
// could not be restored or had been changed by someone else since.
#include <cstdio>

#include "cli/commands.h"
#include "core/text.h"
#include "factors/system_settings.h"

namespace memdet::cli {
namespace {

int restore() {
  std::string dir = factors::journal_dir();
  factors::Recovery recovery = factors::recover_stale_entries(dir, factors::RecoveryMode::kRestore);

  for (const std::string& line : recovery.messages) {
    std::printf("memdet restore: %s\n", printable(line).c_str());
  }
  for (const std::string& line : recovery.held) {
    std::printf("memdet restore: %s\n", printable(line).c_str());
  }
  if (recovery.messages.empty() && recovery.held.empty()) {
    std::printf("memdet restore: nothing to restore (the journal in %s is empty)\n",
                printable(dir).c_str());
  }
  std::fflush(stdout);
  return recovery.complete() ? 0 : 1;
}

}  // namespace

Registered add_restore_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "restore",
      "Put back system-wide settings a killed memdet left changed (journal: /var/lib/memdet, "
      "or $MEMDET_JOURNAL_DIR); exit 1 if one could not be restored");
  return {app, [] { return restore(); }, 2};
}

}  // namespace memdet::cli
