# cpus=B,A: threads created through pthread_create are pinned round-robin by
# the ordinal rule, seen from inside each thread (sched_getaffinity) and from
# outside (/proc/self/task/*/status); the main thread stays unpinned, a child
# forked by a pinned thread gets the process's mask back, and free_cpus=
# undoes an inherited pin at start.
source "$(dirname "$0")/lib.sh"

read -r -a allowed <<<"$(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' |
  awk -F- '{ if (NF == 2) for (c = $1; c <= $2; c++) printf "%d ", c; else printf "%d ", $1 }')"
(( ${#allowed[@]} >= 2 )) || skip "pinning needs two CPUs; this process may use ${#allowed[@]}"
a=${allowed[0]}
b=${allowed[1]}
full=$(IFS=,; echo "${allowed[*]}")

for lower in $(available_lowers); do
  run_shim "$lower" "cpus=$b,$a" "$WORK/out" "$PROBES/probe_threads" ||
    fail "probe_threads failed under $lower: $(head -3 "$WORK/out.err")"
  need_report

  # Inside: the main thread's 1st, 2nd, 3rd, 4th child get slots 0, 1, 0, 1.
  expected=([1]=$b [2]=$a [3]=$b [4]=$a)
  for index in 1 2 3 4; do
    line=$(awk -v i="$index" '$1 == "thread" && $2 == i' "$WORK/out")
    [[ -n $line ]] || fail "thread $index printed nothing"
    read -r _ _ tid mask <<<"$line"
    [[ $mask == "${expected[$index]}" ]] || fail "thread $index on '$mask', expected ${expected[$index]}"
    # Outside: the same from /proc/self/task/<tid>/status.
    outside=$(awk -v t="$tid" '$1 == "task" && $2 == t { print $3 }' "$WORK/out")
    [[ $outside == "${expected[$index]}" ]] || fail "task $tid shows '$outside' in /proc"
  done
  # "0.1" is in slot 0; its first child goes to slot 1.
  nested=$(awk '$1 == "nested" { print $3 }' "$WORK/out")
  [[ $nested == "$a" ]] || fail "nested thread on '$nested', expected $a"

  main_mask=$(awk '$1 == "main" { print $3 }' "$WORK/out")
  [[ $main_mask == "$full" ]] || fail "main thread pinned to '$main_mask'"
  child=$(awk '$1 == "child" { print $2 }' "$WORK/out")
  [[ $child == "$full" ]] || fail "forked child kept the pin: '$child', expected $full"

  # The log: ordinals and assigned CPUs. "0.3" and "0.4" reuse the slots of
  # "0.1" and "0.2", which are alive then; other collisions depend on timing
  # (the nested thread may still hold slot 1 when "0.2" starts).
  expect_report threads_created 5
  log=$(awk -F'\t' '$1 == "thread" { print $2, $4 }' "$REPORT" | sort)
  want=$(printf '%s\n' "0.1 $b" "0.1.1 $a" "0.2 $a" "0.3 $b" "0.4 $a" | sort)
  [[ $log == "$want" ]] || fail "thread log differs: $(tr '\n' ';' <<<"$log")"
  collisions=$(awk -F'\t' '$1 == "thread" && ($2 == "0.3" || $2 == "0.4") { n += $6 } END { print n }' \
    "$REPORT")
  (( collisions == 2 )) || fail "reused slots not logged as collisions: $(grep ^thread "$REPORT")"
  children=$(ls "$WORK"/report.* | wc -l)
  (( children == 2 )) || fail "expected the forked child's own report, found $children reports"
  echo "ok: pinning under $lower"
done

# free_cpus: started pinned to one CPU (as an exec'd child of a pinned
# thread is), the process gets the whole list back.
run_shim glibc "free_cpus=$full" "$WORK/out" taskset -c "$a" "$PROBES/probe_threads" ||
  fail "probe_threads under taskset failed"
main_mask=$(awk '$1 == "main" { print $3 }' "$WORK/out")
[[ $main_mask == "$full" ]] || fail "free_cpus did not restore the mask: main on '$main_mask'"
echo "ok: free_cpus"
