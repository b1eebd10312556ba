// Judging the environment the workload would inherit and the libraries it
// would load: the BLAS behind libblas.so.3, the allocator LD_PRELOAD names
// and its settings, OpenMP binding, and the GPU stack's variables, some of
// which do nothing at all.
#include <algorithm>
#include <iterator>
#include <sstream>

#include "core/text.h"
#include "doctor/findings.h"

namespace memdet::doctor {
namespace {

using Environment = std::map<std::string, std::string>;

// The option names Debian's jemalloc 5.3 (libjemalloc2) accepts in
// MALLOC_CONF, from the opt.* entries of jemalloc(3), less the ones its
// build leaves out (log, utrace, xmalloc, lg_san_uaf_align): for those it
// prints "Invalid conf pair" like for a misspelt name.
constexpr const char* kJemallocOptions[] = {"abort",
                                            "abort_conf",
                                            "background_thread",
                                            "bin_shards",
                                            "confirm_conf",
                                            "dirty_decay_ms",
                                            "dss",
                                            "experimental_infallible_new",
                                            "hpa",
                                            "hpa_dirty_mult",
                                            "hpa_hugification_threshold",
                                            "hpa_hugification_threshold_ratio",
                                            "hpa_hugify_delay_ms",
                                            "hpa_min_purge_interval_ms",
                                            "hpa_sec_batch_fill_extra",
                                            "hpa_sec_bytes_after_flush",
                                            "hpa_sec_max_alloc",
                                            "hpa_sec_max_bytes",
                                            "hpa_sec_nshards",
                                            "hpa_slab_max_alloc",
                                            "junk",
                                            "lg_extent_max_active_fit",
                                            "lg_prof_interval",
                                            "lg_prof_sample",
                                            "lg_tcache_flush_large_div",
                                            "lg_tcache_flush_small_div",
                                            "lg_tcache_max",
                                            "lg_tcache_nslots_mul",
                                            "max_background_threads",
                                            "metadata_thp",
                                            "muzzy_decay_ms",
                                            "mutex_max_spin",
                                            "narenas",
                                            "narenas_ratio",
                                            "oversize_threshold",
                                            "percpu_arena",
                                            "prof",
                                            "prof_accum",
                                            "prof_active",
                                            "prof_final",
                                            "prof_gdump",
                                            "prof_leak",
                                            "prof_leak_error",
                                            "prof_log",
                                            "prof_prefix",
                                            "prof_recent_alloc_max",
                                            "prof_stats",
                                            "prof_sys_thread_name",
                                            "prof_thread_active_init",
                                            "prof_time_resolution",
                                            "prof_unbias",
                                            "retain",
                                            "san_guard_large",
                                            "san_guard_small",
                                            "slab_sizes",
                                            "stats_interval",
                                            "stats_interval_opts",
                                            "stats_print",
                                            "stats_print_opts",
                                            "tcache",
                                            "tcache_gc_delay_bytes",
                                            "tcache_gc_incr_bytes",
                                            "tcache_max",
                                            "tcache_nslots_large",
                                            "tcache_nslots_small_max",
                                            "tcache_nslots_small_min",
                                            "thp",
                                            "trust_madvise",
                                            "zero",
                                            "zero_realloc"};

bool known_jemalloc_option(const std::string& name) {
  return std::find(std::begin(kJemallocOptions), std::end(kJemallocOptions), name) !=
         std::end(kJemallocOptions);
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "name:value" pairs of MALLOC_CONF, split as jemalloc splits them.
std::vector<std::string> conf_pairs(const std::string& conf) {
  std::vector<std::string> pairs;
  std::stringstream stream(conf);
  std::string pair;
  while (std::getline(stream, pair, ',')) {
    if (!pair.empty()) {
      pairs.push_back(pair);
    }
  }
  return pairs;
}

const std::string* lookup(const Environment& environment, const std::string& name) {
  auto found = environment.find(name);
  return found == environment.end() ? nullptr : &found->second;
}

std::vector<std::string> preload_entries(const Environment& environment) {
  const std::string* preload = lookup(environment, "LD_PRELOAD");
  return preload == nullptr ? std::vector<std::string>{} : split_preload(*preload);
}

void add(std::vector<Finding>& findings, std::string id, Severity severity, std::string what,
         std::string why, std::string fix) {
  findings.push_back({std::move(id), severity, std::move(what), std::move(why), std::move(fix)});
}

void judge_blas(const Facts& facts, std::vector<Finding>& findings) {
  if (!facts.blas || facts.blas->name != "reference BLAS") {
    return;
  }
  std::string link = std::string(base_name(facts.blas->link));
  std::string alternative =
      link.starts_with("libblas.so.3-") ? link : "libblas.so.3-x86_64-linux-gnu";
  std::string arch = alternative.substr(13);
  add(findings, "blas", Severity::kMedium,
      "libblas.so.3 is the reference BLAS (" + facts.blas->resolved + ")",
      "it is unblocked and single-threaded, many times slower than OpenBLAS, and sums in another "
      "order, so results differ from machines whose libblas.so.3 points elsewhere",
      "update-alternatives --set " + alternative + " /usr/lib/" + arch +
          "/openblas-pthread/libblas.so.3 (apt-get install libopenblas0-pthread first)");
}

void judge_allocator(const Facts& facts, const Environment& environment,
                     std::vector<Finding>& findings) {
  const std::string& allocator = facts.allocator;
  for (const std::string& missing : facts.preload_missing) {
    add(findings, "ld-preload", Severity::kMedium,
        "LD_PRELOAD names " + missing + ", which does not exist",
        "the dynamic linker prints an error and starts the program without it, so it runs with "
        "another allocator or library than intended",
        "correct the path or unset LD_PRELOAD; memdet run --pin allocator=NAME preloads an "
        "installed allocator itself");
  }

  const std::string* conf = lookup(environment, "MALLOC_CONF");
  if (conf == nullptr) {
    return;
  }
  if (allocator != "jemalloc") {
    add(findings, "malloc-conf", Severity::kLow,
        "MALLOC_CONF is set, but the allocator LD_PRELOAD names is " + allocator,
        "only jemalloc reads MALLOC_CONF, so the setting does nothing unless the program links "
        "jemalloc itself",
        "unset MALLOC_CONF, or memdet run --pin allocator=jemalloc so that it applies");
    return;
  }
  std::vector<std::string> unknown = unknown_jemalloc_options(*conf);
  if (unknown.empty()) {
    return;
  }
  std::string names;
  std::string corrected;
  bool all_suggested = true;
  for (const std::string& pair : conf_pairs(*conf)) {
    size_t colon = pair.find(':');
    std::string name = pair.substr(0, colon);
    std::string fixed = pair;
    if (colon == std::string::npos || !known_jemalloc_option(name)) {
      names += (names.empty() ? "" : ", ") + name;
      std::string suggestion = colon == std::string::npos ? "" : closest_jemalloc_option(name);
      all_suggested = all_suggested && !suggestion.empty();
      fixed = suggestion.empty() ? "" : suggestion + pair.substr(colon);
    }
    if (!fixed.empty()) {
      corrected += (corrected.empty() ? "" : ",") + fixed;
    }
  }
  add(findings, "malloc-conf", Severity::kMedium,
      "MALLOC_CONF names what jemalloc does not know: " + names,
      "jemalloc only prints \"<jemalloc>: Invalid conf pair\" and carries on with its default, so "
      "the setting silently does nothing",
      (all_suggested ? "MALLOC_CONF=" : "drop the unknown pairs: MALLOC_CONF=") + corrected);
}

void judge_openmp(const Facts& facts, const Environment& environment,
                  std::vector<Finding>& findings) {
  if (lookup(environment, "KMP_AFFINITY") == nullptr) {
    return;
  }
  for (const std::string& entry : preload_entries(environment)) {
    std::string name(base_name(entry));
    if (name.starts_with("libomp") || name.starts_with("libiomp5")) {
      return;  // LLVM's and Intel's runtimes read KMP_AFFINITY
    }
  }
  const auto& runtimes = facts.openmp_runtimes;
  if (std::find(runtimes.begin(), runtimes.end(), "libgomp") == runtimes.end()) {
    return;
  }
  bool others = runtimes.size() > 1;
  add(findings, "kmp-affinity", others ? Severity::kLow : Severity::kMedium,
      "KMP_AFFINITY is set, but the OpenMP runtime here is GCC's libgomp" +
          std::string(others ? " (libomp or libiomp5 is installed too; only programs built "
                               "against them read it)"
                             : ""),
      "libgomp ignores KMP_AFFINITY, so threads are not bound as intended and migrate between "
      "CPUs",
      "unset KMP_AFFINITY and set OMP_PROC_BIND=close OMP_PLACES=cores (or GOMP_CPU_AFFINITY), "
      "or memdet run --pin cpu");
}

void judge_threads(const Facts& facts, const Environment& environment,
                   std::vector<Finding>& findings) {
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
    if (lookup(environment, name) != nullptr) {
      return;
    }
  }
  std::string cpus = facts.topology ? " (" + std::to_string(facts.topology->pus) + " here)" : "";
  add(findings, "threads", Severity::kMedium,
      "OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS are unset: thread pools take "
      "one thread per available CPU" +
          cpus,
      "the count decides how BLAS and OpenMP loops split their sums, so it changes the bits "
      "between machines and CPU sets",
      "memdet run --pin threads (sets all three), or export OMP_NUM_THREADS=N");
}

void judge_gpu_variables(const Facts& facts, const Environment& environment,
                         std::vector<Finding>& findings) {
  struct Knob {
    const char* name;
    const char* fix;
  };
  const Knob kDoNothing[] = {
      {"CUDNN_DETERMINISTIC",
       "unset it; ask the framework: torch.backends.cudnn.deterministic = True and "
       "torch.use_deterministic_algorithms(True), or TF_DETERMINISTIC_OPS=1"},
      {"MLNX_NON_PREFERRED", "unset it; it has no effect"},
      {"MPI_PRELOAD", "unset it; pass a preload to the ranks with mpirun -x LD_PRELOAD"},
  };
  for (const Knob& knob : kDoNothing) {
    if (lookup(environment, knob.name) != nullptr) {
      add(findings, std::string("unknown-env:") + knob.name, Severity::kLow,
          std::string(knob.name) + " is set, but no library reads it",
          "it looks like a determinism setting and changes nothing", knob.fix);
    }
  }

  if (lookup(environment, "CUDA_CACHE_DISABLE") != nullptr) {
    add(findings, "cuda-cache", Severity::kLow,
        "CUDA_CACHE_DISABLE is set: it only turns off the cache of JIT-compiled kernels",
        "it does not change reduction order or algorithm choice; kernels are just compiled again "
        "at every start",
        "unset CUDA_CACHE_DISABLE; for repeatable GPU results use memdet run --pin env "
        "(CUBLAS_WORKSPACE_CONFIG=:4096:8) and torch.use_deterministic_algorithms(True)");
  }

  size_t gpus = facts.gpus.size();
  if (facts.nvidia_smi) {
    size_t listed = static_cast<size_t>(
        std::count_if(facts.nvidia_smi->begin(), facts.nvidia_smi->end(),
                      [](const std::string& line) { return line.starts_with("GPU "); }));
    gpus = std::max(gpus, listed);
  }
  bool nccl_set = std::any_of(environment.begin(), environment.end(),
                              [](const auto& entry) { return entry.first.starts_with("NCCL_"); });
  std::string unset;
  for (const char* name : {"NCCL_ALGO", "NCCL_PROTO"}) {
    if (lookup(environment, name) == nullptr) {
      unset += (unset.empty() ? "" : " and ") + std::string(name);
    }
  }
  if (!unset.empty() && (gpus >= 2 || nccl_set)) {
    add(findings, "nccl", gpus >= 2 ? Severity::kMedium : Severity::kLow,
        unset + (unset.find(" and ") != std::string::npos ? " are" : " is") +
            " unset: NCCL picks ring or tree and its protocol per message size and topology",
        "another choice sums the ranks' contributions in another order, so multi-GPU all-reduce "
        "results change between launches and machines",
        "export NCCL_ALGO=Ring NCCL_PROTO=Simple on every rank");
  }
  if (gpus >= 1 && lookup(environment, "CUBLAS_WORKSPACE_CONFIG") == nullptr) {
    add(findings, "cublas", Severity::kMedium,
        "CUBLAS_WORKSPACE_CONFIG is unset on a machine with GPUs",
        "cuBLAS may then split reductions across streams in an order that varies, and "
        "PyTorch's deterministic mode refuses to run without it",
        "memdet run --pin env (sets CUBLAS_WORKSPACE_CONFIG=:4096:8), or export "
        "CUBLAS_WORKSPACE_CONFIG=:4096:8");
  }
}

}  // namespace

std::vector<std::string> unknown_jemalloc_options(const std::string& conf) {
  std::vector<std::string> unknown;
  for (const std::string& pair : conf_pairs(conf)) {
    size_t colon = pair.find(':');
    if (colon == std::string::npos || !known_jemalloc_option(pair.substr(0, colon))) {
      unknown.push_back(pair.substr(0, colon));
    }
  }
  return unknown;
}

std::string closest_jemalloc_option(const std::string& name) {
  std::string best;
  size_t best_distance = 3;  // more than two edits is another word
  for (const char* option : kJemallocOptions) {
    std::string candidate = option;
    if (candidate.starts_with(name) && !name.empty()) {
      return candidate;
    }
    size_t distance = edit_distance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

void judge_environment(const Facts& facts, std::vector<Finding>& findings) {
  judge_blas(facts, findings);
  if (!facts.environment) {
    return;
  }
  const Environment& environment = *facts.environment;
  judge_allocator(facts, environment, findings);
  judge_openmp(facts, environment, findings);
  judge_threads(facts, environment, findings);
  judge_gpu_variables(facts, environment, findings);
}

}  // namespace memdet::doctor
