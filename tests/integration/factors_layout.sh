#!/bin/bash
# The layout factors end to end, on a probe that prints its stack and heap
# addresses and an alignment-dependent float sum: pinned, every run prints
# the same; perturbed, every run differs from the reference run 1, and the
# records say what verification saw from the child's side.
#
# Usage: bash factors_layout.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

PROBE=$(dirname "$MEMDET")/tests/layout_probe
[ -x "$PROBE" ] || fail "$PROBE is missing; build the tests"
[ -f "$(dirname "$MEMDET")/libmemdet_preload.so" ] || fail "libmemdet_preload.so is not built"

# distinct FILE KEY: how many different values of "KEY value" lines the runs printed.
distinct() {
    json_value "$1" "len(set(open(r['dir'] + '/stdout.txt').read().split('$2 ')[1].split()[0] for r in d['runs']))"
}

# ASLR pinned: the stack starts at one address in every run.
run_memdet aslr check -n 3 --json aslr.json --pin aslr -- "$PROBE"
expect_json aslr.json 'all(f["verified"] == "verified" for r in d["runs"] for f in r["factors"] if f["name"] == "aslr")' \
    "aslr verified at the exec stop in every run"
[ "$(distinct aslr.json stack)" = 1 ] || fail "stack address moved with ASLR pinned"
checked "aslr pinned: one stack address in 3 runs, verified"

# ASLR perturbed: left on, so the layout moves, and it is marked not replayable.
run_memdet aslr_free check -n 3 --json aslr_free.json --perturb aslr -- "$PROBE"
expect_status aslr_free 1
expect_json aslr_free.json 'all(not f["replayable"] for r in d["runs"][1:] for f in r["factors"] if f["name"] == "aslr")' \
    "perturbed ASLR is recorded as not replayable"
checked "aslr perturbed: runs differ, recorded as not replayable"

# Stack pinned with ASLR: one startstack; perturbed: each run's differs from run 1's.
run_memdet stack check -n 3 --json stack.json --pin aslr --pin stack -- "$PROBE"
expect_status stack 0
stack_starts='[f["measured"] for r in d["runs"] for f in r["factors"] if f["name"] == "stack"]'
expect_json stack.json "len(set($stack_starts)) == 1" "one startstack with stack pinned"
run_memdet stack_moved check -n 4 --json stack_moved.json --pin aslr --perturb stack --seed 5 \
    --no-stdout --artifact '{run_dir}/none' -- "$PROBE"
expect_json stack_moved.json "all(s != $stack_starts[0] for s in $stack_starts[1:])" \
    "every perturbed startstack differs from the reference"
expect_json stack_moved.json 'not any(r["factor_problems"] for r in d["runs"])' "no factor problems"
checked "stack: pinned holds startstack, perturbed moves it in every run"

# Heap pinned: every allocation at offset 0 mod 64, one aligned sum.
run_memdet heap check -n 3 --json heap.json --pin aslr --pin heap --mask 'heap 0x[0-9a-f]+' -- "$PROBE"
expect_status heap 0
expect_json heap.json 'all(f["verified"] == "verified" for r in d["runs"] for f in r["factors"] if f["name"] == "heap")' \
    "heap class verified from the preload report"
[ "$(distinct heap.json aligned_sum)" = 1 ] || fail "the aligned sum moved with the heap pinned"
checked "heap pinned: one aligned sum in 3 runs"

# Heap perturbed: each run's class differs from run 1's, and so does the sum.
run_memdet heap_moved check -n 4 --json heap_moved.json --pin aslr --perturb heap --seed 11 -- "$PROBE"
expect_status heap_moved 1
sums='[open(r["dir"] + "/stdout.txt").read().split("aligned_sum ")[1].split()[0] for r in d["runs"]]'
expect_json heap_moved.json "all(s != $sums[0] for s in $sums[1:])" \
    "every perturbed run's aligned sum differs from the reference"
mods='[open(r["dir"] + "/stdout.txt").read().split("heap_mod64 ")[1].split()[0] for r in d["runs"]]'
expect_json heap_moved.json "$mods[0] == '0' and all(m != '0' for m in $mods[1:])" \
    "the probe saw its allocation move off the cache line"
checked "heap perturbed: the alignment-dependent sum changed in every perturbed run"

# Same seed, same perturbed values.
run_memdet heap_again check -n 4 --json heap_again.json --pin aslr --perturb heap --seed 11 -- "$PROBE"
values='[f["value"] for r in d["runs"] for f in r["factors"] if f["name"] == "heap"]'
first=$(json_value heap_moved.json "$values")
second=$(json_value heap_again.json "$values")
[ "$first" = "$second" ] || fail "seed 11 gave $first, then $second"
checked "heap: the same seed gives the same values ($first)"

# Uninitialised memory: pinned, the fresh byte is the pattern; perturbed, it moves.
run_memdet uninit check -n 3 --json uninit.json --pin uninit=7 -- "$PROBE"
bytes='[open(r["dir"] + "/stdout.txt").read().split("fresh_byte ")[1].split()[0] for r in d["runs"]]'
expect_json uninit.json "$bytes == ['7', '7', '7']" "fresh memory holds the pattern"
run_memdet uninit_moved check -n 3 --json uninit_moved.json --perturb uninit --seed 3 -- "$PROBE"
expect_json uninit_moved.json "$bytes[0] == '165' and all(b != '165' for b in $bytes[1:])" \
    "perturbed patterns differ from the reference 0xA5"
checked "uninit: pinned pattern seen in fresh memory, perturbed pattern moves"

# A program that leaves through _exit (os._exit) runs no destructors; the
# library still reports, so the factor is verified, not refused.
if [ -x /usr/bin/python3 ]; then
    run_memdet quick_exit run --pin uninit --json quick_exit.json -- /usr/bin/python3 -c 'import os; os._exit(3)'
    expect_status quick_exit 3
    expect_json quick_exit.json '[f["verified"] for f in d["factors"] if f["name"] == "uninit"] == ["verified"]' \
        "the preload report came from a process that ended through _exit"
    checked "a program ending in os._exit still has its factors verified"
fi

# Replay: a recorded perturbed run repeats with the same values.
run_memdet once run --json once.json --pin aslr --perturb heap --seed 9 -- "$PROBE"
expect_status once 0
run_memdet replayed run --replay once.json
expect_status replayed 0
cmp -s once.out replayed.out || fail "the replayed run printed something else: $(diff once.out replayed.out)"
checked "run --replay repeats a perturbed heap run exactly"

# env: a command that sets PYTHONHASHSEED itself overrides the perturbation,
# and the record says so instead of calling it applied.
run_memdet env_override check -n 2 --json env_override.json --perturb env \
    -- /usr/bin/env PYTHONHASHSEED=0 /usr/bin/python3 -c 'print(hash("abc"))'
expect_status env_override 0
expect_json env_override.json '[f["observed"] for f in d["runs"][1]["factors"] if f["name"] == "env"][0].startswith("overridden by the command")' \
    "the perturbed run reports the command's own PYTHONHASHSEED"
expect_json env_override.json 'len(d["runs"][1]["factor_problems"]) == 1' \
    "the perturbed run is flagged as proving nothing"
run_memdet env_moved check -n 2 --json env_moved.json --perturb env \
    -- /usr/bin/python3 -c 'print(hash("abc"))'
expect_status env_moved 1
checked "env: an overriding command is reported, a plain one changes hash('abc')"

# cpu: each created thread on its own CPU; perturbed, the order changes. The
# canary works on its main thread too, so three threads create two.
if [ "$(nproc)" -ge 2 ]; then
    canary=(-- "$MEMDET" canary sgd --threads 3 --reduce ordered --steps 5 --out '{run_dir}/out')
    run_memdet cpu check -n 2 --json cpu.json --pin cpu --no-stdout --artifact '{run_dir}/out/*' "${canary[@]}"
    expect_status cpu 0
    placements='[f["observed"].split("ordinal:CPU ")[1] for r in d["runs"] for f in r["factors"] if f["name"] == "cpu"]'
    expect_json cpu.json "all(f['verified'] == 'verified' for r in d['runs'] for f in r['factors'] if f['name'] == 'cpu')" \
        "thread placement verified from the thread log"
    expect_json cpu.json "len(set($placements)) == 1 and ':0' in $placements[0] and ':1' in $placements[0]" \
        "both CPUs used, the same way in both runs"
    run_memdet cpu_moved check -n 2 --json cpu_moved.json --perturb cpu --no-stdout \
        --artifact '{run_dir}/out/*' "${canary[@]}"
    expect_json cpu_moved.json "$placements[0] != $placements[1]" "the perturbed run placed its threads differently"
    checked "cpu: threads pinned in creation order, perturbed order differs ($(json_value cpu_moved.json "$placements"))"
fi

# Replay of a check run: the same stack, from the same folder, with the
# recorded byte total and entry count.
run_memdet campaign check -n 3 --out campaign --pin all --perturb stack --seed 3 -- "$PROBE"
(cd / && timeout "$LIMIT_SECONDS" "$MEMDET" run --replay "$SCRATCH/campaign/run-03" \
    >"$SCRATCH/replay3.out" 2>"$SCRATCH/replay3.err")
want=$(grep '^stack ' campaign/run-03/stdout.txt)
got=$(grep '^stack ' replay3.out)
[ "$want" = "$got" ] || fail "replaying run 03 gave '$got', the run printed '$want'"
! grep -q "not reproduced" replay3.err || fail "replay: $(cat replay3.err)"
checked "run --replay of a check run starts the stack where the run did ($got)"
