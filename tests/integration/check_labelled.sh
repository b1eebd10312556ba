#!/bin/bash
# memdet check on the labelled canaries (memdet canary cause KIND), each of
# which differs for one known reason: with every factor pinned each repeats
# (but atomic, which races), with its own factor perturbed every perturbed
# run differs from run 1, and with another factor perturbed it still
# repeats.
#
# Usage: bash check_labelled.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

[ -f "$(dirname "$MEMDET")/libmemdet_preload.so" ] || fail "libmemdet_preload.so is not built"
[ "$(cat /proc/sys/kernel/randomize_va_space)" != 0 ] ||
    skip "ASLR is off on this host (kernel.randomize_va_space=0); the aslr canary needs it"
[ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] ||
    skip "one CPU online: the threads factor has no other count to perturb to"
ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    >/dev/null 2>&1 || skip "jemalloc or tcmalloc is missing: apt-get install libjemalloc2 \
libtcmalloc-minimal4"

RUNS=6

# campaign NAME KIND ARGS...: memdet check of RUNS runs of the KIND canary
# under the factor options ARGS, comparing its result.txt.
campaign() {
    local name=$1 kind=$2
    shift 2
    run_memdet "$name" check -n "$RUNS" --timeout 60 --out "$name" --json "$name.json" \
        --artifact '{run_dir}/out/result.txt' "$@" \
        -- "$MEMDET" canary cause "$kind" --out '{run_dir}/out'
    expect_json "$name.json" "d['result']['completed_runs'] == $RUNS" "$name: all $RUNS runs completed"
}

# differing NAME: how many runs gave another result than run 1.
differing() {
    json_value "$1.json" \
        'sum(len(o["runs"]) for o in d["outcomes"] if not o["reference"])'
}

# repeats NAME KIND ARGS...: every run of KIND under ARGS gives one result.
repeats() {
    local name=$1
    campaign "$@"
    expect_status "$name" 0
    expect_json "$name.json" 'len(d["outcomes"]) == 1' "$name: one outcome"
}

# Requirement: with every factor pinned, one result.
for kind in heap aslr threads uninit allocator none; do
    repeats "pinned_$kind" "$kind" --pin all
done
checked "pinned: heap, aslr, threads, uninit, allocator, none each repeat in $RUNS runs"

# Requirement: the canary's own factor perturbed, every perturbed run differs.
for kind in heap aslr threads uninit allocator; do
    campaign "own_$kind" "$kind" --pin all --perturb "$kind"
    expect_status "own_$kind" 1
    count=$(differing "own_$kind")
    [ "$count" -eq $((RUNS - 1)) ] ||
        fail "$kind canary, $kind perturbed: $count of $((RUNS - 1)) perturbed runs differ"
done
checked "perturbed: each canary's own factor changes all $((RUNS - 1)) perturbed runs"

# Scheduling inside the program: nothing memdet pins orders the racing adds.
# A repeat of run 1's exact bits is rare but possible, so one is allowed.
campaign atomic atomic --pin all
expect_status atomic 1
count=$(differing atomic)
[ "$count" -ge $((RUNS - 2)) ] ||
    fail "atomic canary, all pinned: only $count of $((RUNS - 1)) runs differ from run 1"
checked "atomic: $count of $((RUNS - 1)) runs differ from run 1 with every factor pinned"

# Another factor perturbed: still one result. Each pair is one a careless
# canary would get wrong: the heap offset beneath another allocator, the
# allocator's order under other offsets or another layout, and so on.
for pair in heap:allocator heap:aslr aslr:heap aslr:stack allocator:heap allocator:aslr \
    uninit:aslr uninit:heap threads:cpu none:uninit; do
    kind=${pair%%:*} factor=${pair#*:}
    repeats "cross_${kind}_$factor" "$kind" --pin all --perturb "$factor"
done
checked "cross: heap, aslr, allocator, uninit, threads, none repeat under other factors"

# Free runs: ASLR is on, so the aslr canary differs and the others repeat.
campaign free_aslr aslr
expect_status free_aslr 1
for kind in heap allocator uninit; do
    repeats "free_$kind" "$kind"
done
checked "free: aslr differs, heap, allocator and uninit repeat"

echo "PASS: check_labelled"
