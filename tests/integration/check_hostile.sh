#!/usr/bin/env bash
# Workloads and paths that try to trip memdet up: it must neither hang, nor
# damage files it was not asked to touch, nor call a failed run bad input.
source "$(dirname "$0")/common.bash"

"$PYTHON" -c 'import numpy' 2>/dev/null || skip "numpy is needed to write the .npy inputs"
"$PYTHON" - <<'PY'
import numpy as np
np.save("good.npy", np.arange(6, dtype=np.float32))
with open("good.npy", "rb") as f:
    data = f.read()
open("truncated.npy", "wb").write(data[:100])
PY

# A run that dies halfway through writing leaves a truncated file: that run
# failed (exit 3) and the others still run.
run_memdet halfwritten check -n 3 --no-stdout --out halfwritten --artifact x.npy -- /bin/sh -c \
    'if [ "$MEMDET_RUN" = 02 ]; then cp truncated.npy x.npy; kill -SEGV $$; fi; cp good.npy x.npy'
expect_status halfwritten 3
expect_json halfwritten/check.json 'len(d["runs"]) == 3 and d["result"]["failed_runs"] == 1' \
    "all three runs recorded, one failed"
checked "a run killed mid-write is a failed run, not bad input"

# The captured stdout replaced by a FIFO or a device must not block memdet.
run_memdet fifo check -n 2 --out fifo --timeout 20 -- /bin/sh -c \
    'rm "$MEMDET_RUN_DIR/stdout.txt"; mkfifo "$MEMDET_RUN_DIR/stdout.txt"'
expect_status fifo 3
run_memdet zero check -n 2 --out zero --timeout 20 -- /bin/sh -c \
    'rm "$MEMDET_RUN_DIR/stdout.txt"; ln -s /dev/zero "$MEMDET_RUN_DIR/stdout.txt"'
expect_status zero 3
checked "a FIFO or /dev/zero in place of stdout.txt fails the run without a hang"

# --json writes through a link or a FIFO instead of replacing it.
echo original > target.json
ln -s target.json link.json
run_memdet link check -n 2 --out link --json link.json -- /bin/true
expect_status link 0
[ -L link.json ] || fail "--json replaced the symlink"
expect_json target.json 'd["schema"] == "memdet.check/2"' "JSON written through the symlink"
mkfifo pipe.json
cat pipe.json > from-fifo.json &
reader=$!
run_memdet fifojson check -n 2 --out fifojson --json pipe.json -- /bin/true
wait "$reader"
[ -p pipe.json ] || fail "--json replaced the FIFO"
expect_json from-fifo.json 'd["result"]["verdict"] == "no_difference_seen"' "JSON read from the FIFO"
checked "--json writes through links and FIFOs"

# A pattern that also matches the training script, and a directory, moves
# neither: the script is part of the command, a directory is no artifact.
mkdir -p project/keepdir
echo 'print("trained")' > project/train.py
(cd project && "$MEMDET" check -n 2 --out ../star --artifact '*' -- "$PYTHON" train.py \
    > ../star.out 2> ../star.err)
[ -f project/train.py ] || fail "the training script was moved away"
[ -d project/keepdir ] || fail "a directory matching the pattern was moved"
expect_json star/check.json 'd["result"]["failed_runs"] == 0' "runs did not fail"
checked "'*' leaves the script and directories in place"

# A campaign directory whose name holds glob characters still finds its
# own run directories' artifacts.
run_memdet brackets check -n 2 --no-stdout --out 'camp[1]' --artifact '{run_dir}/x.npy' -- \
    /bin/sh -c 'cp good.npy "$MEMDET_RUN_DIR/x.npy"'
expect_status brackets 0
checked "{run_dir} holding '[1]' is matched literally"

# A file named like the captured stream is its own artifact.
run_memdet named check -n 2 --out named --artifact stdout -- /bin/sh -c \
    'echo "$MEMDET_RUN"; echo same > stdout'
expect_status named 1
expect_json named/check.json \
    'any(c["key"] == "stdout" and c["kind"] != "same" for c in d["outcomes"][1]["vs_reference"])' \
    "the differing captured stdout is named as the difference"
checked "an artifact file named 'stdout' does not hide the captured stdout"

# Bad values are refused up front.
for value in nan inf 0 -1 abc 1e30; do
    run_memdet "timeout_$value" run --timeout "$value" -- /bin/true
    expect_status "timeout_$value" 125
done
run_memdet emptycpus check -n 2 --cpus '' -- /bin/true
expect_status emptycpus 2
run_memdet runjson run --json - -- /bin/echo hi
expect_status runjson 125
checked "bad --timeout, empty --cpus and run --json - are refused"
echo PASS
