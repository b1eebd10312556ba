#!/usr/bin/env bash
# hugepages=hugetlb-* end to end, as root: memdet sizes the 2 MiB hugetlb
# pool with --system for a probe whose large block the preload library maps
# from it, the records show the pool's pages in use, and the pool is back to
# its old size when memdet ends, after a normal end and after a kill -9 (the
# next memdet start restores it). A pool too small for the block is
# recorded as refused, never as pinned. The 1 GiB pool is tried with one
# page. thp=madvise under --system sets the 2 MiB per-size THP mode to
# inherit for the run and puts it back.
#
# Every setting the script or memdet touches is put back on every way out.
source "$(dirname "$0")/common.bash" "$@"

POOLS=/sys/kernel/mm/hugepages
POOL_2M=$POOLS/hugepages-2048kB/nr_hugepages
POOL_1G=$POOLS/hugepages-1048576kB/nr_hugepages
THP_MODE=/sys/kernel/mm/transparent_hugepage/enabled
THP_2M=/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled
PROBE=$(dirname "$MEMDET")/tests/preload/probe_hugetlb

[ "$(id -u)" -eq 0 ] || skip "needs root to size $POOL_2M"
[ -f "$POOL_2M" ] || skip "$POOL_2M is missing (kernel without a 2 MiB hugetlb pool)"
[ -x "$PROBE" ] || fail "$PROBE is missing; build the tests"
[ -f "$(dirname "$MEMDET")/libmemdet_preload.so" ] || fail "libmemdet_preload.so is not built"

# The bracketed word of a THP mode file.
mode_of() { sed -n 's/.*\[\(.*\)\].*/\1/p' "$1"; }

original_2m=$(cat "$POOL_2M")
original_1g=$( [ -f "$POOL_1G" ] && cat "$POOL_1G")
original_thp_2m=$( [ -f "$THP_2M" ] && mode_of "$THP_2M")
if ! (echo "$original_2m" >"$POOL_2M") 2>/dev/null; then
    skip "$POOL_2M is not writable here"
fi

export MEMDET_JOURNAL_DIR=$SCRATCH/journal

cleanup() {
    local file
    for file in "$SCRATCH"/*.pid; do
        [ -f "$file" ] && kill -9 "$(cat "$file")" 2>/dev/null
    done
    sleep 0.2
    echo "$original_2m" >"$POOL_2M"
    [ -n "$original_1g" ] && echo "$original_1g" >"$POOL_1G"
    [ -n "$original_thp_2m" ] && echo "$original_thp_2m" >"$THP_2M"
    cd / && rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pool() { tr -d '[:space:]' <"$POOL_2M"; }

wait_for() {
    local tenths=$(($1 * 10))
    shift
    for _ in $(seq 1 "$tenths"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

pool_is() { [ "$(pool)" = "$1" ]; }
alive() { kill -0 "$(cat "$1")" 2>/dev/null; }

kill_nine() {
    kill -9 "$(cat "$1")" 2>/dev/null
    wait_for 10 eval "! alive $1" || fail "pid $(cat "$1") survived SIGKILL"
    rm -f "$1"
}

# The test starts from an empty pool, whatever the machine had.
echo 0 >"$POOL_2M"

# 1. Without --system an empty pool is a bad request that says how to fill it.
run_memdet empty run --pin hugepages=hugetlb-2M -- "$PROBE" keep 8
expect_status empty 125
expect_one_memdet_line empty "echo N > $POOL_2M"
run_memdet no_system run --pin hugepages=hugetlb-2M:8 -- "$PROBE" keep 8
expect_status no_system 125
expect_one_memdet_line no_system "add --system"
pool_is 0 || fail "a refused request changed $POOL_2M to $(pool)"
checked "hugetlb without a pool, or a pool size without --system, stops before any run"

# 2. memdet sizes the pool; the probe's 8 MiB block comes from it.
run_memdet sized check -n 2 --json sized.json --pin hugepages=hugetlb-2M:16 --system -- \
    sh -c "cat $POOL_2M; exec $PROBE keep 8"
expect_status sized 0
hugepages='[f for r in d["runs"] for f in r["factors"] if f["name"] == "hugepages"]'
expect_json sized.json "len($hugepages) == 2 and all(f['applied'] == 'applied' and f['verified'] == 'verified' and f['measured'] == 'hugetlb pages in use' for f in $hugepages)" \
    "hugetlb use verified in both runs"
expect_json sized.json "all('blocks from the 2 MiB pool: 1' in f['observed'] for f in $hugepages)" \
    "one block from the pool in each run"
seen='[open(r["dir"] + "/stdout.txt").read().split() for r in d["runs"]]'
expect_json sized.json "all(s[0] == '16' and int(s[2]) > 0 for s in $seen)" \
    "the workload saw a 16-page pool and hugetlb pages in its own smaps_rollup"
pool_is 0 || fail "$POOL_2M reads $(pool) after memdet check, expected 0"
checked "memdet check sized the 2 MiB pool to 16 pages, the probe used it, the pool is back at 0"

# 3. realloc, calloc and posix_memalign over pool blocks, with heap offsets.
run_memdet cycle run --pin hugepages=hugetlb-2M:16 --pin heap=16 --system -- "$PROBE" cycle 4
expect_status cycle 0
grep -qx ok cycle.out || { cat cycle.out cycle.err >&2; fail "probe_hugetlb cycle failed"; }
grep -q "hugepages pinned hugetlb-2M:16: verified" cycle.err ||
    { cat cycle.err >&2; fail "the cycle run was not verified"; }
pool_is 0 || fail "$POOL_2M reads $(pool) after the cycle run"
checked "grown, shrunk and moved pool blocks kept their data"

# 4. A pool too small for the block: recorded as refused, not as pinned.
run_memdet small run --json small.json --pin hugepages=hugetlb-2M:1 --system -- "$PROBE" keep 8
expect_status small 0
expect_json small.json '[f["applied"] for f in d["factors"] if f["name"] == "hugepages"] == ["refused"]' \
    "a run whose pool had no room is refused"
grep -q "hugepages refused: the 2 MiB pool had no room" small.err ||
    { cat small.err >&2; fail "the refusal does not say why"; }
pool_is 0 || fail "$POOL_2M reads $(pool) after the refused run"
checked "a 1-page pool for an 8 MiB block: recorded as refused, with the reason"

# 5. kill -9 of memdet while it holds the pool: the next start restores it.
background() { ("$@" &) 2>/dev/null; }
background timeout -s KILL 120 bash -c 'echo $$ >"$0.pid"; exec "$@" >"$0.out" 2>"$0.err"' \
    killed "$MEMDET" run --pin hugepages=hugetlb-2M:16 --system -- \
    sh -c 'echo $$ >"$0"; exec "$1" keep 8 30' "$SCRATCH/workload.pid" "$PROBE"
wait_for 30 test -s workload.pid || { cat killed.err >&2; fail "the workload never started"; }
wait_for 5 pool_is 16 || { cat killed.err >&2; fail "$POOL_2M reads $(pool) during the run"; }
kill_nine killed.pid
kill_nine workload.pid
pool_is 16 || fail "$POOL_2M reads $(pool) right after kill -9, expected 16"
run_memdet after_kill run -- true
expect_status after_kill 0
grep -q "^memdet: restored $POOL_2M to 0" after_kill.err ||
    { cat after_kill.err >&2; fail "memdet run did not report restoring the pool"; }
pool_is 0 || fail "$POOL_2M reads $(pool) after the recovery, expected 0"
checked "after kill -9 the pool stayed at 16 pages until the next memdet start put back 0"

# 6. The 1 GiB pool, if the kernel can make one page now.
if [ -f "$POOL_1G" ] && (echo 1 >"$POOL_1G") 2>/dev/null && [ "$(cat "$POOL_1G")" = 1 ]; then
    echo "$original_1g" >"$POOL_1G"
    run_memdet gigantic run --json gigantic.json --pin hugepages=hugetlb-1G:1 --system -- \
        "$PROBE" keep 1024
    expect_status gigantic 0
    expect_json gigantic.json '[f.get("verified") for f in d["factors"] if f["name"] == "hugepages"] == ["verified"]' \
        "a 1 GiB block from the 1 GiB pool"
    [ "$(cat "$POOL_1G")" = "$original_1g" ] || fail "$POOL_1G reads $(cat "$POOL_1G") after the run"
    checked "hugetlb-1G:1: the 1 GiB block came from a one-page pool, put back after"
else
    [ -f "$POOL_1G" ] && echo "$original_1g" >"$POOL_1G"
    echo "skip: the kernel grants no 1 GiB page now (memory too fragmented, or no 1 GiB pool)"
fi

# 7. thp=madvise under --system: the 2 MiB per-size mode follows it for the run.
if [ -f "$THP_2M" ] && [ "$(mode_of "$THP_MODE")" != never ]; then
    thp=$(mode_of "$THP_MODE")
    echo never >"$THP_2M"
    run_memdet thp run --pin "thp=$thp" --system -- cat "$THP_2M"
    expect_status thp 0
    grep -q '\[inherit\]' thp.out || fail "the workload saw '$(cat thp.out)' in $THP_2M"
    grep -q "thp pinned $thp: verified" thp.err || { cat thp.err >&2; fail "thp not verified"; }
    [ "$(mode_of "$THP_2M")" = never ] || fail "$THP_2M reads $(mode_of "$THP_2M") after the run"
    echo "$original_thp_2m" >"$THP_2M"
    checked "thp=$thp --system: hugepages-2048kB was inherit during the run and never after"
else
    echo "skip: no per-size THP files, or THP is never here"
fi

echo "PASS: memdet sizes the hugetlb pool, the probe used it, every setting came back"
