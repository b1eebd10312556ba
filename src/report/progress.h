// The line a long campaign keeps updated at the foot of a terminal: phase,
// run i of n, time spent and time left. The per-run lines scroll above it;
// in a log (stderr not a terminal) there is no such line, only them.
#pragma once

#include <cstdio>
#include <string>

namespace memdet::report {

class StatusLine {
 public:
  // Shows nothing unless `out` is a terminal.
  explicit StatusLine(std::FILE* out);
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;
  ~StatusLine();

  // Erases the line, so other output starts on a clean row.
  void clear();
  // Replaces the line with `text`, cut to the terminal's width.
  void show(const std::string& text);

 private:
  std::FILE* out_;
  bool terminal_ = false;
  bool shown_ = false;
};

// "isolate: heap=32 · run 12 of ~45 · 0:42, about 1:10 left". `ahead`: runs
// still to come; `estimate`: that number is a forecast, not a count. The
// time left is the mean time per run so far times the runs ahead.
std::string progress_text(const std::string& command, const std::string& phase, int made, int ahead,
                          bool estimate, double elapsed_seconds);

// "0:42", "12:05", "1:02:03".
std::string clock_text(double seconds);

}  // namespace memdet::report
