#!/usr/bin/env bash
# Loss logs and stdout as artifacts: the first differing step and the
# distance in the right unit, masks for what varies by nature, the run's own
# directory normalised in stdout, raw arrays read with --dtype, and --keep.
source "$(dirname "$0")/common.bash"

# The canary's loss log differs between atomic runs; it prints every loss
# with 17 digits of a float32 value, so the distance is in float32 ULP.
run_memdet canary check -n 20 --stop-at-first-difference --out canary \
    --artifact '{run_dir}/o/loss.txt' --step-regex '^step (\d+)' -- \
    "$MEMDET" canary sgd --threads 2 --reduce atomic --out '{run_dir}/o'
expect_status canary 1
expect_json canary/check.json \
    'any(c["kind"] == "text" and c["text"]["first_step"] is not None and c["text"]["dtype"] == "float32" and c["text"]["max_ulp"] > 0 for o in d["outcomes"] for c in o["vs_reference"])' \
    "the loss log names its first differing step and a float32 ULP distance"
grep -q "first at line [0-9]*, step [0-9]*" canary.out || fail "the summary names no step"
checked "loss log: $(grep -m1 'first at line' canary.out | sed 's/^ *//')"

# A %.6g log measured in units of the last digit, not in ULP.
run_memdet short check -n 2 --no-stdout --out short --artifact log.txt -- /bin/sh -c \
    'if [ "$MEMDET_RUN" = 01 ]; then echo "step 1 loss 0.693147"; else echo "step 1 loss 0.693149"; fi > log.txt'
expect_status short 1
expect_json short/check.json \
    'd["outcomes"][1]["vs_reference"][0]["text"]["digit_numbers"] == 1 and d["outcomes"][1]["vs_reference"][0]["text"]["max_digit_units"] == 2 and d["outcomes"][1]["vs_reference"][0]["text"]["ulp_numbers"] == 0' \
    "short-printed numbers are measured in last-digit units"
checked "a %.6g log is measured in units of its last digit"

# Timings differ in every run; a mask makes the runs agree. Without the mask
# they differ.
workload='echo "step 1 loss 0.5 time $(date +%N)s"'
run_memdet unmasked check -n 3 --out unmasked -- /bin/sh -c "$workload"
expect_status unmasked 1
run_memdet masked check -n 3 --out masked --mask 'time [0-9]+s' -- /bin/sh -c "$workload"
expect_status masked 0
checked "--mask blanks a timing that differs in every run"

# A run that prints its own directory still repeats.
run_memdet rundir check -n 3 --out rundir -- /bin/sh -c 'echo "writing to $MEMDET_RUN_DIR/x"'
expect_status rundir 0
checked "the run directory printed on stdout is normalised"

# Raw float32 files compared element by element with --dtype.
run_memdet raw check -n 2 --no-stdout --out raw --dtype f32 --artifact w.bin -- "$PYTHON" -c '
import os, struct
v = 1.0 if os.environ["MEMDET_RUN"] == "01" else 1.0000001
open("w.bin", "wb").write(struct.pack("<3f", 0.5, v, 2.0))'
expect_status raw 1
expect_json raw/check.json \
    'd["outcomes"][1]["vs_reference"][0]["kind"] == "numeric" and d["outcomes"][1]["vs_reference"][0]["numeric"]["first_index"] == [1] and d["outcomes"][1]["vs_reference"][0]["numeric"]["max_ulp"] == 1' \
    "a raw f32 file is compared element by element"
checked "--dtype f32 reads a raw array"

# Float bytes with no NUL among them are still a raw array, not text.
run_memdet rawnonul check -n 2 --no-stdout --out rawnonul --dtype f32 --artifact b.bin -- "$PYTHON" -c '
import os, struct
v = 1.1 if os.environ["MEMDET_RUN"] == "01" else 1.1000001
open("b.bin", "wb").write(struct.pack("<8f", *([1.1] * 7 + [v])))'
expect_status rawnonul 1
expect_json rawnonul/check.json \
    'd["outcomes"][1]["vs_reference"][0]["kind"] == "numeric"' \
    "a raw array without NUL bytes is compared as numbers"
checked "raw float bytes are not mistaken for text"

# --keep all keeps a copy for every run, --keep none for none.
run_memdet keepall check -n 3 --out keepall --keep all --artifact 'k/{run}.txt' -- \
    /bin/sh -c 'mkdir -p k; echo same > "k/$MEMDET_RUN.txt"'
expect_status keepall 0
for run in 01 02 03; do
    [ -f "keepall/run-$run/artifacts/k/$run.txt" ] || fail "--keep all: run $run kept no copy"
done
run_memdet keepnone check -n 3 --out keepnone --keep none --artifact 'n/{run}.txt' -- \
    /bin/sh -c 'mkdir -p n; echo same > "n/$MEMDET_RUN.txt"'
expect_status keepnone 0
[ -e keepnone/run-01/artifacts ] && fail "--keep none kept a copy"
checked "--keep all and --keep none"

run_memdet badmask check -n 2 --mask '(' -- /bin/true
expect_status badmask 2
run_memdet badstep check -n 2 --step-regex 'step \d+' -- /bin/true
expect_status badstep 2
checked "a bad --mask or a --step-regex without a group is refused"
echo PASS
