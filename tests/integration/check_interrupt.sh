#!/usr/bin/env bash
# Ctrl-C during `memdet check`: the running workload is stopped, the records
# of the runs so far are written, and memdet exits 130.
set -u
memdet=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" || exit 1

fail() { echo "FAIL: $*"; exit 1; }

# Runs 01 and 02 finish at once; run 03 sleeps until interrupted.
"$memdet" check -n 5 --out camp --timeout 120 -- /bin/sh -c \
  'if [ "$MEMDET_RUN" = 03 ]; then echo $$ > "$MEMDET_RUN_DIR/pid"; exec sleep 100; fi; echo done' \
  > summary.txt 2> progress.txt &
checker=$!

for _ in $(seq 1 200); do
  [ -s camp/run-03/pid ] && break
  sleep 0.05
done
[ -s camp/run-03/pid ] || fail "run 03 never started"
workload=$(cat camp/run-03/pid)
kill -INT "$checker"
wait "$checker"
status=$?

[ "$status" -eq 130 ] || fail "exit status $status, expected 130"
kill -0 "$workload" 2>/dev/null && fail "workload $workload still running after Ctrl-C"
[ -f camp/check.json ] || fail "no check.json after interruption"
[ -f camp/run-01/record.json ] && [ -f camp/run-03/record.json ] || fail "run records missing"
[ -e camp/run-04 ] && fail "run 04 started after the interruption"
/usr/bin/python3 - camp/check.json <<'PY' || fail "check.json does not record the interruption"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["schema"] == "memdet.check/2"
assert doc["result"]["interrupted_by"] == 2, doc["result"]
assert doc["result"]["exit_status"] == 130
assert len(doc["runs"]) == 3
assert doc["runs"][2]["launch"]["interrupted_by"] == 2
PY
grep -q "interrupted" summary.txt || fail "summary does not say it was interrupted"
echo "PASS: SIGINT stopped run 03, kept records of runs 01-03, exit 130"
