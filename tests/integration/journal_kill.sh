#!/usr/bin/env bash
# kill -9 of a memdet holding /proc/sys/kernel/numa_balancing: the setting
# stays changed until the next memdet start, which puts it back, whether
# that start is `memdet restore` or a plain `memdet run`. The setting starts
# at 1 and is held at 0; whatever happens, the script puts back the value
# it found, on every way out.
#
# The holder is first the unit-test binary's helper (SystemSettings alone),
# then memdet run and memdet check themselves with --pin numa-balancing=0
# --system, where the CLI has that flag.
source "$(dirname "$0")/common.bash" "$@"

setting=/proc/sys/kernel/numa_balancing
tests_binary=$(dirname "$MEMDET")/tests/memdet_tests

[ "$(id -u)" -eq 0 ] || skip "needs root to change $setting"
[ -f "$setting" ] || skip "$setting is missing (kernel without NUMA balancing)"
original=$(cat "$setting")
# Writing the value it already has changes nothing and shows whether this
# /proc/sys is writable at all (containers often mount it read-only).
if ! (echo "$original" >"$setting") 2>/dev/null; then
    skip "$setting is not writable here"
fi
[ -x "$tests_binary" ] || skip "$tests_binary is missing; build the tests"

export MEMDET_JOURNAL_DIR=$SCRATCH/journal

# Kills whatever a step left running and puts the setting back.
cleanup() {
    local file pid
    for file in "$SCRATCH"/*.pid; do
        [ -f "$file" ] || continue
        pid=$(cat "$file")
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    done
    echo "$original" >"$setting"
    cd / && rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

reads() {
    tr -d '[:space:]' <"$setting"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
    local tenths=$(($1 * 10))
    shift
    for _ in $(seq 1 "$tenths"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

setting_is() { [ "$(reads)" = "$1" ]; }
alive() { kill -0 "$(cat "$1")" 2>/dev/null; }

# kill_nine PIDFILE: SIGKILL, then waits until the process is gone.
kill_nine() {
    kill -9 "$(cat "$1")" 2>/dev/null
    wait_for 10 eval "! alive $1" || fail "pid $(cat "$1") survived SIGKILL"
    rm -f "$1"
}

# helper NAME VALUE: runs the unit-test helper holding the setting at
# VALUE, its pid in NAME.pid (the shell execs into it).
helper() {
    local name=$1 value=$2
    MEMDET_TEST_HOLD="$setting=$value" timeout -s KILL 90 bash -c 'echo $$ >"$0.pid"; exec "$1" \
        --gtest_also_run_disabled_tests --gtest_filter=JournalHelper.DISABLED_HoldUntilKilled' \
        "$name" "$tests_binary" >"$name.out" 2>&1
}

# background COMMAND...: starts COMMAND outside this shell's job table, so
# that killing it with SIGKILL prints no job notice; the pid files and
# cleanup keep track of it.
background() {
    ("$@" &) 2>/dev/null
}

# hold_and_kill NAME: holds the setting at 0 from 1, checks a second holder
# is refused, kills the holder with SIGKILL and checks the setting stayed 0.
hold_and_kill() {
    local name=$1
    echo 1 >"$setting"
    background helper "$name" 0
    wait_for 30 grep -q '^held' "$name.out" || { cat "$name.out" >&2; fail "$name: never held"; }
    setting_is 0 || fail "$name: $setting reads $(reads) while held, expected 0"
    local holder
    holder=$(cat "$name.pid")

    helper "$name-second" 1
    grep -q "$setting is held by memdet pid $holder" "$name-second.out" ||
        { cat "$name-second.out" >&2; fail "$name: a second holder was not refused"; }
    setting_is 0 || fail "$name: the refused holder changed $setting"
    checked "$name: held at 0 by pid $holder; a second holder was refused naming it"

    kill_nine "$name.pid"
    setting_is 0 || fail "$name: $setting reads $(reads) right after kill -9, expected 0"
}

# 1. memdet restore undoes what the killed helper left.
hold_and_kill helper-restore
run_memdet restore restore
expect_status restore 0
grep -q "restored $setting to 1" restore.out || { cat restore.out >&2; fail "restore said nothing"; }
setting_is 1 || fail "memdet restore left $setting at $(reads), expected 1"
run_memdet restore-again restore
expect_status restore-again 0
grep -q "nothing to restore" restore-again.out || fail "a second restore found something"
checked "memdet restore put $setting back to 1 and left an empty journal"

# 2. A plain memdet run does the same at its start and says so on stderr.
hold_and_kill helper-run
run_memdet plain-run run -- true
expect_status plain-run 0
grep -q "^memdet: restored $setting to 1" plain-run.err ||
    { cat plain-run.err >&2; fail "memdet run did not report the restore"; }
setting_is 1 || fail "memdet run left $setting at $(reads), expected 1"
checked "memdet run -- true put $setting back to 1 at its start"

# 3. memdet run and check themselves, killed mid-run.
# A run that ends normally holds the setting while the workload runs and
# puts it back after.
echo 1 >"$setting"
run_memdet probe run --pin numa-balancing=0 --system -- cat "$setting"
expect_status probe 0
[ "$(tr -d '[:space:]' <probe.out)" = 0 ] ||
    fail "the workload read '$(cat probe.out)' from $setting, expected memdet's 0"
setting_is 1 || fail "memdet run left $setting at $(reads) after a normal end, expected 1"
checked "memdet run held $setting at 0 for its workload and put back 1 when it ended"

# kill_memdet_mid_run NAME ARGS...: starts memdet ARGS with the setting at
# 1, waits until the workload runs and the setting reads 0, then SIGKILLs
# memdet and its workload.
kill_memdet_mid_run() {
    local name=$1
    shift
    echo 1 >"$setting"
    background timeout -s KILL 120 bash -c 'echo $$ >"$0.pid"; exec "$@" >"$0.out" 2>"$0.err"' \
        "$name" "$MEMDET" "$@"
    wait_for 30 test -s workload.pid ||
        { cat "$name.err" >&2; fail "$name: the workload never started"; }
    wait_for 5 setting_is 0 ||
        { cat "$name.err" >&2; fail "$name: $setting reads $(reads) during the run, expected 0"; }
    kill_nine "$name.pid"
    kill_nine workload.pid
    setting_is 0 || fail "$name: $setting reads $(reads) right after kill -9, expected 0"
    checked "$name: $setting read 0 during the run and stayed 0 after kill -9"
}

workload=(sh -c 'echo $$ >"$0"; exec sleep 30' "$SCRATCH/workload.pid")

kill_memdet_mid_run memdet-run run --pin numa-balancing=0 --system -- "${workload[@]}"
run_memdet restore-run restore
expect_status restore-run 0
grep -q "restored $setting to 1" restore-run.out || { cat restore-run.out >&2; fail "no restore"; }
setting_is 1 || fail "memdet restore after memdet run left $setting at $(reads)"
checked "memdet restore undid the killed memdet run"

kill_memdet_mid_run memdet-check check -n 3 --out camp --pin numa-balancing=0 --system -- \
    "${workload[@]}"
run_memdet after-check run -- true
expect_status after-check 0
grep -q "^memdet: restored $setting to 1" after-check.err ||
    { cat after-check.err >&2; fail "memdet run did not report the restore"; }
setting_is 1 || fail "memdet run after memdet check left $setting at $(reads)"
checked "memdet run -- true undid the killed memdet check"

echo "PASS: killed holders' settings are restored by memdet restore and by memdet run"
