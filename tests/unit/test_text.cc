#include "core/text.h"

#include <gtest/gtest.h>

namespace memdet {
namespace {

TEST(Printable, EscapesControlCharacters) {
  EXPECT_EQ(printable("key \x1b[31mRED"), "key \\x1b[31mRED");
  EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(printable("tab\tnewline\n"), "tab\\x09newline\\x0a");
}

TEST(Printable, KeepsTextAndUtf8) {
  EXPECT_EQ(printable("weights.npy: bad header"), "weights.npy: bad header");
  EXPECT_EQ(printable("gewicht\xc3\xa4.npy"), "gewicht\xc3\xa4.npy");
}

TEST(ShellQuote, LeavesPlainWordsAlone) {
  EXPECT_EQ(shell_quote("train.py"), "train.py");
  EXPECT_EQ(shell_quote("out/{run}"), "out/{run}");
  EXPECT_EQ(shell_quote("--lr=0.1"), "--lr=0.1");
}

TEST(ShellQuote, QuotesWhatTheShellWouldSplitOrExpand) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("echo 'a b'"), "'echo '\\''a b'\\'''");
  EXPECT_EQ(shell_quote("$HOME;x"), "'$HOME;x'");
}

}  // namespace
}  // namespace memdet

namespace memdet {
namespace {

TEST(Trim, DropsSpacesTabsAndLineBreaksAtBothEnds) {
  EXPECT_EQ(trim("  0-3\n"), "0-3");
  EXPECT_EQ(trim("\t a b \r\n"), "a b");
  EXPECT_EQ(trim(" \n"), "");
}

TEST(BaseName, TakesTheLastComponent) {
  EXPECT_EQ(base_name("/usr/lib/libblas.so.3"), "libblas.so.3");
  EXPECT_EQ(base_name("python3"), "python3");
  EXPECT_EQ(base_name("dir/"), "");
}

}  // namespace
}  // namespace memdet
