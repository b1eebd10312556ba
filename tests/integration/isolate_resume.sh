#!/bin/bash
# memdet isolate --resume: a campaign cut short by SIGINT goes on from its
# stored runs and ends as the same campaign run without a stop would, with
# the same verdict, runs, steps and perturbed values, each run numbered
# once; resuming what cannot be resumed is one line with exit 2.
#
# Usage: bash isolate_resume.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

# The workload sends SIGINT to memdet, its parent, during run STOP_AT, and
# SIGKILL during run KILL_AT, each once: the marker files keep it from doing
# so again when that run is made anew. The command is the same in every
# campaign, so they can be compared.
STOP_AT=8
KILL_AT=5
workload=(/bin/sh -c '
if [ "$MEMDET_RUN" -eq '"$STOP_AT"' ] && [ ! -e stop.once ]; then
    touch stop.once
    kill -INT "$PPID"
    sleep 5
fi
if [ "$MEMDET_RUN" -eq '"$KILL_AT"' ] && [ ! -e kill.once ]; then
    touch kill.once
    kill -KILL "$PPID"
    exit 0
fi
exec "$0" canary cause heap --out "$1"' "$MEMDET" '{run_dir}/out')
# A budget under 100 numbers the runs 01, 02, ...
options=(-n 3 --pool 3 --factor-runs 3 --factors heap --seed 7 --budget 40 --timeout 60
    --artifact '{run_dir}/out/result.txt')

# The reference: the campaign as it runs when nothing stops it.
touch stop.once kill.once
run_memdet reference isolate --out reference --json reference.json "${options[@]}" \
    -- "${workload[@]}"
expect_status reference 1
expect_json reference.json 'd["verdict"] == "reproducible"'
expect_json reference.json '[f["name"] for f in d["factors"] if f["status"] == "changes-result"] == ["heap"]' \
    "reference: heap blamed"
runs=$(json_value reference.json 'd["runs"]')
[ "$runs" -gt "$STOP_AT" ] || fail "reference: $runs runs, too few to stop at run $STOP_AT"
checked "reference campaign: $runs runs"

# Cut short during run 08: memdet ends with 130, keeping the runs before.
rm stop.once
run_memdet cut isolate --out campaign "${options[@]}" -- "${workload[@]}"
expect_status cut 130
[ -e stop.once ] || fail "cut: the workload never reached run $STOP_AT"
stored() {
    "$PYTHON" -c 'import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT ordinal FROM runs ORDER BY ordinal")
print(" ".join(str(r[0]) for r in rows))' campaign/campaign.db
}
want=$(seq -s ' ' 1 $((STOP_AT - 1)))
[ "$(stored)" = "$want" ] ||
    fail "cut: campaign.db holds runs '$(stored)', expected '$want' (run $STOP_AT was cut short)"
[ -d "campaign/run-0$STOP_AT" ] || fail "cut: run-0$STOP_AT, the run cut short, left no directory"
checked "cut short at run $STOP_AT: exit 130, runs 1-$((STOP_AT - 1)) stored"

# What cannot be resumed is refused before anything runs.
mkdir not-a-campaign
run_memdet none isolate --resume not-a-campaign
expect_status none 2
expect_one_memdet_line none "not an isolate campaign"
run_memdet other-command isolate --resume campaign -- /bin/echo other
expect_status other-command 2
expect_one_memdet_line other-command "command differs from the campaign's: argument 1 is '/bin/echo'"
run_memdet other-option isolate --resume campaign --pool 4
expect_status other-option 2
expect_one_memdet_line other-option "--pool cannot be given again"
# While another process holds the campaign's lock, it is not taken from it.
"$PYTHON" -c 'import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(30)' campaign/campaign.lock locked &
holder=$!
for _ in $(seq 100); do [ -e locked ] && break; sleep 0.1; done
run_memdet held isolate --resume campaign
kill "$holder"
wait "$holder" 2>/dev/null
expect_status held 2
expect_one_memdet_line held "campaign.lock is held"
# Another working directory, or another environment, would start the runs
# elsewhere: the stored outcomes would not be this campaign's.
mkdir elsewhere
(cd elsewhere && run_memdet ../elsewhere isolate --resume ../campaign)
expect_status elsewhere 2
expect_one_memdet_line elsewhere "resume it from there"
MEMDET_TEST_EXTRA=1 run_memdet environment isolate --resume campaign
expect_status environment 2
grep -q "^memdet.*the environment differs from the one the campaign began in" environment.err ||
    fail "environment: $(cat environment.err)"
[ "$(stored)" = "$want" ] || fail "a refused resume changed the stored runs: '$(stored)'"
[ ! -e campaign/isolate.json ] || expect_json campaign/isolate.json 'd["exit_status"] == 130' \
    "a refused resume wrote a report"
checked "refused with exit 2: no campaign, another command, another option, held lock, another directory, another environment"

# Resumed with the command given again: the campaign the reference was.
# Whatever is in the directory of the run cut short goes: the run is made
# again from nothing.
mkdir -p "campaign/run-0$STOP_AT"
touch "campaign/run-0$STOP_AT/left-over"
run_memdet resumed isolate --resume campaign --json resumed.json -- "${workload[@]}"
expect_status resumed 1
grep -q "going on after the $((STOP_AT - 1)) stored runs" resumed.err ||
    fail "resumed: no line saying where it went on from"
expect_json resumed.json "d['verdict'] == '$(json_value reference.json 'd["verdict"]')'" \
    "resumed: the reference's verdict"
expect_json resumed.json "d['runs'] == $runs == len(d['campaign']['runs'])" \
    "resumed: the reference's $runs runs, every one in the report"
"$PYTHON" - reference.json resumed.json campaign <<'EOF' || fail "resumed: not the reference campaign"
import json, os, sqlite3, sys
reference, resumed = (json.load(open(path)) for path in sys.argv[1:3])
directory = sys.argv[3]
assert resumed["steps"] == reference["steps"], "the steps differ"
assert resumed["factors"] == reference["factors"], "the factor findings differ"
def values(report):
    return [[(f["name"], f.get("value")) for f in run["factors"]] for run in report["campaign"]["runs"]]
assert values(resumed) == values(reference), "the runs took other factor values"
labels = [run["label"] for run in resumed["campaign"]["runs"]]
assert labels == ["%02d" % i for i in range(1, len(labels) + 1)], labels
ordinals = [r[0] for r in sqlite3.connect(os.path.join(directory, "campaign.db")).execute(
    "SELECT ordinal FROM runs ORDER BY ordinal")]
assert ordinals == list(range(1, reference["runs"] + 1)), ordinals
dirs = sorted(name for name in os.listdir(directory) if name.startswith("run-"))
assert dirs == ["run-" + label for label in labels], dirs
for run in resumed["campaign"]["runs"]:
    assert run["completed"], run["label"] + " did not complete"
EOF
[ ! -e "campaign/run-0$STOP_AT/left-over" ] ||
    fail "resumed: run-0$STOP_AT was not made again from an empty directory"
checked "resumed: exit 1, verdict and $runs runs as the reference, numbered 01-$runs once"

# Killed during run 05: no report, and run 05's directory holds no stored
# run. Resumed without the command, it makes run 05 again and ends as the
# reference did.
rm kill.once
touch stop.once
# (Without the braces bash reports the kill on the test's own stderr.)
{ run_memdet killed isolate --out killed "${options[@]}" -- "${workload[@]}"; } 2>/dev/null
expect_status killed 137
[ -d killed/run-05 ] && [ ! -e killed/isolate.json ] ||
    fail "killed: expected run-05 left behind and no isolate.json"
run_memdet killed-resumed isolate --resume killed --json killed.json
expect_status killed-resumed 1
grep -q "going on after the $((KILL_AT - 1)) stored runs" killed-resumed.err ||
    fail "killed-resumed: did not go on after run $((KILL_AT - 1))"
"$PYTHON" - reference.json killed.json <<'EOF' || fail "killed-resumed: not the reference campaign"
import json, sys
reference, resumed = (json.load(open(path)) for path in sys.argv[1:3])
assert resumed["verdict"] == reference["verdict"]
assert resumed["runs"] == reference["runs"] == len(resumed["campaign"]["runs"])
assert resumed["steps"] == reference["steps"]
assert all(run["completed"] for run in resumed["campaign"]["runs"])
EOF
checked "killed at run $KILL_AT, resumed without the command: the reference campaign"

# A finished campaign is not resumed again.
run_memdet finished isolate --resume campaign
expect_status finished 2
expect_one_memdet_line finished "already finished"
checked "a finished campaign is refused"

# Killed while it set up its store: no run was made, nothing to resume, and
# the directory takes a new campaign. One whose lock is held is left alone.
mkdir setup && : >setup/campaign.db && : >setup/campaign.lock
run_memdet empty isolate --resume setup
expect_status empty 2
expect_one_memdet_line empty "start it again with --out setup"
run_memdet again check -n 2 --out setup -- /bin/true
expect_status again 0
[ -f setup/check.json ] || fail "the new campaign left no check.json in setup"
mkdir held && : >held/campaign.db && : >held/campaign.lock
flock held/campaign.lock sleep 30 &
holder=$!
sleep 0.3
run_memdet busy check -n 2 --out held -- /bin/true
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
expect_status busy 2
grep -q "another memdet is setting up a campaign there" busy.err || fail "busy: $(cat busy.err)"
[ -f held/campaign.db ] || fail "a held campaign's store was removed"
checked "a store left before any run: refused for --resume, reused by --out unless held"
