# hugepages=huge: a touched 64 MiB malloc is backed by transparent huge
# pages. hugepages=small: none, even when the program advises MADV_HUGEPAGE
# itself (as numpy does).
source "$(dirname "$0")/lib.sh"

mode_file=/sys/kernel/mm/transparent_hugepage/enabled
[[ -r $mode_file ]] || skip "no $mode_file: kernel without transparent huge pages"
mode=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$mode_file")
[[ $mode == never ]] && skip "THP mode is 'never'; 'echo madvise > $mode_file' would allow the test"

# The kernel must be able to give huge pages at all: an mmap the probe
# aligns and advises itself.
run_plain glibc "$WORK/control" "$PROBES/probe_huge" control || fail "probe_huge control failed"
control=$(awk '{ print $2 }' "$WORK/control")
(( control > 0 )) || skip "the kernel gave no huge pages to an explicit madvise (memory fragmented?)"

for lower in $(available_lowers); do
  for extra in "" ";heap=16;heap_random=1"; do
    what="$lower hugepages=huge$extra"
    run_shim "$lower" "hugepages=huge$extra" "$WORK/out" "$PROBES/probe_huge" malloc ||
      fail "probe_huge failed under $what"
    need_report
    expect_report hugepages huge
    (( $(report_value "$REPORT" huge_aligned) >= 1 )) || fail "$what: huge_aligned is 0"
    anon=$(report_value "$REPORT" AnonHugePages)
    (( anon > 0 )) || fail "$what: AnonHugePages is $anon"
  done

  # Under THP mode madvise the probe's own advice would give huge pages;
  # small must suppress it.
  run_plain "$lower" "$WORK/plain" "$PROBES/probe_huge" advise || fail "probe_huge advise failed"
  run_shim "$lower" "hugepages=small" "$WORK/out" "$PROBES/probe_huge" advise ||
    fail "probe_huge advise failed under $lower hugepages=small"
  need_report
  expect_report AnonHugePages 0
  (( $(report_value "$REPORT" madvise_suppressed) >= 1 )) || fail "madvise not suppressed"
  echo "ok: hugepages under $lower (without the library, advised: $(awk '{print $2}' "$WORK/plain") kB)"
done
