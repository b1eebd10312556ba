// The machine `memdet doctor` audits: the live one, or a saved copy of it.
//
// A saved machine is a folder laid out like "/": the /proc, /sys and /etc
// files doctor reads, under the same names. Two files in it stand in for
// what only a live process can see:
//   proc/self/environ  the environment to audit, NUL-separated, as the
//                      kernel shows a process's own;
//   memdet/probes      "name: result" lines with what the live probes
//                      (personality, perf_event_open, nvidia-smi) found.
// tests/data/doctor/make_roots.py writes the saved machines the tests replay.
//
// A saved machine is read as data, not trusted as a machine: a link in it
// that points out of it, a FIFO, a device or a file larger than any /proc
// file reads as not visible, so no folder can make doctor block, read this
// machine's files in its place or run out of memory.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace memdet::doctor {

class MachineRoot {
 public:
  // The live machine.
  MachineRoot() = default;

  // Checks that `dir` is a directory; "/" is the live machine. Fails with
  // one line naming the folder and the problem.
  static Result<MachineRoot> open(const std::string& dir);

  bool live() const { return prefix_.empty(); }
  // "/" for the live machine, else the folder as given.
  std::string name() const { return live() ? "/" : prefix_; }

  // Where the machine's `absolute` path lies on this one.
  std::string path(std::string_view absolute) const;

  // The most doctor reads of one file. Its files are a few KiB; the
  // largest, a saved proc/self/environ, stays far below this unless the
  // environment is one no program should be run in.
  static constexpr size_t kMaxFileBytes = 1 << 20;

  // The file's contents without surrounding white space; nothing when it
  // cannot be read.
  std::optional<std::string> read(std::string_view absolute) const;
  // The file's contents exactly as stored. Nothing unless it is a regular
  // file of at most kMaxFileBytes (the live /proc and /sys files, which
  // report size 0, are read up to that), opened without blocking.
  std::optional<std::string> read_raw(std::string_view absolute) const;
  // A decimal integer file such as /proc/sys/kernel/randomize_va_space.
  std::optional<long long> read_number(std::string_view absolute) const;

  bool exists(std::string_view absolute) const;
  // The entries of a folder, sorted, without "." and "..".
  std::vector<std::string> list(std::string_view absolute) const;

  // Follows symbolic links the way the machine would, in every component:
  // an absolute target is taken inside the root, and ".." stops at it.
  // Returns the machine's path with no link left in it (which need not
  // exist), or `absolute` itself when no part of it is a link.
  std::string resolve(std::string_view absolute) const;

  // For a reader that opens files under path(absolute) itself (hwloc with
  // HWLOC_FSROOT), following links as the kernel does: true when all it
  // can reach there is folders and regular files of at most kMaxFileBytes
  // inside the root, or when the folder is missing. Always true live.
  bool holds_only_plain_files(std::string_view absolute) const;

 private:
  explicit MachineRoot(std::string prefix) : prefix_(std::move(prefix)) {}

  std::string prefix_;  // empty for the live machine
};

}  // namespace memdet::doctor
