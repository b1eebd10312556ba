#!/usr/bin/env bash
# What a campaign leaves behind: the runs' own files stay where they wrote
# them, the first run of each distinct outcome keeps a copy in its record,
# and an earlier run's output at a fixed path is cleared before the next run
# instead of being mistaken for the user's file.
source "$(dirname "$0")/common.bash"

# Per-run paths: every run's files stay; copies only for new outcomes.
run_memdet perrun check -n 3 --out perrun --artifact 'out/{run}/*' -- \
    "$MEMDET" canary sgd --reduce ordered --steps 20 --out 'out/{run}'
expect_status perrun 0
for run in 01 02 03; do
    [ -f "out/$run/weights.npy" ] || fail "out/$run/weights.npy was taken from the user"
done
[ -f perrun/run-01/artifacts/out/01/weights.npy ] || fail "run 01 kept no copy of its outcome"
[ -e perrun/run-02/artifacts ] && fail "run 02 repeats run 01's outcome but kept a copy"
cmp -s out/01/weights.npy perrun/run-01/artifacts/out/01/weights.npy ||
    fail "the kept copy differs from what run 01 wrote"
"$PYTHON" - perrun <<'PY' || fail "records disagree with check.json"
import json, sys, os
camp = sys.argv[1]
doc = json.load(open(os.path.join(camp, "check.json")))
for run in doc["runs"]:
    record = json.load(open(os.path.join(run["dir"], "record.json")))
    assert record["outcome"] == run["outcome"] == 0, (record["outcome"], run["outcome"])
    for artifact in record["artifacts"]:
        if artifact["kept"] is not None:
            assert os.path.exists(artifact["kept"]), artifact
PY
checked "per-run outputs stay in place; one copy of the single outcome in run-01"

# A fixed path: the previous run's output is cleared, not moved to before/,
# and the last run's output is what the user finds afterwards.
run_memdet fixed check -n 3 --out fixed --artifact 'w/*' -- \
    "$MEMDET" canary sgd --reduce atomic --steps 50 --out w
[ "$status" -eq 0 ] || [ "$status" -eq 1 ] || fail "fixed-path campaign exited $status"
[ -f w/weights.npy ] || fail "the last run's output is not where it wrote it"
for run in 01 02 03; do
    [ -e "fixed/run-$run/before" ] && fail "run $run moved an earlier run's output into before/"
done
"$PYTHON" - fixed <<'PY' || fail "fixed-path records are wrong"
import json, sys, os
doc = json.load(open(os.path.join(sys.argv[1], "check.json")))
assert all(not run["moved_before_run"] for run in doc["runs"])
seen = set()
for run in doc["runs"]:
    kept = {a["key"]: a["kept"] for a in run["artifacts"]}
    new = run["outcome"] not in seen
    seen.add(run["outcome"])
    # A run with a new outcome holds copies; a repeat holds none outside stdout.
    for key, path in kept.items():
        if key == "stdout":
            continue
        assert (path is not None) == new, (run["label"], key, path, new)
PY
cmp -s w/weights.npy "fixed/run-03/artifacts/w/weights.npy" 2>/dev/null ||
    "$PYTHON" -c "import json,sys; d=json.load(open('fixed/check.json')); sys.exit(0 if d['runs'][2]['outcome'] in [r['outcome'] for r in d['runs'][:2]] else 1)" ||
    fail "run 03 had a new outcome but its copy does not match the file left in place"
checked "fixed-path outputs are cleared between runs and never reported as the user's"
echo "PASS"
