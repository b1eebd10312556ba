// clock=: a virtual wall clock (CONTRACT.md, "Clock").
#pragma once

#include "preload/prim.h"

namespace memdet::preload {

// Called once from start() in active mode when clock= is set.
void start_clock();

// The report's clock lines; nothing when clock= is not set.
void write_clock_report(prim::Writer& out);

}  // namespace memdet::preload
