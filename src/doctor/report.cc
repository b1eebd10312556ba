#include "doctor/report.h"

namespace memdet::doctor {

Report examine(const MachineRoot& root, const Options& options) {
  Report report;
  report.facts = read_facts(root);
  report.findings = judge(report.facts, options);
  return report;
}

std::vector<std::pair<std::string, std::string>> relevant_variables(const Facts& facts) {
  static const char* const kNames[] = {
      "LD_PRELOAD",           "MALLOC_CONF",        "GLIBC_TUNABLES",
      "KMP_AFFINITY",         "GOMP_CPU_AFFINITY",  "PYTHONHASHSEED",
      "TF_DETERMINISTIC_OPS", "MLNX_NON_PREFERRED", "MPI_PRELOAD"};
  static const char* const kPrefixes[] = {"OMP_",  "OPENBLAS_", "MKL_",  "NCCL_",
                                          "CUDA_", "CUBLAS_",   "CUDNN_"};
  std::vector<std::pair<std::string, std::string>> variables;
  if (!facts.environment) {
    return variables;
  }
  for (const auto& [name, value] : *facts.environment) {
    bool relevant = false;
    for (const char* known : kNames) {
      relevant = relevant || name == known;
    }
    for (const char* prefix : kPrefixes) {
      relevant = relevant || name.starts_with(prefix);
    }
    if (relevant) {
      variables.emplace_back(name, value);
    }
  }
  return variables;
}

}  // namespace memdet::doctor
