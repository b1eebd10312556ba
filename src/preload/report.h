// The report of CONTRACT.md, written at exit with raw write(2).
#pragma once

namespace memdet::preload {

// Writes <prefix>.<pid> when the library is active and report= is set.
// Safe to call while other threads run: it reads counters and /proc only.
void write_report();

}  // namespace memdet::preload
