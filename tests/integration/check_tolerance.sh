#!/usr/bin/env bash
# --atol, --rtol, --max-ulp and --equal-nan in check and isolate: outcomes
# whose tensors differ only within the tolerance count as one result, said
# apart from bitwise agreement; anything beyond it still differs.
source "$(dirname "$0")/common.bash"
"$PYTHON" -c 'import numpy' 2>/dev/null || skip "numpy is missing for $PYTHON"

# Run N writes w.npy whose element [1, 2] is N - 1 float32 steps above 1.0,
# and the same shift in a safetensors file when asked.
cat >write.py <<'PY'
import json, os, struct, sys
import numpy as np
run = int(os.environ["MEMDET_RUN"])
steps = (run - 1) * int(sys.argv[1])
a = np.zeros((2, 3), dtype=np.float32)
a[1, 2] = np.nextafter(np.float32(1.0), np.float32(2.0)) if steps else np.float32(1.0)
for _ in range(max(0, steps - 1)):
    a[1, 2] = np.nextafter(a[1, 2], np.float32(2.0))
np.save("w.npy", a)
if len(sys.argv) > 2:
    data = a.tobytes()
    header = json.dumps({"t": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, len(data)]}})
    with open("w.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header.encode() + data)
PY

# One step apart in each run: bitwise they differ.
run_memdet bitwise check -n 3 --no-stdout --out bitwise --artifact w.npy -- "$PYTHON" write.py 1
expect_status bitwise 1
expect_json bitwise/check.json 'd["result"]["verdict"] == "differs"' "bitwise, the runs differ"
checked "without a tolerance, one float32 step differs"

# Runs 2 and 3 are 1 and 2 steps from run 1: --max-ulp 2 takes both.
run_memdet ulp check -n 3 --no-stdout --out ulp --max-ulp 2 --artifact w.npy -- \
    "$PYTHON" write.py 1
expect_status ulp 0
expect_json ulp/check.json \
    'd["result"]["verdict"] == "equal_within_tolerance" and d["result"]["distinct_outcomes"] == 3 and all(o["within_tolerance"] for o in d["outcomes"] if not o["reference"])' \
    "--max-ulp 2: equal within tolerance, three bitwise outcomes"
grep -q "verdict: results equal within tolerance (atol 0, rtol 0, max-ulp 2)" ulp.out ||
    fail "the summary does not say 'equal within tolerance'"
checked "--max-ulp 2 takes steps of 1 and 2 as equal, and says so"

# Two steps a run: run 3 is 4 steps away, beyond --max-ulp 2.
run_memdet beyond check -n 3 --no-stdout --out beyond --max-ulp 2 --artifact w.npy -- \
    "$PYTHON" write.py 2
expect_status beyond 1
expect_json beyond/check.json \
    'd["result"]["verdict"] == "differs" and [o["within_tolerance"] for o in d["outcomes"] if not o["reference"]] == [True, False]' \
    "the run 4 steps away is outside --max-ulp 2, the one 2 steps away inside"
grep -q "^  beyond the tolerance: w.npy$" beyond.out || fail "the file beyond the tolerance is not named"
grep -q "OUTSIDE the tolerance (atol 0, rtol 0, max-ulp 2)" beyond.out ||
    fail "the outcome beyond the tolerance is not marked so"
checked "a difference beyond the tolerance still differs, and the file is named"

# An absolute tolerance, and a safetensors artifact beside the npy.
run_memdet atol check -n 2 --no-stdout --out atol --atol 1e-6 --artifact w.npy \
    --artifact w.safetensors -- "$PYTHON" write.py 1 safetensors
expect_status atol 0
expect_json atol/check.json \
    'all(c["within_tolerance"] for o in d["outcomes"] if not o["reference"] for c in o["vs_reference"] if c["kind"] != "same")' \
    "--atol 1e-6 covers one step at 1.0 in .npy and .safetensors"
checked "--atol applies to .npy and .safetensors artifacts"

# Text is compared as written: a tolerance does not make two logs agree.
run_memdet text check -n 2 --out text --max-ulp 1000 -- "$PYTHON" -c '
import os
print("loss", 0.5 if os.environ["MEMDET_RUN"] == "01" else 0.50000006)'
expect_status text 1
grep -q "^  beyond the tolerance: stdout (compared as written)$" text.out ||
    fail "text beyond the tolerance is not named as compared as written"
checked "stdout is compared as written whatever the tolerance, and the verdict says so"

run_memdet negative check -n 2 --atol -1 -- /bin/true
expect_status negative 2
grep -q -- "--atol -1: must be a finite number of at least 0" negative.err ||
    fail "a negative --atol is not named"
checked "a negative --atol is a usage error"

# isolate takes the tolerance too: runs one step apart are one result;
# bitwise, the same runs differ.
cat >alternate.py <<'PY'
import os
import numpy as np
a = np.ones(4, dtype=np.float32)
if int(os.environ["MEMDET_RUN"]) % 2:
    a[3] = np.nextafter(a[3], np.float32(2.0))
np.save("w.npy", a)
PY
run_memdet isobits isolate -n 3 --pool 4 --factors heap --factor-runs 2 --no-stdout \
    --out isobits --artifact w.npy -- "$PYTHON" alternate.py
expect_status isobits 1
run_memdet iso isolate -n 3 --pool 4 --factors heap --factor-runs 2 --no-stdout --out iso \
    --max-ulp 1 --artifact w.npy -- "$PYTHON" alternate.py
expect_status iso 0
expect_json iso/isolate.json 'd["verdict"] == "reproducible"' \
    "isolate: outcomes within one step are reproducible"
checked "isolate: a result that moves within --max-ulp 1 is reproducible"
