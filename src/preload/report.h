// The report of CONTRACT.md, written at exit with raw write(2).
#pragma once

#include "preload/prim.h"

namespace memdet::preload {

// Writes <prefix>.<pid> when the library is active and report= is set.
// Safe to call while other threads run: it reads counters and /proc only.
void write_report();

// The report's numa_pages line (pages per node from /proc/self/numa_maps),
// which the fingerprint record shares.
void write_numa_pages(prim::Writer& out);

}  // namespace memdet::preload
