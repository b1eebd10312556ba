#!/bin/bash
# memdet isolate on the built-in labelled workloads, each with one known
# cause: the verdict names that cause, blames no other factor, and never
# calls a workload whose free runs differ reproducible.
#
# Usage: bash isolate_labelled.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

online=$(getconf _NPROCESSORS_ONLN)
[ "$online" -ge 2 ] || skip "only $online CPU online; the atomic workload needs two to race"
[ "$(cat /proc/sys/kernel/randomize_va_space)" != 0 ] ||
    skip "ASLR is off on this machine (randomize_va_space 0): the aslr workload cannot move"
for library in libjemalloc.so.2 libtcmalloc_minimal.so.4; do
    [ -e "/usr/lib/x86_64-linux-gnu/$library" ] ||
        skip "$library is not installed; the allocator factor needs it"
done

# isolate_kind KIND STATUS VERDICT BLAMED CAUSE: BLAMED is the one factor
# found to change the result ("" for none) and CAUSE how.
isolate_kind() {
    local kind=$1 want_status=$2 verdict=$3 blamed=$4 cause=$5
    run_memdet "$kind" isolate --out "$kind" --json "$kind.json" --timeout 120 \
        --artifact '{run_dir}/out/result.txt' \
        -- "$MEMDET" canary cause "$kind" --out '{run_dir}/out'
    expect_status "$kind" "$want_status"
    expect_json "$kind.json" "d['verdict'] == '$verdict'" "$kind: verdict $verdict"
    expect_json "$kind.json" \
        "[f['name'] for f in d['factors'] if f['status'] == 'changes-result'] == \
         ([] if '$blamed' == '' else ['$blamed'])" "$kind: blames exactly '$blamed'"
    if [ -n "$blamed" ]; then
        expect_json "$kind.json" \
            "next(f for f in d['factors'] if f['name'] == '$blamed')['cause'] == '$cause'" \
            "$kind: $blamed's cause is $cause"
    fi
    if [ "$verdict" = reproducible ]; then
        expect_json "$kind.json" "d['free']['differing_from_first'] == 0" \
            "$kind: called reproducible, so its free runs agreed"
    fi
    checked "$kind: $verdict${blamed:+, $blamed ($cause)} in $(json_value "$kind.json" 'd["runs"]') runs"
}

isolate_kind none 0 reproducible "" ""
isolate_kind heap 1 reproducible heap value
isolate_kind allocator 1 reproducible allocator value
isolate_kind threads 1 reproducible threads value
isolate_kind uninit 1 reads-uninitialised-memory uninit value
isolate_kind aslr 1 layout-or-timing-dependent aslr layout-not-replayable
isolate_kind atomic 1 not-explained "" ""
isolate_kind entropy 1 missed-seed entropy value
isolate_kind clock 1 missed-seed clock value
isolate_kind fileorder 1 depends-on-directory-order fileorder value

# The read that matters is named: the entropy workload's random_device
# draws, the clock workload's system_clock read.
expect_json entropy.json "d['seed_reads'][0]['found'] and d['seed_reads'][0]['source'] == 'random_device'" \
    "entropy: the random_device read named"
expect_json clock.json "d['seed_reads'][0]['found'] and 'system_clock' in d['seed_reads'][0]['source']" \
    "clock: the system_clock read named"
expect_json fileorder.json "d['listing_search']['found'] and d['listings'][0]['directory'].endswith('/values')" \
    "fileorder: the listing of values/ named"
checked "the seed reads and the listing named"

# The free runs of the aslr workload differ; pinning ASLR alone was shown
# to be enough.
expect_json aslr.json 'd["free"]["differing_from_first"] > 0'
expect_json aslr.json 'd["pinning_enough"]["pinned"] == ["aslr"] and d["pinning_enough"]["shown"]' \
    "pinning aslr shown to be enough"
checked "aslr: pinning it alone was enough ($(json_value aslr.json 'd["pinning_enough"]["runs"]') runs agreed)"
