# heap=N: every malloc, calloc, realloc and new, of many sizes, returns a
# pointer p with p % 64 == N, over each lower allocator; aligned requests of
# 64 and more keep their alignment.
source "$(dirname "$0")/lib.sh"

for lower in $(available_lowers); do
  for class in 0 16 32 48; do
    run_shim "$lower" "heap=$class" "$WORK/out" "$PROBES/probe_heap" classes ||
      fail "probe_heap classes failed under $lower heap=$class: $(head -3 "$WORK/out.err")"
    need_report
    grep -q '^aligned_ok$' "$WORK/out" || fail "over-aligned requests misaligned ($lower)"
    wrong=$(awk -v class="$class" 'NF == 3 && $3 != class' "$WORK/out")
    [[ -z $wrong ]] || fail "heap=$class under $lower, pointers off class: $(echo "$wrong" | head -3)"
    lines=$(grep -c . "$WORK/out")
    (( lines > 90 )) || fail "probe printed only $lines lines"

    # The report's histogram agrees: only class N, and 0 for the aligned
    # requests that cannot move.
    expect_report heap_class "$class"
    IFS=, read -r c0 c16 c32 c48 cother <<<"$(report_value "$REPORT" mod64)"
    declare -A bins=([0]=$c0 [16]=$c16 [32]=$c32 [48]=$c48)
    (( cother == 0 )) || fail "mod64 has $cother pointers off the 16-byte grid"
    (( bins[$class] >= 90 )) || fail "mod64 has only ${bins[$class]} in class $class"
    for other in 16 32 48; do
      [[ $other == "$class" ]] || (( bins[$other] == 0 )) ||
        fail "heap=$class: mod64 bin $other holds ${bins[$other]}"
    done
    (( $(report_value "$REPORT" aligned_requests) >= 3 )) || fail "aligned_requests not counted"
  done
  echo "ok: heap classes under $lower"
done
