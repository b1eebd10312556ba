#!/bin/bash
# Counters on every run: `memdet run --json` and every run record of
# `memdet check` carry a "counters" object (perf counters or why not,
# rusage, system-wide vmstat deltas); check summarises them across runs,
# and a bad --counter-rule stops before any run.
#
# Usage: bash counters.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

PROBE=$(dirname "$MEMDET")/tests/fresh_pages
[ -x "$PROBE" ] || fail "$PROBE is not built"

# Whether this host shows a core PMU decides what the hardware counters say.
pmu=False
for device in cpu cpu_core cpu_atom; do
    [ -e "/sys/bus/event_source/devices/$device" ] && pmu=True
done

# --- run --json

run_memdet run run --json run.json -- "$PROBE" 2000
expect_status run 0
expect_json run.json '"counters" in d and d["counters"]["measured"]' "the run record has counters"
expect_json run.json 'd["counters"]["events"]["page-faults"]["supported"]'
expect_json run.json 'd["counters"]["events"]["page-faults"]["value"] >= 2000' \
    "2000 fresh pages are at least 2000 page faults"
expect_json run.json 'd["counters"]["events"]["task-clock"]["unit"] == "ns"'
expect_json run.json 'd["counters"]["rusage"]["minor_faults"] >= 2000'
expect_json run.json 'd["counters"]["vmstat"]["scope"] == "system-wide"'
expect_json run.json '"compact_stall" in d["counters"]["vmstat"]["delta"]'
# Whatever is not supported says why, and is never a bare 0.
expect_json run.json 'all(e["supported"] == ("value" in e) and (e["supported"] or e["reason"])
                          for e in d["counters"]["events"].values())' \
    "every counter has a value or a reason"
if [ "$pmu" = False ]; then
    expect_json run.json '(d["counters"]["events"]["cycles"] ==
                           {"supported": False, "reason": "no hardware PMU visible"})'
    # Said once, inside the one status line.
    [ "$(wc -l <run.err)" -eq 1 ] || { cat run.err >&2; fail "run: stderr is not one line"; }
    grep -q 'hardware counters not supported (no hardware PMU visible)' run.err ||
        { cat run.err >&2; fail "run: the status line does not name the missing counters"; }
    checked "run --json: page faults counted, cycles not supported: no hardware PMU visible"
else
    checked "run --json: page faults counted (this host has a core PMU)"
fi

run_memdet quiet run --no-counters --json quiet.json -- "$PROBE" 10
expect_status quiet 0
expect_json quiet.json 'd["counters"]["measured"] is False and "events" not in d["counters"]'
expect_json quiet.json 'd["counters"]["rusage"]["minor_faults"] > 0' \
    "rusage is kept without counters"
grep -q 'not supported' quiet.err && fail "quiet: --no-counters still names unsupported counters"
checked "run --no-counters: no perf counters, rusage kept"

# --- Unprivileged: switches and migrations are not supported, never 0.

paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo unknown)
if [ "$(id -u)" -eq 0 ] && [ "$paranoid" = 2 ] && command -v setpriv >/dev/null; then
    # nobody must reach the folder it writes its record into.
    chmod 711 "$SCRATCH"
    mkdir -m 777 unprivileged
    timeout "$LIMIT_SECONDS" setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$MEMDET" run --json unprivileged/run.json -- "$PROBE" 1000 \
        >unprivileged.out 2>unprivileged.err
    status=$?
    expect_status unprivileged 0
    for name in context-switches cpu-migrations; do
        expect_json unprivileged/run.json "(d['counters']['events']['$name'] ==
            dict(d['counters']['events']['$name'], supported=False,
                 reason='needs perf_event_paranoid <= 1 or root'))" "$name is not supported"
    done
    expect_json unprivileged/run.json \
        '"rusage" in d["counters"]["events"]["context-switches"]["fallback"]'
    expect_json unprivileged/run.json 'd["counters"]["scope"] == "user space only"'
    expect_json unprivileged/run.json 'd["counters"]["events"]["page-faults"]["value"] >= 1000'
    checked "as nobody, perf_event_paranoid 2: switches, migrations not supported; faults counted"
else
    echo "not tried: the unprivileged case needs root, perf_event_paranoid 2 and setpriv(1)"
fi

# --- check: the records of every run, and the summary

run_memdet check check -n 3 --out campaign -- "$PROBE" 1000
expect_status check 0
for record in campaign/run-0{1,2,3}/record.json; do
    [ -f "$record" ] || fail "check: $record was not written"
    expect_json "$record" 'd["counters"]["events"]["page-faults"]["value"] >= 1000' \
        "$record carries the counters"
done
expect_json campaign/check.json 'all(r["counters"]["measured"] for r in d["runs"])' \
    "every run in check.json has counters"
expect_json campaign/check.json 'd["counters"]["rule"] == "none"'
expect_json campaign/check.json 'not any(s["flagged"] for s in d["counters"]["summaries"])' \
    "the default rule flags nothing"
expect_json campaign/check.json '[s for s in d["counters"]["summaries"]
                                  if s["name"] == "page-faults"][0]["count"] == 2' \
    "the figures after the first run rest on 2 runs"
grep -q '^counters (run 01, the first, shown apart' check.out ||
    { cat check.out >&2; fail "check: the summary has no counters section"; }
if [ "$pmu" = False ]; then
    count=$(grep -c 'not supported (no hardware PMU visible)' check.err)
    [ "$count" -eq 1 ] ||
        { cat check.err >&2; fail "check: the notice came $count times, not once"; }
fi
checked "check: every run record carries counters; the summary shows them, the notice came once"

# --- A counter that varies while the outputs do not. The page count grows
# with the run number, and the probe prints nothing.

run_memdet vary check -n 4 --out vary --counter-rule fixed:2% \
    -- /bin/sh -c "exec '$PROBE' \$((MEMDET_RUN * 3000))"
expect_status vary 0
expect_json vary/check.json 'd["counters"]["rule"] == "fixed:2%"'
expect_json vary/check.json 'd["counters"]["rule_label"] == "rule of thumb"'
expect_json vary/check.json '[s for s in d["counters"]["summaries"]
                             if s["name"] == "page-faults"][0]["flagged"]'
expect_json vary/check.json 'd["counters"]["timing_varied_results_did_not"]'
grep -q 'timing varied, results did not' vary.out ||
    { cat vary.out >&2; fail "vary: the summary does not say timing varied, results did not"; }
checked "fixed:2%: page faults varying by design are flagged; timing varied, results did not"

# --- A bad rule stops before any run, with one line.

for rule in fixed:2 fixed:-1% bogus 'fixed:abc%'; do
    run_memdet bad_rule check -n 2 --out bad_rule --counter-rule "$rule" -- /bin/true
    expect_status bad_rule 2
    [ "$(wc -l <bad_rule.err)" -eq 1 ] || fail "bad rule $rule: not one line: $(cat bad_rule.err)"
    grep -q -- '--counter-rule' bad_rule.err || fail "bad rule $rule: the line does not name it"
    [ ! -e bad_rule ] || fail "bad rule $rule: a run started"
done
checked "bad --counter-rule values: exit 2, one line, no run"

echo "PASS: counters"
