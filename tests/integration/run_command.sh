#!/bin/bash
# memdet run: the child's exit status comes back as env(1) would give it,
# the timeout kills everything the workload started, and the controls are
# applied and verified from the child's side.
#
# Usage: bash run_command.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

command -v setsid >/dev/null || skip "no setsid(1) to start a child outside the workload's group"

# --- Exit statuses.

run_memdet exit7 run -- /bin/sh -c 'exit 7'
expect_status exit7 7
checked "exit 7 comes back as 7"

run_memdet sigterm run -- /bin/sh -c 'kill -TERM $$'
expect_status sigterm 143
checked "death by SIGTERM comes back as 128 + 15 = 143"

run_memdet not_found run -- /nonexistent/program
expect_status not_found 127
expect_one_memdet_line not_found /nonexistent/program
run_memdet not_in_path run -- no-such-command-here
expect_status not_in_path 127
expect_one_memdet_line not_in_path no-such-command-here
checked "a command that does not exist: 127 and one line naming it"

printf '#!/bin/sh\necho should not run\n' >not_executable.sh
chmod 644 not_executable.sh
run_memdet not_executable run -- ./not_executable.sh
expect_status not_executable 126
expect_one_memdet_line not_executable not_executable.sh
grep -q 'should not run' not_executable.out && fail "not_executable: the script ran"
checked "a file without execute permission: 126 and one line naming it"

# --- The timeout ends the whole tree, even a grandchild that left the
# workload's process group with setsid.

started=$SECONDS
run_memdet timeout run --timeout 1 \
    -- /bin/sh -c 'setsid sleep 300 & echo $! > escaped.pid; sleep 60'
elapsed=$((SECONDS - started))
expect_status timeout 124
[ "$elapsed" -lt 30 ] || fail "timeout: --timeout 1 returned after $elapsed s"
escaped=$(cat escaped.pid 2>/dev/null) || fail "timeout: the workload did not record its child"
if kill -0 "$escaped" 2>/dev/null; then
    kill -KILL "$escaped"
    fail "timeout: pid $escaped (setsid sleep 300) is still alive after memdet returned"
fi
grep -q "pid $escaped (sleep) outlived the workload" timeout.err ||
    { cat timeout.err >&2; fail "timeout: stderr does not report the escaped pid $escaped"; }
checked "--timeout 1: 124 after $elapsed s, setsid grandchild $escaped gone and reported"

# Without a timeout too: the workload exits at once and leaves the sleeper.
run_memdet orphan run -- /bin/sh -c 'setsid sleep 300 & echo $! > orphan.pid'
expect_status orphan 0
orphan=$(cat orphan.pid 2>/dev/null) || fail "orphan: the workload did not record its child"
if kill -0 "$orphan" 2>/dev/null; then
    kill -KILL "$orphan"
    fail "orphan: pid $orphan (setsid sleep 300) outlived memdet run"
fi
checked "a setsid child left behind by a workload that exited 0 is ended too"

# --- Replaying a check run that wrote into its record folder: the replay
# gets a sibling folder of the same path length, and the record is left as
# it was.

run_memdet writes check -n 2 --out campaign --artifact '{run_dir}/x.txt' \
    -- /bin/sh -c 'echo "$MEMDET_RUN_DIR" >{run_dir}/x.txt'
# Each run writes its own folder's path, so the outcomes differ.
expect_status writes 1
recorded=$(cat campaign/run-01/x.txt)
run_memdet replay_one run --replay campaign/run-01
expect_status replay_one 0
[ "$(cat campaign/run-01/x.txt)" = "$recorded" ] || fail "the replay wrote into the recorded folder"
replayed=$(cat campaign/rpl-01/x.txt) || fail "the replay did not write into campaign/rpl-01"
[ "${#replayed}" -eq "${#recorded}" ] || fail "the replay folder's path has another length: $replayed"
grep -q 'writes into .*rpl-01' replay_one.err || { cat replay_one.err >&2; fail "the replay does not say where it writes"; }
run_memdet replay_two run --replay campaign/run-01
[ -f campaign/rp2-01/x.txt ] || fail "a second replay did not get a folder of its own"
checked "a replayed check run writes beside its record, in a folder of the same path length"

# Hand-made records: a folder the command does not name is not moved, and
# nothing is created; a wrong type names its key; an argument that was not
# UTF-8 cannot be replayed.
mkdir -p elsewhere
cat >foreign.json <<EOF
{"schema": "memdet.run/2", "argv": ["/bin/true"], "label": "01", "dir": "$PWD/elsewhere", "factors": []}
EOF
run_memdet foreign run --replay foreign.json
expect_status foreign 0
[ "$(ls -d rp*-* rpl* 2>/dev/null)" = "" ] || fail "a replay made a folder the command does not name"
echo '{"schema": 5, "argv": ["/bin/true"], "factors": []}' >typed.json
run_memdet typed run --replay typed.json
expect_status typed 125
expect_one_memdet_line typed 'typed.json'
printf '{"schema": "memdet.run/2", "argv": ["/bin/echo", "\xef\xbf\xbd"], "factors": []}' >bytes.json
run_memdet bytes run --replay bytes.json
expect_status bytes 125
expect_one_memdet_line bytes 'not UTF-8'
checked "hand-made records: no stray folders, wrong types and lost bytes refused in one line"

# --- A scratch folder whose memdet was killed is removed by the next run;
# one whose owner runs is kept.

temp=${TMPDIR:-/tmp}
boot=$(cat /proc/sys/kernel/random/boot_id)
stale=$(mktemp -d "$temp/memdet-run-XXXXXX")
live=$(mktemp -d "$temp/memdet-run-XXXXXX")
sleep 300 &
sleeper=$!
echo "$sleeper $(awk '{ print $22 }' /proc/$sleeper/stat) $boot" >"$live/owner"
sh -c 'exit 0' &
gone=$!
wait "$gone"
echo "$gone 1 $boot" >"$stale/owner"
run_memdet sweep run -- /bin/true
kill "$sleeper"
wait "$sleeper" 2>/dev/null
[ ! -e "$stale" ] || { rm -rf "$stale" "$live"; fail "the dead memdet's scratch folder is still there"; }
[ -d "$live" ] || fail "a running owner's scratch folder was removed"
rm -rf "$live"
checked "a dead owner's scratch folder is removed at the next start, a live one's kept"

# --- Controls.

# A CPU list naming a CPU the machine lacks is refused before anything runs;
# under `run`, memdet's own refusals exit 125 so they cannot pass for the
# child's status.
run_memdet bad_cpus run --cpus 0,9999 -- /bin/true
expect_status bad_cpus 125
expect_one_memdet_line bad_cpus 9999
checked "--cpus 0,9999: 125 with one line naming CPU 9999"

run_memdet aslr run --aslr off -- /bin/cat /proc/self/personality
# A seccomp filter (some containers have one) may forbid personality(2);
# memdet then refuses to run, which is right, but ASLR cannot be tested.
if [ "$status" -eq 125 ] && grep -q 'refused personality' aslr.err; then
    skip "$(cat aslr.err)"
fi
expect_status aslr 0
personality=$(tr -d '[:space:]' <aslr.out)
[[ "$personality" =~ ^[0-9a-fA-F]+$ ]] || fail "aslr: /proc/self/personality read '$personality'"
# ADDR_NO_RANDOMIZE, from <linux/personality.h>.
(( (16#$personality & 0x0040000) != 0 )) ||
    fail "aslr: personality $personality lacks ADDR_NO_RANDOMIZE (0x0040000)"
expect_one_memdet_line aslr 'aslr pinned off: verified, personality'
[ "$(wc -l <aslr.err)" -eq 1 ] || { cat aslr.err >&2; fail "aslr: stderr is not one line"; }
checked "--aslr off: the child's personality is $personality, one line says aslr was verified"

echo "PASS: run_command"
