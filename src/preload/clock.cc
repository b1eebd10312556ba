#include "preload/clock.h"

namespace memdet::preload {

void start_clock() {}

void write_clock_report(prim::Writer&) {}

}  // namespace memdet::preload
