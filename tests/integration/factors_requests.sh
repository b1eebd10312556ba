#!/bin/bash
# Bad factor requests stop before any run, with one line naming the factor
# and memdet's usage-error status: 2 in check, 125 in run.
#
# Usage: bash factors_requests.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

# bad NAME FACTOR-WORD ARGS...: check and run both refuse, naming FACTOR-WORD.
bad() {
    local name=$1 word=$2
    shift 2
    run_memdet "$name" check -n 2 --out "$name.campaign" "$@" -- /bin/true
    expect_status "$name" 2
    [ "$(wc -l <"$name.err")" -eq 1 ] || fail "$name: more than one line: $(cat "$name.err")"
    grep -q -- "$word" "$name.err" || fail "$name: the message does not name $word: $(cat "$name.err")"
    [ ! -e "$name.campaign" ] || fail "$name: a run started"
    run_memdet "$name.run" run "$@" -- /bin/true
    expect_status "$name.run" 125
    grep -q -- "$word" "$name.run.err" || fail "$name: run's message does not name $word"
    checked "$name: $(cat "$name.err")"
}

bad unknown_factor bogus --pin bogus
bad unknown_value heap --pin heap=17
bad no_perturbation thp --perturb thp
bad mlock_perturbed mlock --perturb mlock
bad contradiction heap --pin heap --perturb heap
bad stack_without_aslr stack --pin stack
bad stack_entries stack --pin aslr --pin stack=100@99999999
bad thp_never_huge hugepages --pin thp=never --pin hugepages=huge
bad thp_system thp --pin thp=always
bad numa_node numa --pin numa=bind:7
bad balancing_without_system numa-balancing --pin numa-balancing=0
bad bad_seed seed --seed nope --pin heap
bad empty_seed seed --seed '' --pin heap
if [ ! -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 ] &&
    [ ! -e /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4 ]; then
    bad tcmalloc_missing tcmalloc --pin allocator=tcmalloc
fi
nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
if [ "$nodes" -lt 2 ]; then
    bad numa_perturbed numa --perturb numa
fi

# `all` goes on where a factor cannot vary here, and says so.
run_memdet all check -n 2 --json all.json --pin all -- /bin/true
expect_status all 0
expect_json all.json '"mlock" not in [f["name"] for f in d["profile"]["factors"]]' "mlock is not part of all"
if [ "$nodes" -lt 2 ]; then
    expect_json all.json '[f["applied"] for f in d["profile"]["factors"] if f["name"] == "numa"] == ["not applicable"]' \
        "numa is not applicable on one node"
fi
checked "--pin all runs, with what does not apply recorded"
