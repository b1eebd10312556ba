#!/bin/bash
# memdet check on examples/pytorch/train_embedding.py: the default training,
# whose index_put_ backward adds with atomics on two threads, must be caught
# differing with numeric evidence; with --deterministic it must repeat.
#
# Usage: bash check_pytorch.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

example=$SOURCE_DIR/examples/pytorch/train_embedding.py
[ -f "$example" ] || fail "$example is missing"
if ! probe=$(timeout 120 "$PYTHON" -c 'import torch, numpy' 2>&1); then
    skip "$PYTHON cannot import torch and numpy: ${probe##*$'\n'}"
fi
online=$(getconf _NPROCESSORS_ONLN)
[ "$online" -ge 2 ] || skip "only $online CPU online; the example's two threads need two to race"

# Relative artifact and output paths, as a user would write them: the runs
# start in the scratch directory, and {run} keeps their outputs apart.
run_memdet divergent check -n 20 --stop-at-first-difference --timeout 200 --out divergent \
    --json divergent.json --artifact 'out/{run}/*.npy' --artifact 'out/{run}/loss.txt' \
    --step-regex '^(\d+) ' -- "$PYTHON" "$example" --out 'out/{run}'
expect_status divergent 1
expect_json divergent.json 'd["result"]["verdict"] == "differs"'
expect_json divergent.json 'd["result"]["failed_runs"] == 0'
expect_json divergent.json \
    'any(c["kind"] == "numeric" for o in d["outcomes"] for c in o["vs_reference"])' \
    "some artifact compared numerically"
expect_json divergent.json \
    'all(c["numeric"]["differing"] > 0 for o in d["outcomes"] for c in o["vs_reference"]
         if c["kind"] == "numeric")' \
    "every numeric comparison has differing elements"
keys=$(json_value divergent.json \
    '" ".join(c["key"] for o in d["outcomes"] for c in o["vs_reference"]
              if c["kind"] == "numeric")')
runs=$(json_value divergent.json 'len(d["runs"])')
checked "default training: exit 1, differs after $runs runs; numeric: $keys"

# The loss log, printed with repr() of float32 losses, names the step where
# the runs part and measures the distance in float32 ULP.
expect_json divergent.json \
    'any(c["key"] == "out/{run}/loss.txt" and c["kind"] == "text" and c["text"]["first_step"] is not None and c["text"]["dtype"] == "float32" and c["text"]["ulp_numbers"] > 0 and c["text"]["max_ulp"] > 0 for o in d["outcomes"] for c in o["vs_reference"])' \
    "the loss log names the first differing step, in float32 ULP"
step=$(json_value divergent.json \
    '[c["text"]["first_step"] for o in d["outcomes"] for c in o["vs_reference"] if c["kind"] == "text"][0]')
checked "the loss logs first differ at step $step"

run_memdet deterministic check -n 5 --timeout 200 --out deterministic \
    --json deterministic.json --artifact 'out/{run}/*.npy' \
    -- "$PYTHON" "$example" --out 'out/{run}' --deterministic
expect_status deterministic 0
expect_json deterministic.json 'd["result"]["verdict"] == "no_difference_seen"'
expect_json deterministic.json 'd["result"]["completed_runs"] == 5'
# Five parameters of the model, each saved as one .npy, plus stdout.
expect_json deterministic.json 'len(d["runs"][0]["artifacts"]) == 6' \
    "five .npy artifacts and stdout in run 01"
checked "--deterministic: exit 0, no_difference_seen over 5 runs of 5 parameter files"

echo "PASS: check_pytorch"
