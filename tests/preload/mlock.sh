# mlock=1: mlockall at start; the report shows the result and VmLck > 0.
source "$(dirname "$0")/lib.sh"

[[ $(id -u) == 0 ]] || [[ $(ulimit -l) == unlimited ]] ||
  skip "mlockall needs root or 'ulimit -l unlimited'"

for lower in $(available_lowers); do
  run_shim "$lower" "mlock=1" "$WORK/out" "$PROBES/probe_heap" offsets ||
    fail "probe failed under $lower mlock=1"
  need_report
  expect_report mlock 0
  locked=$(report_value "$REPORT" VmLck)
  (( locked > 0 )) || fail "VmLck is $locked under $lower"
  echo "ok: mlock under $lower (VmLck $locked kB)"
done
