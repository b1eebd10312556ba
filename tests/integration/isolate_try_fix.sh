#!/bin/bash
# memdet isolate --try-fix: on a PyTorch scatter whose sum follows thread
# timing, the verdict is "not explained" and the start-up hook's
# torch.use_deterministic_algorithms(True) is shown to cure it, with its
# price; under python -I the hook cannot load and the report says so; a
# program without torch is not tried.
#
# Usage: bash isolate_try_fix.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

online=$(getconf _NPROCESSORS_ONLN)
[ "$online" -ge 2 ] || skip "only $online CPU online; the scatter needs two threads to race"
"$PYTHON" -c 'import torch, numpy' 2>/dev/null || skip "$PYTHON cannot import torch and numpy"
cp "$SOURCE_DIR/tests/data/isolate/scatter.py" .

run_memdet cured isolate --try-fix --out cured --json cured.json --timeout 300 \
    --artifact 'out-{run}.npy' -- "$PYTHON" scatter.py 'out-{run}.npy'
expect_status cured 1
expect_json cured.json 'd["verdict"] == "not-explained"'
expect_json cured.json 'd["cure"]["tried"] and d["cure"]["agreed"]' "the cure was tried and agreed"
expect_json cured.json 'd["cure"]["applied_runs"] == d["cure"]["runs"] >= d["cure"]["needed"] >= 2' \
    "the hook ran in every cure run, enough of them"
expect_json cured.json 'd["cure"]["wall_time_ratio"] > 0' "the price is measured"
grep -q "CURES it" cured.out || fail "cured: the summary does not say the cure works"
checked "scatter: not explained; $(json_value cured.json 'd["cure"]["runs"]') runs with the cure agreed, price $(json_value cured.json 'round(d["cure"]["wall_time_ratio"], 2)')x"

# The user's files are untouched: the hook lives in the campaign directory.
[ -f cured/cure/sitecustomize.py ] || fail "the start-up hook is not in the campaign directory"
[ ! -e sitecustomize.py ] || fail "a sitecustomize.py was left beside the script"

# Under -I the interpreter ignores PYTHONPATH: the cure is not applied, and
# the report says so rather than claiming it.
run_memdet isolated isolate --try-fix --out isolated --json isolated.json --timeout 300 \
    --artifact 'out-{run}.npy' -- "$PYTHON" -I scatter.py 'out-{run}.npy'
expect_status isolated 1
expect_json isolated.json 'd["cure"]["tried"] and d["cure"]["applied_runs"] == 0'
grep -q "not applied" isolated.out || fail "python -I: the summary does not say the hook never ran"
checked "python -I: the hook could not load, reported as not applied"

# No torch, no cure to try.
run_memdet canary isolate --try-fix --out canary --json canary.json --timeout 120 \
    --artifact '{run_dir}/out/*' \
    -- "$MEMDET" canary sgd --threads 2 --reduce atomic --out '{run_dir}/out'
expect_status canary 1
expect_json canary.json 'not d["cure"]["tried"] and "libtorch" in d["cure"]["not_tried"]'
checked "canary: no torch, the cure was not tried"
