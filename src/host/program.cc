#include "host/program.h"

#include <sys/stat.h>

#include "compare/digest.h"
#include "core/sys.h"
#include "core/text.h"
#include "launch/launcher.h"

namespace memdet::host {
namespace {

bool is_regular_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

enum class Interpreter { kNone, kPython, kShell, kOther };

Interpreter interpreter_kind(std::string_view name) {
  if (name.starts_with("python")) {
    return Interpreter::kPython;
  }
  for (const char* shell : {"sh", "bash", "dash", "zsh", "ksh"}) {
    if (name == shell) {
      return Interpreter::kShell;
    }
  }
  for (const char* other : {"perl", "ruby", "node", "Rscript", "julia", "lua"}) {
    if (name.starts_with(other)) {
      return Interpreter::kOther;
    }
  }
  return Interpreter::kNone;
}

// Python options that take the next word as their value.
bool python_option_takes_value(const std::string& option) {
  return option == "-W" || option == "-X" || option == "--check-hash-based-pycs";
}

void find_script(ProgramRecord& record, Interpreter kind, const std::vector<std::string>& args,
                 size_t first) {
  for (size_t i = first; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (kind == Interpreter::kPython && (arg == "-c" || arg == "-m")) {
      record.note = arg == "-c"
                        ? "code given with -c"
                        : "module " + (i + 1 < args.size() ? args[i + 1] : "") + " run with -m";
      return;
    }
    if (kind == Interpreter::kShell && arg == "-c") {
      record.note = "commands given with -c";
      return;
    }
    if (arg == "--") {
      continue;
    }
    if (arg.starts_with("-") && arg != "-") {
      if (kind == Interpreter::kPython && python_option_takes_value(arg)) {
        ++i;
      }
      continue;
    }
    record.script = arg;
    if (is_regular_file(arg)) {
      auto digest = compare::digest_file(arg);
      record.script_digest = digest ? *digest : "";
    } else {
      record.note = "script " + arg + " not found at start";
    }
    return;
  }
  record.note = "no script: reads its program from stdin";
}

}  // namespace

ProgramRecord identify_program(const std::string& executable,
                               const std::vector<std::string>& argv) {
  ProgramRecord record;
  record.executable = executable;
  auto digest = compare::digest_file(executable);
  record.digest = digest ? *digest : "";

  std::string program = executable;
  size_t first = 1;

  // A script run directly: the kernel runs the interpreter on its "#!" line.
  if (auto start = sys::read_prefix(executable, 256); start && start->rfind("#!", 0) == 0) {
    std::string line = start->substr(2, start->find('\n') - 2);
    size_t begin = line.find_first_not_of(" \t");
    size_t end = line.find_first_of(" \t", begin);
    std::string interpreter = begin == std::string::npos ? "" : line.substr(begin, end - begin);
    record.interpreter = interpreter;
    record.script = executable;
    record.script_digest = record.digest;
    if (auto inner = compare::digest_file(interpreter)) {
      record.executable = interpreter;
      record.digest = *inner;
    }
    return record;
  }
  // env [-i] [-u NAME] [NAME=VALUE]... PROGRAM ARGS: what runs is PROGRAM.
  if (base_name(program) == "env") {
    size_t i = 1;
    std::string path_given;
    bool cleared = false;
    while (i < argv.size() &&
           (argv[i].starts_with("-") || argv[i].find('=') != std::string::npos)) {
      cleared = cleared || argv[i] == "-i" || argv[i] == "--ignore-environment" || argv[i] == "-";
      if (argv[i].starts_with("PATH=")) {
        path_given = argv[i].substr(5);
      }
      i += (argv[i] == "-u" || argv[i] == "-C" || argv[i] == "-S") ? 2 : 1;
    }
    if (i >= argv.size()) {
      return record;
    }
    if (cleared) {
      record.note = "env cleared the environment: the recorded variables are what env received";
    }
    // env searches the PATH it was given, or the cleared environment's
    // default, not memdet's.
    std::string resolved;
    std::string search = !path_given.empty() ? path_given
                         : cleared           ? "/usr/local/bin:/usr/bin:/bin"
                                             : "";
    if (!launch::resolve_executable(argv[i], resolved, search)) {
      program = resolved;
      record.interpreter = "env " + argv[i];
      auto inner = compare::digest_file(resolved);
      if (inner) {
        record.digest = *inner;
        record.executable = resolved;
      }
    }
    first = i + 1;
  }

  Interpreter kind = interpreter_kind(base_name(program));
  if (kind == Interpreter::kNone) {
    return record;
  }
  record.interpreter = std::string(base_name(program));
  find_script(record, kind, argv, first);
  return record;
}

std::vector<std::string> numeric_environment(const std::vector<std::string>& env) {
  static const char* const kPrefixes[] = {"OMP_",
                                          "KMP_",
                                          "MKL_",
                                          "OPENBLAS_",
                                          "GOMP_",
                                          "BLIS_",
                                          "CUDA_",
                                          "CUBLAS_",
                                          "CUDNN_",
                                          "NCCL_",
                                          "TF_DETERMINISTIC",
                                          "TF_CUDNN",
                                          "TF_ENABLE_ONEDNN",
                                          "TF_NUM_",
                                          "TORCH_",
                                          "PYTORCH_",
                                          "XLA_",
                                          "MALLOC_",
                                          "TCMALLOC_",
                                          "GLIBC_TUNABLES=",
                                          "PYTHONHASHSEED=",
                                          "LD_PRELOAD=",
                                          "LD_LIBRARY_PATH=",
                                          "LD_AUDIT="};
  std::vector<std::string> steering;
  for (const std::string& entry : env) {
    for (const char* prefix : kPrefixes) {
      if (entry.starts_with(prefix)) {
        steering.push_back(entry);
        break;
      }
    }
  }
  return steering;
}

}  // namespace memdet::host
