#!/usr/bin/env bash
# memdet report: a finished check or isolate campaign shown again from its
# directory, its stored JSON printed, the self-contained HTML page written
# by report and by the campaigns' own --html, one line and exit 2 for a
# directory without a readable campaign, and the page rendered by a
# headless browser (skipped without one). The browser's screenshots are
# kept in the directory the test was started from.
START_DIR=$PWD
source "$(dirname "$0")/common.bash"

# Run 02's loss log parts from the others at step 3, the same in every
# test run.
cat >log.sh <<'EOF'
mkdir -p logs
for step in 0 1 2 3 4 5 6 7; do
    extra=0
    if [ "$MEMDET_RUN" = 02 ] && [ "$step" -ge 3 ]; then extra=1; fi
    echo "step $step loss 2.$((7 - step))$extra"
done >"logs/$MEMDET_RUN.txt"
EOF
run_memdet campaign check -n 4 --out campaign --artifact 'logs/{run}.txt' \
    --step-regex '^step (\d+)' --html check-page.html -- /bin/sh log.sh
expect_status campaign 1
[ -s check-page.html ] || fail "check --html wrote no page"
grep -q 'class="divergence" data-step="3"' check-page.html ||
    fail "check --html: the chart does not mark step 3"
checked "check --html writes the page at the end of the campaign"

run_memdet shown report campaign
expect_status shown 0
grep -q "^verdict: results DIFFER: 2 distinct outcomes in 4 completed runs" shown.out ||
    fail "report: no verdict paragraph"
grep -q "first divergent step 3" shown.out || fail "report: the loss curves' step is not named"
grep -qE '^  02 +exit 0 .* B$' shown.out || fail "report: no run table with run 02's outcome"
grep -q "first at line 4, step 3" shown.out || fail "report: the log's difference is not shown"
[ ! -s shown.err ] || fail "report wrote to stderr: $(head -n 3 shown.err)"
checked "report DIR: the verdict, the runs and the differences"

run_memdet stored report campaign --json
expect_status stored 0
"$PYTHON" - campaign/check.json stored.out <<'EOF' || fail "report --json is not check.json"
import json, sys
stored, printed = (json.load(open(path)) for path in sys.argv[1:3])
sys.exit(0 if stored == printed else 1)
EOF
checked "report --json prints the stored campaign"

run_memdet page report campaign --html page.html
expect_status page 0
for text in "Results differ" "verdict: results DIFFER" "first divergent step 3" "<svg"; do
    grep -qF "$text" page.html || fail "report --html: '$text' is not on the page"
done
if grep -nE 'https?://|src=|<link|@import|url\(' page.html; then
    fail "report --html: the page refers to something outside it"
fi
[ "$(grep -c '<polyline' page.html)" -ge 4 ] || fail "report --html: fewer than four curves"
checked "report --html: verdict, curves, the step marked, nothing fetched"

# The page may go inside a campaign directory memdet has yet to make, but
# never over the campaign's own record.
run_memdet inside check -n 2 --out fresh --artifact 'logs/{run}.txt' --html fresh/page.html -- \
    /bin/sh log.sh
expect_status inside 1
[ -s fresh/page.html ] || fail "check --html inside a new --out wrote no page"
run_memdet overwrite report campaign --html campaign/check.json
expect_status overwrite 2
grep -q "would overwrite the campaign's own check.json" overwrite.err ||
    fail "report --html over check.json: $(cat overwrite.err)"
expect_json campaign/check.json 'd["schema"] == "memdet.check/2"' "check.json is intact"
run_memdet emptyname report campaign --html ''
expect_status emptyname 2
checked "--html inside a new campaign directory, never over its record, never empty"

# A campaign whose result follows one factor's value: isolate's table names it.
cat >seeded.py <<'EOF'
import os
seed = int(os.environ.get("PYTHONHASHSEED") or 0)
os.makedirs("logs", exist_ok=True)
with open(os.path.join("logs", os.environ["MEMDET_RUN"] + ".txt"), "w") as log:
    for step in range(8):
        loss = 2.5 - 0.125 * step + (1e-6 * (seed % 89 + 1) if seed and step >= 3 else 0)
        log.write(f"step {step} loss {loss!r}\n")
EOF
run_memdet isolated isolate --out isolated --factors env,heap --artifact 'logs/{run}.txt' \
    --step-regex '^step (\d+)' --html isolate-page.html -- "$PYTHON" seeded.py
expect_status isolated 1
expect_json isolated/isolate.json 'd["verdict_text"].startswith("verdict: ")' \
    "isolate.json stores the verdict paragraph"
run_memdet factors report isolated
expect_status factors 0
grep -qE '^  env +[0-9,.]+ +[0-9]+ YES \(value\)' factors.out || fail "report: env is not blamed"
grep -qE '^  heap +[0-9,.]+ +[0-9]+ no' factors.out || fail "report: heap's row is missing"
awk 'length > 80 { print; bad = 1 } END { exit bad }' factors.out ||
    fail "report: lines wider than 80 columns"
grep -q "verdict: REPRODUCIBLE AS RUN" factors.out || fail "report: no isolate verdict"
grep -q '<tr class="changes"><td class="name">env</td>' isolate-page.html ||
    fail "isolate --html: env's row is not marked"
checked "report on isolate: the factor table names env, in 80 columns"

# The logs are gone: the page says so instead of drawing nothing.
rm -rf logs campaign/run-*/artifacts
run_memdet gone report campaign --html gone.html
expect_status gone 0
grep -q "runs 01, 02, 03, 04 are gone or no longer what the run wrote" gone.html ||
    fail "report: gone logs not said"
grep -q '<polyline' gone.html && fail "report: curves drawn from logs that are gone"
checked "report --html says when the runs' logs are gone"

# What is no campaign: one line naming the file and the problem, exit 2.
run_memdet missing report nowhere
expect_status missing 2
expect_one_memdet_line missing "nowhere"
mkdir empty garbage wrong
run_memdet empty report empty
expect_status empty 2
expect_one_memdet_line empty "neither isolate.json nor check.json"
printf '{"schema": "memdet.isolate/1", \001 garbage' >garbage/isolate.json
run_memdet garbage report garbage
expect_status garbage 2
expect_one_memdet_line garbage "garbage/isolate.json: not valid JSON"
echo '{"schema": "memdet.run/2"}' >wrong/check.json
run_memdet wrong report wrong --html wrong.html
expect_status wrong 2
expect_one_memdet_line wrong 'wrong/check.json: schema "memdet.run/2"'
[ -e wrong.html ] && fail "a page was written for a file of another schema"
run_memdet unwritable report campaign --html no/such/dir/page.html
expect_status unwritable 2
expect_one_memdet_line unwritable "no/such/dir/page.html"
checked "bad input: one line, exit 2"

# A real browser renders the pages: the verdict is in the DOM and nothing
# complains on the console.
command -v chromium >/dev/null ||
    skip "chromium is not installed (scripts/install-deps.sh installs it)"
for page in page isolate-page; do
    timeout 120 chromium --headless --no-sandbox --user-data-dir="$SCRATCH/chromium" \
        --enable-logging=stderr --window-size=1200,2400 --screenshot="$SCRATCH/$page.png" \
        --dump-dom "file://$SCRATCH/$page.html" >"$page.dom" 2>"$page.browser"
    [ -s "$page.dom" ] || fail "chromium dumped no DOM for $page.html: $(tail -n 3 "$page.browser")"
    if grep CONSOLE "$page.browser"; then
        fail "chromium logged console messages for $page.html"
    fi
    [ -s "$page.png" ] || fail "chromium took no screenshot of $page.html"
    cp "$page.png" "$START_DIR/report-$page.png" &&
        cp "$page.html" "$START_DIR/report-$page.html" ||
        fail "cannot keep the screenshot in $START_DIR"
done
grep -q "verdict: results DIFFER" page.dom || fail "the rendered check page has no verdict"
grep -q "verdict: REPRODUCIBLE AS RUN" isolate-page.dom ||
    fail "the rendered isolate page has no verdict"
checked "chromium renders both pages; screenshots in $START_DIR/report-*.png"
