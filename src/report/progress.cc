#include "report/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>

namespace memdet::report {
namespace {

// Columns the terminal has; 80 when it does not say.
size_t terminal_width(std::FILE* out) {
  winsize size{};
  if (ioctl(fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  return 80;
}

}  // namespace

StatusLine::StatusLine(std::FILE* out) : out_(out), terminal_(isatty(fileno(out)) == 1) {}

StatusLine::~StatusLine() { clear(); }

void StatusLine::clear() {
  if (shown_) {
    // Carriage return, then erase to the end of the line (ECMA-48 EL).
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
    shown_ = false;
  }
}

void StatusLine::show(const std::string& text) {
  if (!terminal_) {
    return;
  }
  // One column short of the width: a full row makes some terminals wrap.
  const size_t width = terminal_width(out_) - 1;
  std::string line = text.size() > width ? text.substr(0, width) : text;
  std::fprintf(out_, "\r\033[K%s", line.c_str());
  std::fflush(out_);
  shown_ = true;
}

std::string clock_text(double seconds) {
  const long total = seconds > 0 ? std::lround(seconds) : 0;
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  }
  return text;
}

std::string progress_text(const std::string& command, const std::string& phase, int made, int ahead,
                          bool estimate, double elapsed_seconds) {
  std::string text = command + ": " + (phase.empty() ? "" : phase + " | ") + "run " +
                     std::to_string(made) + " of " + (estimate ? "~" : "") +
                     std::to_string(made + ahead) + " | " + clock_text(elapsed_seconds);
  if (made > 0 && ahead > 0) {
    text += ", " + std::string(estimate ? "about " : "") +
            clock_text(elapsed_seconds / made * ahead) + " left";
  }
  return text;
}

}  // namespace memdet::report
