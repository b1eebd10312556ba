#!/bin/bash
# memdet check and memdet demo on the built-in SGD canary: the atomic
# reduction must be caught differing, with numeric evidence on its weights,
# and the ordered one must repeat and get the documented chance bound.
#
# Usage: bash check_canary.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

# Two threads racing on atomic adds need two CPUs to interleave at all.
online=$(getconf _NPROCESSORS_ONLN)
[ "$online" -ge 2 ] || skip "only $online CPU online; the atomic canary needs two to race"

# Atomic: twenty runs leave a vanishing chance that every run happens to add
# in the same order, and the batch ends at the first difference anyway.
run_memdet atomic check -n 20 --stop-at-first-difference --timeout 120 --out atomic \
    --json atomic.json --artifact '{run_dir}/out/*' \
    -- "$MEMDET" canary sgd --threads 2 --reduce atomic --out '{run_dir}/out'
expect_status atomic 1
expect_json atomic.json 'd["result"]["verdict"] == "differs"'
expect_json atomic.json 'd["result"]["exit_status"] == 1'
expect_json atomic.json 'len(d["outcomes"]) >= 2' "at least two outcomes"
expect_json atomic.json 'sum(o["reference"] for o in d["outcomes"]) == 1' "exactly one reference"
weights='[c for o in d["outcomes"] if not o["reference"] for c in o["vs_reference"]
          if c["key"].endswith("/weights.npy")]'
expect_json atomic.json "len($weights) >= 1" "weights.npy compared in a non-reference outcome"
expect_json atomic.json "all(c['kind'] == 'numeric' for c in $weights)" \
    "weights.npy compared numerically"
expect_json atomic.json "all(c['numeric']['differing'] > 0 for c in $weights)" \
    "weights.npy has differing elements"
expect_json atomic.json "all(c['numeric']['max_ulp'] > 0 for c in $weights)" \
    "weights.npy differs by at least one ULP"
runs=$(json_value atomic.json 'len(d["runs"])')
ulp=$(json_value atomic.json "max(c['numeric']['max_ulp'] for c in $weights)")
checked "atomic canary: exit 1, verdict differs after $runs runs, weights.npy numeric, max ULP $ulp"

# Ordered: five identical runs give 1 - 0.05^(1/4) as the bound, and 30
# runs are what it takes to push it under 10 %.
run_memdet ordered check -n 5 --timeout 120 --out ordered --json ordered.json \
    --artifact '{run_dir}/out/*' \
    -- "$MEMDET" canary sgd --threads 2 --reduce ordered --out '{run_dir}/out'
expect_status ordered 0
expect_json ordered.json 'd["result"]["verdict"] == "no_difference_seen"'
expect_json ordered.json 'd["result"]["completed_runs"] == 5'
expect_json ordered.json 'len(d["outcomes"]) == 1' "one outcome"
expect_json ordered.json 'abs(d["result"]["difference_probability_below"] - 0.527129) < 1e-4' \
    "difference_probability_below is 1 - 0.05^(1/4) = 0.5271"
expect_json ordered.json 'd["result"]["runs_for_10_percent"] == 30'
expect_json ordered.json 'd["result"]["confidence"] == 0.95'
checked "ordered canary: exit 0, no_difference_seen, bound 0.527 at N=5, 30 runs for 10 %"

# The demo runs isolate on the atomic and ordered SGD and on a workload
# whose result follows ASLR.
run_memdet demo demo --out demo
expect_status demo 0
grep -Eq -- '- atomic: it differs even with every factor pinned' demo.out ||
    { cat demo.out >&2; fail "demo: stdout does not say the atomic canary differs when pinned"; }
grep -Eq -- '- ordered: reproducible as run' demo.out ||
    { cat demo.out >&2; fail "demo: stdout does not say the ordered canary repeats"; }
grep -Eq -- '- address order: ASLR is named' demo.out ||
    { cat demo.out >&2; fail "demo: stdout does not name ASLR"; }
for kind in atomic ordered aslr; do
    [ -f "demo/$kind/isolate.json" ] || fail "demo: no isolate.json under demo/$kind"
done
checked "demo: exit 0, atomic not explained, ordered reproducible, ASLR named, records under --out"

echo "PASS: check_canary"
