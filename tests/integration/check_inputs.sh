#!/bin/bash
# memdet check on bad input and on workloads that fail: malformed .npy
# artifacts, a run that fails, a run that hangs, a pattern that matches
# nothing, usage errors; and the plumbing between the command line and the
# runs: option values, files left from before, verbatim arguments, {run}.
#
# Usage: bash check_inputs.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

# --- A malformed .npy is the user's input error: exit 2, one line naming
# the file, and the record of the run that wrote it is kept.

# A version 1.0 header that promises 100 float32 (400 bytes) followed by
# only 16 bytes of data.
cat >write_truncated_npy.py <<'EOF'
import sys

header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }"
header += b" " * (118 - len(header) - 1) + b"\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(16))
EOF

run_memdet truncated check -n 3 --timeout 60 --out truncated --artifact 'weights.npy' \
    -- "$PYTHON" write_truncated_npy.py weights.npy
expect_status truncated 2
expect_one_memdet_line truncated weights.npy
[ -f truncated/run-01/record.json ] || fail "truncated: run-01/record.json was not written"
expect_json truncated/check.json 'len(d["runs"]) == 1' "the campaign stops at the bad run"
expect_json truncated/check.json '"input_error" in d["result"]'
checked "npy whose header claims more data than the file has: exit 2, one line naming it"

run_memdet not_npy check -n 3 --timeout 60 --out not_npy --artifact 'x.npy' \
    -- /bin/sh -c 'echo "not an array" > x.npy'
expect_status not_npy 2
expect_one_memdet_line not_npy x.npy
[ -f not_npy/run-01/record.json ] || fail "not_npy: run-01/record.json was not written"
checked "x.npy that is not an npy file: exit 2, one line naming it"

ls core core.* >/dev/null 2>&1 && fail "a core file was left in $SCRATCH"
checked "no core dump"

# --- A workload that fails in one run only: exit 3, and every run, the
# failed one included, has its record in check.json.

run_memdet fails_once check -n 3 --timeout 60 --out fails_once --json fails_once.json \
    -- /bin/sh -c 'echo same; [ "$MEMDET_RUN" != 02 ]'
expect_status fails_once 3
expect_json fails_once.json 'd["result"]["failed_runs"] == 1'
expect_json fails_once.json 'd["result"]["completed_runs"] == 2'
expect_json fails_once.json '[r["label"] for r in d["runs"]] == ["01", "02", "03"]' \
    "runs 01, 02 and 03 listed"
expect_json fails_once.json '[r["completed"] for r in d["runs"]] == [True, False, True]' \
    "only run 02 failed"
expect_json fails_once.json 'd["runs"][1]["launch"]["exit_code"] == 1' "run 02 exited 1"
expect_json fails_once.json 'd["runs"][1]["outcome"] == -1' "run 02 belongs to no outcome"
for label in 01 02 03; do
    record=fails_once/run-$label/record.json
    [ -f "$record" ] || fail "fails_once: $record is missing"
    expect_json "$record" "d['label'] == '$label'"
done
checked "failure in run 02 only: exit 3, failed_runs 1, records for runs 01-03"

# --- A hanging workload is killed at --timeout and counts as failed.

started=$SECONDS
run_memdet hangs check -n 2 --timeout 1 --out hangs --json hangs.json -- /bin/sh -c 'sleep 60'
expect_status hangs 3
elapsed=$((SECONDS - started))
[ "$elapsed" -lt 30 ] || fail "hangs: two runs with --timeout 1 took $elapsed s"
expect_json hangs.json 'all(r["launch"]["outcome"] == "timed out" for r in d["runs"])' \
    'every run "timed out"'
expect_json hangs/run-01/record.json 'd["launch"]["outcome"] == "timed out"'
expect_json hangs.json 'd["result"]["failed_runs"] == 2'
checked "sleep 60 with --timeout 1: exit 3 after $elapsed s, outcome \"timed out\""

# --- An artifact pattern that matches nothing makes the run a failure: a
# comparison of nothing would otherwise pass as "no difference".

run_memdet matches_nothing check -n 2 --timeout 60 --out matches_nothing \
    --json matches_nothing.json --artifact 'nothing/*.npy' -- /bin/true
expect_status matches_nothing 3
expect_json matches_nothing.json \
    'all(r["missing_artifacts"] == ["nothing/*.npy"] for r in d["runs"])' \
    "nothing/*.npy reported missing in every run"
expect_json matches_nothing.json 'd["result"]["failed_runs"] == 2'
checked "pattern that matches nothing: exit 3, reported as missing"

# --- Usage errors exit 2 before anything runs.

usage_error() {
    local name=$1 mention=$2
    shift 2
    run_memdet "$name" "$@"
    expect_status "$name" 2
    grep '^memdet' "$name.err" | grep -qF -- "$mention" ||
        { cat "$name.err" >&2; fail "$name: stderr does not mention '$mention'"; }
    [ ! -e .memdet ] || fail "$name: a campaign directory was made for a usage error"
    checked "usage error exits 2: memdet $*"
}
usage_error one_run runs check -n 1 -- /bin/true
usage_error no_command command check -n 2 --
usage_error unknown_option --no-such-option check -n 2 --no-such-option -- /bin/true
usage_error artifact_last artifact check -n 2 --artifact
usage_error artifact_no_value artifact check -n 2 --artifact -- /bin/true
usage_error missing_command no-such-command-here check -n 2 -- no-such-command-here
expect_one_memdet_line missing_command no-such-command-here
usage_error missing_path /nonexistent/program check -n 2 -- /nonexistent/program
expect_one_memdet_line missing_path /nonexistent/program

# --- --artifact takes one value, so the word after it, with or without
# "--", is the command.

run_memdet artifact_then_dashes check -n 2 --timeout 60 --out artifact_then_dashes \
    --json artifact_then_dashes.json --artifact 'x.txt' -- /bin/sh -c 'echo hi > x.txt'
expect_status artifact_then_dashes 0
expect_json artifact_then_dashes.json 'd["command"] == ["/bin/sh", "-c", "echo hi > x.txt"]'
expect_json artifact_then_dashes.json 'd["artifact_patterns"] == ["x.txt"]'
expect_json artifact_then_dashes.json \
    '[a["key"] for a in d["runs"][0]["artifacts"]] == ["stdout", "x.txt"]' \
    "x.txt compared beside stdout"
[ "$(cat artifact_then_dashes/run-01/artifacts/x.txt)" = hi ] ||
    fail "artifact_then_dashes: run-01/artifacts/x.txt does not hold what the run wrote"
checked "--artifact x.txt -- /bin/sh -c ...: the command is intact, x.txt compared"

run_memdet artifact_then_command check -n 2 --timeout 60 --out artifact_then_command \
    --json artifact_then_command.json --artifact 'copy.txt' /bin/cp /etc/hostname copy.txt
expect_status artifact_then_command 0
expect_json artifact_then_command.json \
    'd["command"] == ["/bin/cp", "/etc/hostname", "copy.txt"]'
expect_json artifact_then_command.json 'd["artifact_patterns"] == ["copy.txt"]'
checked "--artifact copy.txt /bin/cp ...: the command word is not taken as a pattern"

# --- A file that already matches a pattern would pass for the first run's
# output, so it goes into run-01/before/ and the record says so.

mkdir -p results
echo stale >results/old.txt
run_memdet earlier check -n 2 --timeout 60 --out earlier --json earlier.json \
    --artifact 'results/*.txt' -- /bin/sh -c 'mkdir -p results; echo new > results/new.txt'
expect_status earlier 0
[ ! -e results/old.txt ] || fail "earlier: results/old.txt was left in place"
[ "$(cat earlier/run-01/before/results/old.txt 2>/dev/null)" = stale ] ||
    fail "earlier: results/old.txt is not in run-01/before/results/"
expect_json earlier.json 'd["runs"][0]["moved_before_run"] == ["results/old.txt"]'
expect_json earlier.json 'd["runs"][1]["moved_before_run"] == []' \
    "nothing moved before run 02: run 01's file went into its record"
expect_json earlier.json \
    'all([a["key"] for a in r["artifacts"]] == ["results/new.txt", "stdout"] for r in d["runs"])' \
    "only results/new.txt compared, not the stale file"
checked "earlier match moved to run-01/before/ and listed in moved_before_run"

# --- Arguments reach the workload byte for byte: no shell in between.

verbatim=('two words' "it's" 'say "hi"' 'a;b' '$HOME' '*' '' 'back\slash' $'tab\there' '--')
run_memdet verbatim check -n 2 --timeout 60 --out verbatim --json verbatim.json \
    --artifact 'args.txt' -- /bin/sh -c 'printf "<%s>\n" "$@" > args.txt' sh "${verbatim[@]}"
expect_status verbatim 0
printf '<%s>\n' "${verbatim[@]}" >expected_args.txt
cmp -s expected_args.txt verbatim/run-01/artifacts/args.txt ||
    { diff expected_args.txt verbatim/run-01/artifacts/args.txt >&2;
      fail "verbatim: the workload saw different arguments"; }
"$PYTHON" -c '
import json, sys
d = json.load(open("verbatim.json"))
sys.exit(d["command"][4:] != sys.argv[1:] or d["runs"][0]["argv"][4:] != sys.argv[1:])
' "${verbatim[@]}" || fail "verbatim: check.json does not record the arguments as given"
checked "spaces, quotes, ';', '\$HOME', '*', empty, backslash, tab and '--' arrive verbatim"

# --- Run labels: zero-padded to the width of N, at least two digits, so
# every run directory and every expanded argv has the same length.

labels_ok() {
    local name=$1 runs=$2
    run_memdet "$name" check -n "$runs" --timeout 60 --out "$name" --json "$name.json" \
        --no-stdout --artifact '{run_dir}/constant.txt' \
        -- /bin/sh -c 'echo "$MEMDET_RUN $MEMDET_RUN_DIR $1" > "$MEMDET_RUN_DIR/seen.txt"
                       echo same > "$MEMDET_RUN_DIR/constant.txt"' sh 'label={run}'
    expect_status "$name" 0
    "$PYTHON" - "$name" "$runs" <<'EOF' || fail "$name: run labels, directories or {run} are wrong"
import json
import os
import sys

name, runs = sys.argv[1], int(sys.argv[2])
d = json.load(open(name + ".json"))
width = max(2, len(str(runs)))
labels = [str(i).zfill(width) for i in range(1, runs + 1)]
dirs = sorted(entry for entry in os.listdir(name) if entry.startswith("run-"))
problems = []
if dirs != ["run-" + label for label in labels]:
    problems.append(f"run directories {dirs[:3]}...{dirs[-2:]}")
if len({len(entry) for entry in dirs}) != 1:
    problems.append("run directory names differ in length")
for run, label in zip(d["runs"], labels):
    run_dir = os.path.join(d["campaign_dir"], "run-" + label)
    if run["label"] != label or run["dir"] != run_dir:
        problems.append(f"run {run['index']}: label {run['label']!r}, dir {run['dir']!r}")
    if run["argv"][-1] != "label=" + label:
        problems.append(f"run {label}: argv ends {run['argv'][-1]!r}")
    seen = open(os.path.join(run_dir, "seen.txt")).read().split()
    if seen != [label, run_dir, "label=" + label]:
        problems.append(f"run {label}: the workload saw {seen}")
for problem in problems[:10]:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
    checked "-n $runs: run-$(printf %0*d "$(( ${#runs} > 2 ? ${#runs} : 2 ))" 1) .. run-$runs," \
        "MEMDET_RUN, MEMDET_RUN_DIR and {run} agree in every run"
}
labels_ok labels_10 10
labels_ok labels_100 100

echo "PASS: check_inputs"
