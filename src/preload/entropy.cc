#include "preload/entropy.h"

namespace memdet::preload {

void start_entropy() {}

void write_entropy_report(prim::Writer&) {}

}  // namespace memdet::preload
