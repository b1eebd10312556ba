// entropy=: OS entropy served from a seeded stream (CONTRACT.md, "Entropy").
#pragma once

#include "preload/prim.h"

namespace memdet::preload {

// Called once from start() in active mode when entropy= is set.
void start_entropy();

// The report's entropy lines; nothing when entropy= is not set.
void write_entropy_report(prim::Writer& out);

}  // namespace memdet::preload
