// fileorder=: directory listings in a chosen order (CONTRACT.md, "File order").
#pragma once

#include "preload/prim.h"

namespace memdet::preload {

// Called once from start() in active mode when fileorder= is set.
void start_fileorder();

// The report's fileorder lines; nothing when fileorder= is not set.
void write_fileorder_report(prim::Writer& out);

}  // namespace memdet::preload
