// The status line's text: run i of n, time spent and left.
#include "report/progress.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace memdet::report {
namespace {

TEST(Progress, ClockTextShowsMinutesAndHours) {
  EXPECT_EQ(clock_text(0), "0:00");
  EXPECT_EQ(clock_text(42.4), "0:42");
  EXPECT_EQ(clock_text(725), "12:05");
  EXPECT_EQ(clock_text(3723), "1:02:03");
  EXPECT_EQ(clock_text(-3), "0:00");
}

TEST(Progress, TimeLeftIsTheMeanRunTimesTheRunsAhead) {
  // 3 runs in 30 s, 7 ahead: about 70 s left.
  EXPECT_EQ(progress_text("isolate", "heap=32", 3, 7, true, 30),
            "isolate: heap=32 | run 3 of ~10 | 0:30, about 1:10 left");
  // A count, not a forecast: no tilde, no "about".
  EXPECT_EQ(progress_text("check", "", 4, 1, false, 8), "check: run 4 of 5 | 0:08, 0:02 left");
  // Nothing ahead: no time left shown.
  EXPECT_EQ(progress_text("check", "", 5, 0, false, 10), "check: run 5 of 5 | 0:10");
}

TEST(Progress, NoStatusLineOutsideATerminal) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    StatusLine line(file);
    line.show("isolate: run 1 of ~3");
    line.clear();
  }
  EXPECT_EQ(std::ftell(file), 0) << "a status line was written to a file";
  std::fclose(file);
}

}  // namespace
}  // namespace memdet::report
