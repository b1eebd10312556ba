// memdet doctor [--root DIR] [--json] [--mlock-size SIZE]
//
// Audits this machine and memdet's own environment for what makes runs
// differ, and prints one line per finding with its severity and fix.
// --root DIR replays a saved machine instead (see doctor/root.h for its
// layout): every /proc, /sys and /etc path is read under DIR, and the live
// probes are replaced by what DIR/memdet/probes recorded. Exits 0 when it
// ran, whatever it found; 2 for a bad option or --root.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "doctor/report.h"

namespace memdet::cli {
namespace {

struct DoctorOptions {
  std::string root;
  bool root_given = false;  // "--root ''" is a bad root, not the live machine
  bool json = false;
  std::string mlock_size = "1G";
};

// "1G", "512M", "64K" or plain bytes; binary units.
std::optional<uint64_t> parse_size(const std::string& text) {
  if (text.empty() || text[0] < '0' || text[0] > '9') {
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  std::string unit = end;
  int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (errno != 0 || shift < 0 || value > (~0ULL >> shift)) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(value) << shift;
}

int doctor(const DoctorOptions& options) {
  doctor::Options judging;
  auto size = parse_size(options.mlock_size);
  if (!size) {
    throw usage_error("--mlock-size " + options.mlock_size +
                      ": not a size (bytes, or a number with K, M or G)");
  }
  judging.mlock_bytes = *size;

  doctor::MachineRoot root;
  if (options.root_given) {
    auto opened = doctor::MachineRoot::open(options.root);
    if (!opened) {
      throw usage_error(opened.error().message);
    }
    root = *opened;
  }

  doctor::Report report = doctor::examine(root, judging);
  std::string out = options.json ? doctor::render_json_text(report) : doctor::render_text(report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

Registered add_doctor_command(CLI::App& parent) {
  auto options = std::make_shared<DoctorOptions>();
  CLI::App* app = parent.add_subcommand(
      "doctor",
      "Audit this machine and the environment for what makes runs differ: one line per finding, "
      "with its severity and the flag or command that fixes it");
  CLI::Option* root =
      app->add_option("--root", options->root,
                      "read a saved machine in DIR (its proc/, sys/, etc/, proc/self/environ and "
                      "memdet/probes) instead of this one")
          ->type_name("DIR");
  app->add_flag("--json", options->json, "print one JSON document: the facts and the findings");
  app->add_option("--mlock-size", options->mlock_size,
                  "the mlock the RLIMIT_MEMLOCK finding is judged against (default 1G)")
      ->type_name("SIZE");
  return {app,
          [options, root] {
            options->root_given = root->count() > 0;
            return doctor(*options);
          },
          2};
}

}  // namespace memdet::cli
