# The report's allocation count is exact across threads: counted per thread
# and summed at exit, with joined and detached threads that have exited and
# the main thread. probe_heap count N makes 7 * N mallocs beyond a fixed
# number, so two runs differ by exactly 7 * (N2 - N1); mod64 sums to the
# count.
source "$(dirname "$0")/lib.sh"

for lower in $(available_lowers); do
  for config in "heap=32" "heap=16;heap_random=1;seed=3" "uninit=1"; do
    declare -A seen=()
    for n in 1000 21000; do
      run_shim "$lower" "$config" "$WORK/out" "$PROBES/probe_heap" count "$n" ||
        fail "probe_heap count failed under $lower [$config]: $(head -3 "$WORK/out.err")"
      need_report
      allocations=$(report_value "$REPORT" allocations)
      sum=$(report_value "$REPORT" mod64 | tr ',' '+')
      (( $((sum)) == allocations )) ||
        fail "mod64 sums to $((sum)), allocations is $allocations ($lower [$config])"
      seen[$n]=$allocations
    done
    (( seen[21000] - seen[1000] == 7 * 20000 )) ||
      fail "allocations ${seen[1000]} and ${seen[21000]}: not 7 * 20000 apart ($lower [$config])"
  done
  echo "ok: counts under $lower"
done
