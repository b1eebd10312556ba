#!/bin/bash
# memdet run --fingerprint and memdet diff over two run directories: ASLR
# pinned gives equal virtual layouts and perturbed different ones, a heap
# perturbation moves addresses but keeps the size sequence, and a program
# that allocates in another order is caught at the allocation it changed.
#
# Usage: bash fingerprint.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

PROBE=$(dirname "$MEMDET")/tests/preload/probe_fingerprint
[ -x "$PROBE" ] || fail "$PROBE is not built"
[ -f "$(dirname "$MEMDET")/libmemdet_preload.so" ] || fail "libmemdet_preload.so is not built"
setarch -R true 2>/dev/null || skip "personality(ADDR_NO_RANDOMIZE) is refused here"

# record NAME ARGS...: one fingerprinted run of the probe into run_NAME
# (all names the same length, so the runs' environments are too).
record() {
    local name=$1
    shift
    run_memdet "rec_$name" run "$@" --fingerprint "run_$name" -- "$PROBE" "${PROBE_ARGS[@]}"
    expect_status "rec_$name" 0
    grep -q "fingerprint in .*run_$name: [0-9]* allocations" "rec_$name.err" ||
        fail "run $name printed no fingerprint line: $(cat "rec_$name.err")"
}

# compare A B WANT: memdet diff --json run_A run_B into diff_A_B.json.
compare() {
    run_memdet "diff_$1_$2" diff --json "run_$1" "run_$2"
    expect_status "diff_$1_$2" "$3"
    cp "diff_$1_$2.out" "diff_$1_$2.json"
}

PROBE_ARGS=(same exit)
record p1 --pin aslr
record p2 --pin aslr
record r1 --perturb aslr
record h1 --pin aslr --pin heap
record h2 --pin aslr --perturb heap
PROBE_ARGS=(swap exit 300)
record s1 --pin aslr

compare p1 p2 0
expect_json diff_p1_p2.json 'd["fingerprint"]["processes"][0]["layout_equal"] is True' \
    "two runs with ASLR pinned: equal virtual layouts"
expect_json diff_p1_p2.json 'd["fingerprint"]["processes"][0]["sizes_equal"]'
checked "aslr pinned twice: the same layout digest"

compare p1 r1 1
expect_json diff_p1_r1.json 'd["fingerprint"]["processes"][0]["layout_equal"] is False' \
    "ASLR on: the layout must differ"
expect_json diff_p1_r1.json 'd["fingerprint"]["processes"][0]["sizes_equal"]' \
    "ASLR changes no allocation size"
checked "aslr perturbed: another layout digest, the same size sequence"

compare h1 h2 1
expect_json diff_h1_h2.json 'd["fingerprint"]["processes"][0]["sizes_equal"]' \
    "heap perturbed: the size sequence stays"
expect_json diff_h1_h2.json 'not d["fingerprint"]["processes"][0]["addresses_equal"]' \
    "heap perturbed: the addresses must change"
checked "heap perturbed: addresses change, sizes do not"

compare p1 s1 1
expect_json diff_p1_s1.json 'not d["fingerprint"]["processes"][0]["sizes_equal"]'
expect_json diff_p1_s1.json \
    '(d["fingerprint"]["processes"][0]["divergence"]["exact"] and
      d["fingerprint"]["processes"][0]["divergence"]["index"] == 301)' \
    "the first differing allocation is the probe's 302nd (the 8 MiB block comes first)"
expect_json diff_p1_s1.json \
    '(d["fingerprint"]["processes"][0]["divergence"]["a"]["size"] !=
      d["fingerprint"]["processes"][0]["divergence"]["b"]["size"] and
      "probe_fingerprint+0x" in d["fingerprint"]["processes"][0]["divergence"]["a"]["caller"])' \
    "the diff names both sizes and the caller in the probe"
run_memdet diff_text diff run_p1 run_s1
expect_status diff_text 1
grep -q "first at allocation 301: .* bytes (malloc from .*probe_fingerprint+0x" diff_text.out ||
    fail "the text report does not name the allocation: $(cat diff_text.out)"
checked "another allocation order: the diff names allocation 301, its sizes and caller"

# A process killed by SIGKILL leaves its running digests.
PROBE_ARGS=(same kill)
run_memdet rec_k1 run --pin aslr --fingerprint run_k1 -- "$PROBE" same kill
expect_status rec_k1 137
grep -q "running digests only" rec_k1.err || fail "a killed run: $(cat rec_k1.err)"
compare p1 k1 1
expect_json diff_p1_k1.json '"killed" in d["fingerprint"]["processes"][0]["problem"]'
checked "SIGKILL: the live file stands in, and the diff says so"
