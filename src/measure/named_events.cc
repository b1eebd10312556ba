// libpfm4's name resolution, in a file of its own: <perfmon/perf_event.h>
// declares its own struct perf_event_attr, which cannot share a translation
// unit with the kernel's <linux/perf_event.h>.
//
// The library is opened with dlopen when a named event is first wanted, not
// linked: its event tables carry some 41,000 relocations, which cost every
// memdet start about 1 ms and 290 page faults, measured, while named events
// are needed only on hosts whose generic cache events fail.
#include <dlfcn.h>
#include <perfmon/pfmlib_perf_event.h>

#include <cstring>
#include <mutex>

#include "measure/counters.h"

namespace memdet::measure {
namespace {

constexpr const char* kLibrary = "libpfm.so.4";

struct Pfm {
  decltype(&pfm_initialize) initialize = nullptr;
  decltype(&pfm_get_os_event_encoding) encode = nullptr;
  decltype(&pfm_strerror) strerror = nullptr;
  std::string problem;  // why it cannot be used; empty when it can
};

Pfm open_pfm() {
  Pfm pfm;
  void* handle = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = ::dlerror();
    pfm.problem = std::string("libpfm4 is not installed (") + (error ? error : kLibrary) + ")";
    return pfm;
  }
  pfm.initialize = reinterpret_cast<decltype(&pfm_initialize)>(::dlsym(handle, "pfm_initialize"));
  pfm.encode = reinterpret_cast<decltype(&pfm_get_os_event_encoding)>(
      ::dlsym(handle, "pfm_get_os_event_encoding"));
  pfm.strerror = reinterpret_cast<decltype(&pfm_strerror)>(::dlsym(handle, "pfm_strerror"));
  if (pfm.initialize == nullptr || pfm.encode == nullptr || pfm.strerror == nullptr) {
    pfm.problem = std::string(kLibrary) + " lacks the functions memdet calls";
    return pfm;
  }
  // pfm_initialize probes every PMU model libpfm4 knows (about 2 ms).
  int initialized = pfm.initialize();
  if (initialized != PFM_SUCCESS) {
    pfm.problem = std::string("libpfm4 cannot start: ") + pfm.strerror(initialized);
  }
  return pfm;
}

}  // namespace

Result<NamedEncoding> resolve_named_event(const std::string& name, bool exclude_kernel) {
  // Once per memdet process, and only when a named event is wanted.
  static std::once_flag once;
  static Pfm pfm;
  std::call_once(once, [] { pfm = open_pfm(); });
  if (!pfm.problem.empty()) {
    return make_error(pfm.problem);
  }

  perf_event_attr attr;
  std::memset(&attr, 0, sizeof attr);
  pfm_perf_encode_arg_t arg;
  std::memset(&arg, 0, sizeof arg);
  arg.attr = &attr;
  arg.size = sizeof arg;
  const int levels = exclude_kernel ? PFM_PLM3 : PFM_PLM3 | PFM_PLM0;
  int error = pfm.encode(name.c_str(), levels, PFM_OS_PERF_EVENT, &arg);
  if (error == PFM_ERR_NOTFOUND || error == PFM_ERR_UMASK || error == PFM_ERR_ATTR) {
    return make_error(kUnknownEvent);
  }
  if (error != PFM_SUCCESS) {
    return make_error(std::string("libpfm4: ") + pfm.strerror(error));
  }
  return NamedEncoding{attr.type, attr.config, attr.config1, attr.config2};
}

}  // namespace memdet::measure
