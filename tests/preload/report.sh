# The report parses: the header, known keys only, numbers where numbers go.
# No report and no change when MEMDET_PRELOAD is absent or blank; an unknown
# key leaves the library passive with one line on stderr.
source "$(dirname "$0")/lib.sh"

known="memdet-preload active lower_allocator lower_consistent jemalloc_opt heap_class heap_random
allocations mod64 aligned_requests uninit uninit_probe hugepages huge_aligned madvise_suppressed
mlock VmLck VmHWM HugetlbPages AnonHugePages AnonHugePages_peak numa_pages threads_created thread
Private_Hugetlb Shared_Hugetlb Hugetlb_peak hugetlb_page_kB hugetlb_mapped hugetlb_fallbacks
unpinned_task threads_set_calls threads_set_by threads_set threads_set_low threads_set_high"

check_report() {
  awk -F'\t' -v known="$known" '
    BEGIN { split(known, list, /[ \n]+/); for (i in list) ok[list[i]] = 1 }
    NR == 1 && ($1 != "memdet-preload" || $2 != "1") { print "bad header: " $0; bad = 1 }
    !($1 in ok) { print "unknown key: " $1; bad = 1 }
    NF < 2 { print "no value: " $0; bad = 1 }
    $1 ~ /^(allocations|aligned_requests|huge_aligned|madvise_suppressed|threads_created|uninit)$/ &&
      $2 !~ /^[0-9]+$/ { print "not a number: " $0; bad = 1 }
    $1 ~ /^(VmLck|VmHWM|HugetlbPages|AnonHugePages|Private_Hugetlb|Shared_Hugetlb)$/ &&
      $2 !~ /^([0-9]+|-)$/ {
      print "not kB: " $0; bad = 1 }
    $1 == "mod64" && $2 !~ /^[0-9]+,[0-9]+,[0-9]+,[0-9]+,[0-9]+$/ { print "bad mod64: " $0; bad = 1 }
    $1 == "numa_pages" && $2 !~ /^(-|N[0-9]+=[0-9]+(,N[0-9]+=[0-9]+)*)$/ {
      print "bad numa_pages: " $0; bad = 1 }
    $1 == "thread" && (NF != 6 || $3 !~ /^[0-9]+$/ || $4 !~ /^([0-9]+|-)$/ ||
      $5 !~ /^([0-9]+|-)$/ || $6 !~ /^[01]$/) { print "bad thread: " $0; bad = 1 }
    $1 == "unpinned_task" && (NF != 3 || $2 !~ /^[0-9]+$/) { print "bad task: " $0; bad = 1 }
    END { exit bad }' "$1"
}

# Everything on at once, padded with spaces as memdet pads it.
config="seed=00ff;heap=16;heap_random=1;uninit=7;hugepages=small;mlock=1;cpus=0;trace_threads=1"
padded=$(printf '%-600s' "$config")
run_shim glibc "$padded" "$WORK/out" "$PROBES/probe_threads" || fail "probe_threads failed"
need_report
problems=$(check_report "$REPORT") || fail "report does not parse: $problems"
for key in memdet-preload active lower_allocator lower_consistent heap_class mod64 VmHWM \
  AnonHugePages numa_pages threads_created mlock uninit_probe hugepages; do
  [[ -n $(report_value "$REPORT" "$key") ]] || fail "report lacks $key"
done
expect_report active 1
expect_report lower_consistent 1
expect_report threads_created 5
[[ $(report_value "$REPORT" lower_allocator) == */libc.so.6 ]] || fail "lower_allocator not libc"

if [[ -r $JEMALLOC ]]; then
  run_shim "$JEMALLOC" "heap=0" "$WORK/out" "$PROBES/probe_heap" offsets || fail "jemalloc run failed"
  check_report "$REPORT" >/dev/null || fail "jemalloc report does not parse"
  expect_report lower_allocator "$JEMALLOC"
  [[ $(report_value "$REPORT" jemalloc_opt) == *narenas=* ]] || fail "no jemalloc_opt"
fi
echo "ok: report parses"

# Passive: absent, empty or blank writes nothing and prints nothing.
for value in unset "" "      "; do
  rm -f "$WORK"/report.*
  if [[ $value == unset ]]; then
    timeout 60 env -u MEMDET_PRELOAD LD_PRELOAD="$LIB" "$PROBES/probe_heap" offsets \
      >"$WORK/out" 2>"$WORK/err" || fail "passive run failed"
  else
    timeout 60 env LD_PRELOAD="$LIB" MEMDET_PRELOAD="$value" "$PROBES/probe_heap" offsets \
      >"$WORK/out" 2>"$WORK/err" || fail "blank run failed"
  fi
  [[ ! -s $WORK/err ]] || fail "passive run wrote to stderr: $(cat "$WORK/err")"
done
echo "ok: passive"

# An unknown key: one line, passive, no report, the program unharmed.
run_shim glibc "heap=16;bogus=1" "$WORK/out" "$PROBES/probe_heap" offsets ||
  fail "run with an unknown key failed"
[[ $(cat "$WORK/out.err") == "memdet preload: unknown key bogus" ]] ||
  fail "unknown key message: '$(cat "$WORK/out.err")'"
[[ ! -e $REPORT ]] || fail "a passive run wrote a report"
echo "ok: unknown key"
