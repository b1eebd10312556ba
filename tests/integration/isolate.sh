#!/bin/bash
# memdet isolate on the built-in SGD canary and on commands whose outcome is
# known: the atomic reduction is not explained by any factor (it differs
# with every factor pinned), the ordered one is reproducible with every
# factor tried, a failing command is the workload's failure, a small budget
# is inconclusive, and bad requests are one line with exit 2.
#
# Usage: bash isolate.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

online=$(getconf _NPROCESSORS_ONLN)
[ "$online" -ge 2 ] || skip "only $online CPU online; the atomic canary needs two to race"

canary() {
    echo "$MEMDET" canary sgd --threads 2 --reduce "$1" --out '{run_dir}/out'
}

# Atomic: the pool differs, so the campaign stops there and names nothing.
run_memdet atomic isolate --out atomic --json atomic.json --timeout 120 \
    --artifact '{run_dir}/out/*' -- $(canary atomic)
expect_status atomic 1
expect_json atomic.json 'd["schema"] == "memdet.isolate/1"'
expect_json atomic.json 'd["verdict"] == "not-explained"'
expect_json atomic.json 'd["pool"]["outcomes"] >= 2' "the pool has two outcomes"
expect_json atomic.json 'all(f["runs"] == 0 for f in d["factors"])' "no factor perturbed"
expect_json atomic.json 'all(f["status"] != "changes-result" for f in d["factors"])' \
    "no factor blamed"
expect_json atomic.json 'd["runs"] == 5 + d["pool"]["runs"]' "stopped right after the pool"
grep -q "use_deterministic_algorithms" atomic.out || fail "atomic: the cure is not named"
checked "atomic canary: not explained, stopped after $(json_value atomic.json 'd["runs"]') runs"

# Ordered: every factor that applies here is tried, and none is blamed.
run_memdet ordered isolate --out ordered --json ordered.json --timeout 120 \
    --artifact '{run_dir}/out/*' -- $(canary ordered)
expect_status ordered 0
expect_json ordered.json 'd["verdict"] == "reproducible"'
expect_json ordered.json 'd["pool"]["runs"] == 8 and d["free"]["runs"] == 5'
expect_json ordered.json \
    'all(f["status"] in ("no-effect-seen", "all-values-tried", "unused") for f in d["factors"])' \
    "every factor tried without effect"
# The canary reads no OS entropy, no wall clock and lists no directory:
# each of those is seen unused in its one run.
expect_json ordered.json \
    'all(f["status"] == "unused" and f["runs"] == 1 for f in d["factors"]
         if f["name"] in ("entropy", "clock", "fileorder"))' \
    "the missed-seed factors unused after one run each"
expect_json ordered.json '({"heap", "aslr", "stack", "uninit", "allocator"} <=
                           {f["name"] for f in d["factors"]})' "the layout factors were tried"
expect_json ordered.json \
    '(sorted(next(f for f in d["factors"] if f["name"] == "heap")["values_tried"]) ==
      ["16", "32", "48"])' "heap tried through every offset class"
expect_json ordered.json 'len(d["steps"]) == d["runs"] == len(d["campaign"]["runs"])'
expect_json ordered.json \
    'all(r["phase"] == s["phase"] for r, s in zip(d["campaign"]["runs"], d["steps"]))' \
    "each run record names its phase"
grep -q "REPRODUCIBLE AS RUN" ordered.out || fail "ordered: verdict line missing"
# Every run is in the campaign's database, in order, with its phase, and the
# write-ahead log was folded in at the end.
"$PYTHON" - ordered/campaign.db ordered.json <<'EOF' || fail "ordered: campaign.db does not hold the runs"
import json, os, sqlite3, sys
db, report = sys.argv[1], json.load(open(sys.argv[2]))
rows = sqlite3.connect(db).execute("SELECT ordinal, phase, record FROM runs ORDER BY ordinal").fetchall()
assert [r[0] for r in rows] == list(range(1, report["runs"] + 1)), [r[0] for r in rows]
assert [r[1] for r in rows] == [s["phase"] for s in report["steps"]]
assert all(json.loads(r[2])["record"]["schema"] == "memdet.run/2" for r in rows)
wal = db + "-wal"
assert not os.path.exists(wal) or os.path.getsize(wal) == 0, "WAL not checkpointed"
EOF
checked "ordered canary: reproducible after $(json_value ordered.json 'd["runs"]') runs"

# A command that fails is the workload's failure, found in the first run.
run_memdet failing isolate --out failing --json failing.json -- /bin/false
expect_status failing 3
expect_json failing.json 'd["verdict"] == "workload-failed" and d["runs"] == 1'
checked "failing command: workload failed, exit 3"

# A budget that runs out among the factors ends the campaign inconclusive,
# with what the undecided factors still need; one that cannot reach a
# factor at all is refused.
run_memdet budget isolate --out budget --json budget.json --budget 15 -- /bin/echo same
expect_status budget 0
expect_json budget.json 'd["verdict"] == "inconclusive" and d["budget_exhausted"]'
expect_json budget.json 'd["runs"] == 15'
expect_json budget.json '(all(f["needs_runs"] > 0 for f in d["factors"]
                             if f["status"] in ("undecided", "untried")))' \
    "every undecided factor says what it needs"
checked "budget of 15: inconclusive after 15 runs"
run_memdet tiny isolate --out tiny --budget 9 -- /bin/echo same
expect_status tiny 2
[ ! -e tiny ] || fail "budget 9: a campaign directory was left"
run_memdet empty isolate --out empty --factors heap,,aslr -- /bin/echo same
expect_status empty 2
run_memdet untriable isolate --out untriable --factors numa -- /bin/echo same
expect_status untriable 2
checked "a budget that cannot reach a factor, an empty factor name, only untriable factors: exit 2"

# A run that fails only under the pool is that profile's finding, and a
# failed run all the same: exit 3.
printf '#!/bin/sh\n[ "$MEMDET_RUN" = 007 ] && exit 7\necho same\n' >fail_at.sh
chmod +x fail_at.sh
run_memdet pool_fails isolate --out pool_fails --json pool_fails.json -- ./fail_at.sh
expect_status pool_fails 3
expect_json pool_fails.json 'd["pool"]["failed"] == 1 and d["verdict"] == "inconclusive"'
checked "a failure in the pool: inconclusive, exit 3"

# The campaign's own files are no artifact.
run_memdet own_files isolate --out own --artifact "$PWD/own/campaign.db" -- /bin/echo same
expect_status own_files 2
grep -q "campaign directory" own_files.err || fail "own files: the message does not say why"
[ -f own/campaign.db ] || fail "own files: campaign.db was moved"
checked "an --artifact naming memdet's own records is refused"

# Only the factors asked for are tried.
run_memdet only isolate --out only --json only.json --factors heap,threads -- /bin/echo same
expect_status only 0
expect_json only.json '[f["name"] for f in d["factors"]] == ["heap", "threads"]'
checked "--factors heap,threads tries those two"

# Bad requests: one line, exit 2, no campaign left behind.
run_memdet unknown isolate --out unknown --factors heap,bogus -- /bin/true
expect_status unknown 2
grep -q "bogus" unknown.err || fail "unknown factor: the message does not name it"
[ "$(wc -l <unknown.err)" -eq 1 ] || fail "unknown factor: more than one line on stderr"
[ ! -e unknown ] || fail "unknown factor: a campaign directory was left"
run_memdet missing isolate --out missing -- /nonexistent/program
expect_status missing 2
checked "bad requests: exit 2 with one line"

# A campaign directory is never reused.
run_memdet again isolate --out ordered -- /bin/true
expect_status again 2
grep -q "already holds a campaign" again.err || fail "reused --out: wrong message"
checked "reused --out refused"
