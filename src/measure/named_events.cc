// libpfm4's name resolution, in a file of its own: <perfmon/perf_event.h>
// declares its own struct perf_event_attr, which cannot share a translation
// unit with the kernel's <linux/perf_event.h>.
#include <perfmon/pfmlib_perf_event.h>

#include <cstring>
#include <mutex>

#include "measure/counters.h"

namespace memdet::measure {

Result<NamedEncoding> resolve_named_event(const std::string& name, bool exclude_kernel) {
  // pfm_initialize probes every PMU model libpfm4 knows (about 2 ms): once
  // per memdet process, and only when a named event is wanted.
  static std::once_flag once;
  static int initialized = PFM_ERR_NOINIT;
  std::call_once(once, [] { initialized = pfm_initialize(); });
  if (initialized != PFM_SUCCESS) {
    return make_error(std::string("libpfm4 cannot start: ") + pfm_strerror(initialized));
  }

  perf_event_attr attr;
  std::memset(&attr, 0, sizeof attr);
  pfm_perf_encode_arg_t arg;
  std::memset(&arg, 0, sizeof arg);
  arg.attr = &attr;
  arg.size = sizeof arg;
  const int levels = exclude_kernel ? PFM_PLM3 : PFM_PLM3 | PFM_PLM0;
  int error = pfm_get_os_event_encoding(name.c_str(), levels, PFM_OS_PERF_EVENT, &arg);
  if (error == PFM_ERR_NOTFOUND || error == PFM_ERR_UMASK || error == PFM_ERR_ATTR) {
    return make_error(kUnknownEvent);
  }
  if (error != PFM_SUCCESS) {
    return make_error(std::string("libpfm4: ") + pfm_strerror(error));
  }
  return NamedEncoding{attr.type, attr.config, attr.config1, attr.config2};
}

}  // namespace memdet::measure
