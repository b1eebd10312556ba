// What a run executed: the program, and the script an interpreter ran, each
// with its digest, so two records can tell "same code" from "same command".
#pragma once

#include <string>
#include <vector>

namespace memdet::host {

struct ProgramRecord {
  std::string executable;   // resolved path
  std::string digest;       // XXH3-128 of the executable file
  std::string interpreter;  // "python3.11", "bash", ... when it runs a script
  std::string script;       // the script's path as given; empty if none
  std::string script_digest;
  std::string note;  // "-c code", "-m module", "no script found", ...
};

// Follows /usr/bin/env and interpreter options to the script the command
// runs. `executable` is argv[0] resolved; `argv` the arguments as given.
ProgramRecord identify_program(const std::string& executable, const std::vector<std::string>& argv);

// The variables of `env` that steer numerics: thread counts, BLAS and
// OpenMP knobs, CUDA, cuDNN and NCCL settings, hash seeds, allocator and
// loader settings.
std::vector<std::string> numeric_environment(const std::vector<std::string>& env);

}  // namespace memdet::host
