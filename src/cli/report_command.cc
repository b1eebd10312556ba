// memdet report DIR [--json] [--html FILE]
//
// Shows a finished campaign again from what it stored: DIR/isolate.json or
// DIR/check.json, and the runs' text artifacts for the loss curves. Exit
// 0 when it was shown; 2 for a bad option, or a directory without a
// readable campaign file of a known schema.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "report/campaign_terminal.h"
#include "report/campaign_view.h"
#include "report/html.h"

namespace memdet::cli {
namespace {

struct ReportOptions {
  std::string dir;
  bool json = false;
  std::string html_path;
};

int report_campaign(const ReportOptions& options) {
  auto file = report::read_campaign(options.dir);
  if (!file) {
    throw usage_error(file.error().message);
  }
  if (!options.html_path.empty()) {
    require_report_output("--html", options.html_path, options.dir);
  }
  if (options.json) {
    // As stored, re-indented: a reader gets the campaign's own document.
    std::string text = file->document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (options.html_path.empty()) {
      return 0;
    }
  }

  report::CampaignView view = report::campaign_view(file->document, file->path);
  if (!options.html_path.empty()) {
    Status written = report::write_html(view, options.html_path);
    if (!written) {
      throw usage_error(written.error().message);
    }
  }
  if (!options.json) {
    std::string text = report::render_campaign_terminal(view);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

Registered add_report_command(CLI::App& parent) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* app = parent.add_subcommand(
      "report",
      "Show a finished check or isolate campaign again from its directory: the verdict, the "
      "factor or run table and the differences; --html writes a self-contained page with the "
      "runs' loss curves");
  app->add_option("dir", options->dir,
                  "the campaign directory (.memdet/check-TIME, .memdet/isolate-TIME, or --out)")
      ->required();
  app->add_flag("--json", options->json,
                "print the stored isolate.json or check.json instead of the summary");
  app->add_option("--html", options->html_path,
                  "also write the report as one HTML page to FILE: no scripts and nothing "
                  "fetched, so it opens offline")
      ->type_name("FILE")
      ->check(non_empty_file_name());
  return {app, [options] { return report_campaign(*options); }, 2};
}

}  // namespace memdet::cli
