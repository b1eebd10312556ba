#include "preload/fileorder.h"

namespace memdet::preload {

void start_fileorder() {}

void write_fileorder_report(prim::Writer&) {}

}  // namespace memdet::preload
