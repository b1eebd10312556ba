# hugepages=hugetlb-2M: blocks of 2 MiB and more come from the 2 MiB hugetlb
# pool, over every lower allocator, with and without heap offsets, through
# malloc, calloc, posix_memalign and realloc; with the pool empty they get
# ordinary memory and are counted as fallbacks. Sizing the pool needs root;
# the script puts back the size it found on every way out.
source "$(dirname "$0")/lib.sh"

POOL=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
[[ -f $POOL ]] || skip "$POOL is missing: kernel without a 2 MiB hugetlb pool"
original=$(cat "$POOL")

# An empty pool: every large block falls back, and the probe still works.
if [[ $original == 0 ]]; then
  run_shim glibc "hugepages=hugetlb-2M" "$WORK/empty" "$PROBES/probe_hugetlb" cycle 4 ||
    fail "probe_hugetlb cycle failed with an empty pool: $(cat "$WORK/empty")"
  need_report
  expect_report hugetlb_mapped 0
  (( $(report_value "$REPORT" hugetlb_fallbacks) >= 3 )) || fail "fallbacks not counted"
  echo "ok: an empty pool: blocks fall back to ordinary memory and are counted"
fi

[[ $(id -u) == 0 ]] || skip "needs root to size $POOL"
trap 'echo "$original" >"$POOL"; rm -rf "$WORK"' EXIT
echo 32 >"$POOL" 2>/dev/null || skip "$POOL is not writable here"
[[ $(cat "$POOL") -ge 24 ]] || skip "the kernel granted only $(cat "$POOL") of 32 huge pages"

for lower in $(available_lowers); do
  for extra in "" ";heap=16;heap_random=1" ";uninit=7"; do
    what="$lower hugepages=hugetlb-2M$extra"
    run_shim "$lower" "hugepages=hugetlb-2M$extra" "$WORK/keep" "$PROBES/probe_hugetlb" keep 8 ||
      fail "probe_hugetlb keep failed under $what: $(cat "$WORK/keep")"
    need_report
    expect_report hugepages hugetlb-2M
    expect_report hugetlb_page_kB 2048
    expect_report hugetlb_mapped 1
    expect_report hugetlb_fallbacks 0
    (( $(report_value "$REPORT" Private_Hugetlb) >= 8192 )) || fail "$what: Private_Hugetlb"
    # Exactly 8 MiB takes four pages without a header, at most five with one.
    (( $(report_value "$REPORT" HugetlbPages) <= 10240 )) || fail "$what: too many pages"

    run_shim "$lower" "hugepages=hugetlb-2M$extra" "$WORK/cycle" "$PROBES/probe_hugetlb" cycle 4 ||
      fail "probe_hugetlb cycle failed under $what: $(cat "$WORK/cycle")"
    need_report
    (( $(report_value "$REPORT" hugetlb_mapped) >= 4 )) || fail "$what: too few pool blocks"
    (( $(report_value "$REPORT" Hugetlb_peak) > 0 )) || fail "$what: no hugetlb use before frees"
    expect_report Private_Hugetlb 0
  done
  echo "ok: hugetlb-2M under $lower"
done
