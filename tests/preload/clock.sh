# clock=: every wall-clock function reads the virtual clock (pinned in
# counter mode, at real speed from a fixed epoch in shift mode), other
# clocks stay real, and programs that wait on wall-clock deadlines or poll
# the clock while sleeping finish in about their real time.
source "$(dirname "$0")/lib.sh"

PROBE=$PROBES/probe_clock
[[ -x $PROBE ]] || fail "no probe at $PROBE"

EPOCH=1000000000
OTHER=1500000000
COUNTER="clock=counter;clock_epoch=$EPOCH"
NANOS=1000000000

# run_clock CONFIG OUTPUT ARGS...: probe_clock under the library, failing the
# test when it fails.
run_clock() {
  local config=$1 output=$2
  shift 2
  run_shim glibc "$config" "$output" "$PROBE" "$@" ||
    fail "probe_clock $* under '$config' failed: $(head -3 "$output.err")"
}

for function in clock_gettime clock_gettime_coarse clock_gettime_tai gettimeofday time \
  timespec_get ftime system_clock; do
  run_clock "$COUNTER" "$WORK/a" read "$function" 3
  run_clock "$COUNTER" "$WORK/b" read "$function" 3
  cmp -s "$WORK/a" "$WORK/b" || fail "$function: two pinned runs differ: $(paste -sd' ' "$WORK/a") / $(paste -sd' ' "$WORK/b")"
  first=$(head -1 "$WORK/a")
  ((first / NANOS == EPOCH)) || fail "$function: pinned first read $first is not at the epoch $EPOCH"
  expect_report clock_reads 3

  run_clock "clock=counter;clock_epoch=$OTHER" "$WORK/c" read "$function" 3
  cmp -s "$WORK/a" "$WORK/c" && fail "$function: epochs $EPOCH and $OTHER read the same"
  (($(head -1 "$WORK/c") / NANOS == OTHER)) || fail "$function: epoch $OTHER not read"

  run_clock passive "$WORK/d" read "$function" 1
  real=$(($(head -1 "$WORK/d") / NANOS))
  now=$(date +%s)
  ((real > now - 60 && real <= now + 60)) || fail "$function: passive read $real, date says $now"
  echo "ok: $function pinned ($(paste -sd' ' "$WORK/a")), epoch moves it, passive real"
done

# Counter mode: 1 µs per read, so time() repeats the epoch's second.
run_clock "$COUNTER" "$WORK/out" read clock_gettime 4
mapfile -t reads <"$WORK/out"
for i in 1 2 3; do
  ((reads[i] - reads[i - 1] == 1000)) || fail "counter reads do not step by 1 µs: ${reads[*]}"
done
echo "ok: counter mode steps 1 µs per read"

# The report names each read, its thread and the probe as the caller.
grep -P '^clock_read\t1\tclock_gettime\t0\tprobe_clock\+0x' "$REPORT" >/dev/null ||
  fail "no clock_read line for the first read: $(grep clock_read "$REPORT" | head -2)"
expect_report clock counter
[[ $(awk -F'\t' '$1 == "clock" { print $3 }' "$REPORT") == "$EPOCH" ]] ||
  fail "clock line does not carry the epoch: $(grep -P '^clock\t' "$REPORT")"
echo "ok: report names the reads"

# Shift mode: second-resolution reads repeat between runs, and the clock
# runs at real speed.
run_clock "clock=shift;clock_epoch=$EPOCH" "$WORK/a" read time 1
run_clock "clock=shift;clock_epoch=$EPOCH" "$WORK/b" read time 1
cmp -s "$WORK/a" "$WORK/b" || fail "shift: time() differs between runs: $(cat "$WORK/a") / $(cat "$WORK/b")"
(($(cat "$WORK/a") / NANOS == EPOCH)) || fail "shift: time() $(cat "$WORK/a") is not near the epoch"
expect_report clock shift
run_clock "clock=shift;clock_epoch=$EPOCH" "$WORK/out" pace
moved=$(awk '$1 == "moved_ms" { print $2 }' "$WORK/out")
((moved >= 190 && moved < 5000)) || fail "shift: 0.2 s of sleep moved the clock by $moved ms"
echo "ok: shift mode repeats seconds, runs at real speed ($moved ms per 200 ms)"

# Counter mode counts sleeping time.
run_clock "$COUNTER" "$WORK/out" pace
moved=$(awk '$1 == "moved_ms" { print $2 }' "$WORK/out")
((moved >= 190 && moved < 5000)) || fail "counter: 0.2 s of nanosleep moved the clock by $moved ms"
echo "ok: counter mode adds the time slept ($moved ms per 200 ms)"

# Monotonic and CPU-time clocks stay real.
run_clock "$COUNTER" "$WORK/out" monotonic
gap=$(awk '$1 == "monotonic_gap_us" { print $2 }' "$WORK/out")
((gap >= 0 && gap < 1000000)) || fail "CLOCK_MONOTONIC differs from the kernel's by $gap µs"
grep -qx 'cpu_ns_positive 1' "$WORK/out" || fail "CLOCK_PROCESS_CPUTIME_ID read nothing"
echo "ok: monotonic stays real (gap $gap µs)"

# Every thread starts at the epoch, whatever the main thread read.
run_clock "$COUNTER" "$WORK/out" threads 3
for value in $(cat "$WORK/out"); do
  ((value == EPOCH * NANOS)) || fail "a thread's first read is $value, not the epoch"
done
echo "ok: threads start at the epoch"

# A forked child keeps its thread's clock and writes its own report.
run_clock "$COUNTER" "$WORK/out" fork
grep -qx "child before $((EPOCH * NANOS)) after $((EPOCH * NANOS + 1000))" "$WORK/out" ||
  fail "the forked child's clock: $(cat "$WORK/out")"
expect_report clock_reads 2
child_report=$(ls "$WORK"/report.* | grep -vxF "$REPORT" | head -1)
[[ -n $child_report ]] || fail "the forked child wrote no report"
[[ $(report_value "$child_report" clock_reads) == 1 ]] ||
  fail "the forked child's report counts $(report_value "$child_report" clock_reads) reads, not its 1"
echo "ok: a forked child keeps its clock, counts its own reads"

# Waits on wall-clock deadlines 0.3 s ahead, and the Python polling loop,
# finish. timeout guards against a hang; the time printed is for the record.
# cond_monotonic waits on a CLOCK_MONOTONIC condition variable: its
# deadline is real and must not be converted.
for mode in counter shift; do
  for wait in sleep_until cond clockwait cv sem sem_clock nanosleep_abs timerfd cond_monotonic; do
    run_shim glibc "clock=$mode;clock_epoch=$EPOCH" "$WORK/out" timeout 30 "$PROBE" "$wait"
    status=$?
    ((status == 124)) && fail "$wait: still waiting after 30 s under $mode mode"
    ((status == 0)) || fail "$wait failed under $mode mode: $(head -3 "$WORK/out.err")"
    converted=$(cat "$WORK"/report.* | awk -F'\t' '$1 == "clock_deadlines" { s += $2 } END { print s }')
    case $wait in
      sleep_until) ;;
      cond_monotonic) ((converted == 0)) || fail "$wait: a monotonic deadline was converted" ;;
      *) ((converted >= 1)) || fail "$wait: no deadline converted under $mode mode" ;;
    esac
    echo "ok: $wait finishes under $mode mode ($(cat "$WORK/out"), $converted converted)"
  done
done

[[ -x $PYTHON ]] || skip "no $PYTHON for the polling loop"
run_shim glibc "$COUNTER" "$WORK/out" timeout 30 "$PYTHON" -c \
  $'import time\nt0=time.time()\nwhile time.time() - t0 < 0.05: time.sleep(0.01)\nprint("elapsed", time.time() - t0)'
status=$?
((status == 124)) && fail "python polling loop still running after 30 s under counter mode"
((status == 0)) || fail "python polling loop failed: $(head -3 "$WORK/out.err")"
echo "ok: python polling loop finishes under counter mode ($(cat "$WORK/out"))"

# clock_window moves only the reads in its range, in the root image.
run_clock "$COUNTER;clock_window=3-3;clock_window_epoch=$OTHER" "$WORK/out" read clock_gettime 5
mapfile -t reads <"$WORK/out"
for i in 0 1 3 4; do
  ((reads[i] == EPOCH * NANOS + i * 1000)) || fail "clock_window moved read $((i + 1)): ${reads[*]}"
done
((reads[2] == OTHER * NANOS + 2000)) || fail "clock_window did not move read 3: ${reads[*]}"
expect_report clock_windowed 1
expect_report clock_reads 5
echo "ok: clock_window moves only read 3"

# In counter mode the clock moves by what the program asked for, not by what
# the machine took: a sleep, a timed-out poll and a sub-second epoch repeat
# to the nanosecond.
cat >"$WORK/clock_sleeps.py" <<'PY'
import select, time
time.sleep(0.05)
a = time.time_ns()
select.select([], [], [], 0.02)
b = time.time_ns()
print(a, b)
PY
run_shim glibc "$COUNTER;clock_epoch_ns=123456789" "$WORK/s1" "$PYTHON" "$WORK/clock_sleeps.py" ||
  fail "the sleeping program failed"
run_shim glibc "$COUNTER;clock_epoch_ns=123456789" "$WORK/s2" "$PYTHON" "$WORK/clock_sleeps.py" ||
  fail "the sleeping program failed"
cmp -s "$WORK/s1" "$WORK/s2" || fail "sleeps moved the pinned clock differently: $(cat "$WORK/s1") / $(cat "$WORK/s2")"
read -r first second <"$WORK/s1"
(( first >= EPOCH * 1000000000 + 123456789 + 50000000 && first < EPOCH * 1000000000 + 123456789 + 51000000 )) ||
  fail "after a 0.05 s sleep the clock reads $first"
(( second - first >= 20000000 && second - first < 21000000 )) ||
  fail "a 0.02 s select moved the clock by $((second - first)) ns"
echo "ok: sleeps and timeouts move the pinned clock by what was asked ($(cat "$WORK/s1"))"
