#!/bin/bash
# python/memdet_trace.py and memdet diff over its traces, end to end:
# - the PyTorch example, whose index_put_ backward adds with atomics on two
#   threads, is traced at step 0; diff names aten.index_put with
#   accumulate=True as the first operator whose inputs matched and whose
#   output differed, at step 0, with element-level distances; --deterministic
#   traces are identical;
# - a dropout model with a pinned seed gives identical traces, and with an
#   unpinned seed "RNG state differed" at bernoulli_, never empty_like;
# - an in-place operator's input is digested before it runs;
# - check reports a trace artifact as a trace;
# - lying traces get one line naming the file and exit 2.
#
# Usage: bash trace.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

example=$SOURCE_DIR/examples/pytorch/train_embedding.py
helper_dir=$SOURCE_DIR/python
[ -f "$helper_dir/memdet_trace.py" ] || fail "$helper_dir/memdet_trace.py is missing"
if ! probe=$(timeout 120 "$PYTHON" -c 'import torch, numpy' 2>&1); then
    skip "$PYTHON cannot import torch and numpy: ${probe##*$'\n'}"
fi
online=$(getconf _NPROCESSORS_ONLN)
[ "$online" -ge 2 ] || skip "only $online CPU online; the example's two threads need two to race"

# The race decides only the last bits, and only most of the time: up to
# six pairs of runs until two traces part at step 0, the one whose
# operators are recorded.
parted=""
for attempt in 1 2 3 4 5 6; do
    rm -rf "a$attempt" "b$attempt"
    timeout 200 "$PYTHON" "$example" --out "a$attempt" --steps 12 --trace ||
        fail "the example with --trace failed"
    timeout 200 "$PYTHON" "$example" --out "b$attempt" --steps 12 --trace ||
        fail "the example with --trace failed"
    run_memdet "attempt$attempt" diff --json "a$attempt/memdet-trace.jsonl" \
        "b$attempt/memdet-trace.jsonl"
    [ "$status" -eq 2 ] && fail "attempt $attempt: $(cat "attempt$attempt.err")"
    if [ "$status" -eq 1 ] &&
        [ "$(json_value "attempt$attempt.out" 'd["traces"][0]["first_step"]')" = 0 ]; then
        parted=$attempt
        break
    fi
done
[ -n "$parted" ] || fail "six pairs of example runs never parted at step 0; the race never showed there"
grep -q '"phase":"backward"' "a$parted/memdet-trace.jsonl" ||
    fail "the trace holds no backward operators"

run_memdet example diff --json "a$parted/memdet-trace.jsonl" "b$parted/memdet-trace.jsonl"
expect_status example 1
expect_json example.out 'd["verdict"] == "differ" and len(d["traces"]) == 1'
expect_json example.out 'd["traces"][0]["first_step"] == 0' "first divergent step 0"
expect_json example.out 'd["traces"][0]["operator"]["kind"] == "cause"'
expect_json example.out \
    'd["traces"][0]["operator"]["a"]["name"].startswith("aten.index_put")' \
    "the first divergent operator is aten.index_put"
expect_json example.out '"accumulate=True" in d["traces"][0]["operator"]["a"]["args"]'
expect_json example.out \
    'd["traces"][0]["operator"]["a"]["step"] == 0 and d["traces"][0]["operator"]["a"]["phase"] == "backward"'
expect_json example.out \
    'd["traces"][0]["operator"]["a"]["node"] == "IndexBackward0" and not d["traces"][0]["operator"]["a"]["module_exact"]' \
    "the backward module is attributed through IndexBackward0 and marked best effort"
expect_json example.out \
    'd["traces"][0]["operator"]["elements"][0]["bitwise_differing"] > 0' \
    "the saved output gives element-level distances"
expect_json example.out \
    'all(a["digest"] == b["digest"] for a, b in zip(d["traces"][0]["operator"]["a"]["inputs"], d["traces"][0]["operator"]["b"]["inputs"]))' \
    "every input of the cause matched"
call=$(json_value example.out 'd["traces"][0]["operator"]["a"]["call"]')
checked "example: index_put (accumulate=True) at step 0, call $call, found in attempt $parted"

# The same two folders, as folders: the trace is reported as a trace, and
# the tensors it saved are left to it.
run_memdet folders diff "a$parted" "b$parted"
expect_status folders 1
grep -q "first divergent operator: #$call aten.index_put" folders.out ||
    fail "the folder report does not name the operator: $(cat folders.out)"
if [ "$(grep -c "memdet-trace.tensors/op-" folders.out)" -gt 1 ]; then
    fail "the folder report lists the trace's saved tensors one by one"
fi
grep -q "files the traces saved differ" folders.out ||
    fail "the folder report does not count the saved files that differ"
grep -q "loss difference" folders.out || fail "the folder report has no growth table"
checked "folders: the trace report names call $call and the growth table"

for side in a b; do
    timeout 200 "$PYTHON" "$example" --out "det-$side" --steps 4 --trace --deterministic ||
        fail "the deterministic example failed"
done
run_memdet deterministic diff det-a det-b
expect_status deterministic 0
grep -q "traces identical" deterministic.out || fail "deterministic traces: $(cat deterministic.out)"
checked "--deterministic: traces identical"

# Identical traces whose saved tensors differ do not make an identical pair.
cp -a det-b det-c
"$PYTHON" -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[-1] ^= 1; open(sys.argv[1], "wb").write(d)' \
    det-c/memdet-trace.tensors/op-000005.safetensors
run_memdet saved_file diff det-a/memdet-trace.jsonl det-c/memdet-trace.jsonl
expect_status saved_file 1
grep -q "op-000005.safetensors" saved_file.out || fail "saved file: $(cat saved_file.out)"
checked "a saved tensor that differs beside identical traces: differ, named"

cat >dropout.py <<'EOF'
import sys

sys.path.insert(0, sys.argv[1])
import memdet_trace
import torch

torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 1)
)
x, y = torch.randn(32, 8), torch.randn(32)
if sys.argv[3] == "pinned":
    torch.manual_seed(7)
else:
    torch.seed()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
trace = memdet_trace.Trace(model, path=sys.argv[2], ops=range(0, 2), save=range(0, 1))
for step in range(4):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
    loss.backward()
    optimizer.step()
    trace.step(loss)
EOF
for run in p1 p2; do
    timeout 200 "$PYTHON" dropout.py "$helper_dir" "$run" pinned || fail "dropout.py failed"
done
run_memdet pinned diff --json p1 p2
expect_status pinned 0
expect_json pinned.out 'd["traces"][0]["identical"]'
grep -q '"aten.empty_like' p1/memdet-trace.jsonl || fail "the dropout trace has no empty_like"
checked "dropout, pinned seed: identical traces, empty_like included"

for run in u1 u2; do
    timeout 200 "$PYTHON" dropout.py "$helper_dir" "$run" unpinned || fail "dropout.py failed"
done
run_memdet unpinned diff --json u1 u2
expect_status unpinned 1
expect_json unpinned.out 'd["traces"][0]["operator"]["kind"] == "rng_state_differed"'
expect_json unpinned.out \
    'd["traces"][0]["operator"]["a"]["name"].startswith("aten.bernoulli_")' \
    "the RNG finding is at bernoulli_, not empty_like"
expect_json unpinned.out 'd["traces"][0]["operator"]["a"]["module"] == "2"' "module 2, the dropout"
run_memdet unpinned_text diff u1 u2
grep -q "RNG state differed at #[0-9]* aten.bernoulli_" unpinned_text.out ||
    fail "no RNG finding in the text: $(cat unpinned_text.out)"
if grep -q "empty_like" unpinned_text.out; then fail "empty_like is blamed"; fi
checked "dropout, unpinned seed: RNG state differed at bernoulli_"

# An in-place add reads its input before it writes it.
timeout 200 "$PYTHON" - "$helper_dir" <<'EOF' || fail "the in-place digest check failed"
import json
import sys

sys.path.insert(0, sys.argv[1])
import memdet_trace
import torch

model = torch.nn.Linear(2, 2)
trace = memdet_trace.Trace(model, path="inplace", ops=range(0, 1))
x = torch.ones(3)
x.add_(1)
view = torch.arange(6.0).reshape(2, 3).t()
view.sum()
buffer = torch.empty(4, 3)
buffer.t()
buffer.fill_(1.0)
buffer.t()
trace.step()
trace.close()
ops = [json.loads(line) for line in open("inplace/memdet-trace.jsonl")][1:-1]
add = next(op for op in ops if op["name"] == "aten.add_.Tensor")
assert add["in"][0][1] != add["out"][0][1], add
assert add["in"][0][1] == memdet_trace.digest(torch.ones(3)), add
assert memdet_trace.digest(view) != memdet_trace.digest(view.contiguous()), "strides not digested"
# Uninitialised memory is not compared through a view, until fill_ writes it whole.
transposes = [op for op in ops if op["name"] == "aten.t.default"]
assert transposes[-2]["in"][0][1] is None and transposes[-2]["out"][0][1] is None, transposes
assert transposes[-1]["in"][0][1] is not None, transposes
assert memdet_trace.digest(torch.ones(2, dtype=torch.bfloat16)) != memdet_trace.digest(
    torch.ones(2, dtype=torch.float16)
)
EOF
checked "in-place input digested before the write; strides and dtype in the digest; garbage views"

# Buffers count as state, and an input changed behind the dispatcher's back
# (through numpy) is named where it is first read.
cat >batchnorm.py <<'EOF'
import sys

sys.path.insert(0, sys.argv[1])
import memdet_trace
import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
x, y = torch.randn(16, 4), torch.randn(16)
how, nudge = sys.argv[3], sys.argv[4] == "nudge"
if how == "before" and nudge:
    model[1].running_mean.numpy()[0] += 1e-3
ops = range(0, 2) if how == "late" else range(0, 4)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
trace = memdet_trace.Trace(model, path=sys.argv[2], ops=ops)
for step in range(5):
    if how in ("during", "late") and step == 2 + (how == "late"):
        # Both runs make the same calls; only the nudged one's numpy write
        # changes a value, where the dispatcher cannot see it.
        model[1].running_mean.numpy()[0] += 1e-3 if nudge else 0.0
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
    loss.backward()
    optimizer.step()
    trace.step(loss)
EOF
for how in before during late; do
    for side in plain nudge; do
        timeout 200 "$PYTHON" batchnorm.py "$helper_dir" "bn-$how-$side" "$how" "$side" ||
            fail "batchnorm.py $how $side failed"
    done
    run_memdet "bn-$how" diff --json "bn-$how-plain" "bn-$how-nudge"
    expect_status "bn-$how" 1
done
expect_json bn-before.out 'd["traces"][0]["initial_differing"] == ["1.running_mean"]'
expect_json bn-before.out 'd["traces"][0]["operator"]["kind"] == "diverged_before_recorded_range"'
expect_json bn-during.out 'd["traces"][0]["operator"]["kind"] == "input_from_outside"'
expect_json bn-during.out \
    'd["traces"][0]["operator"]["a"]["name"].startswith("aten.native_batch_norm") and d["traces"][0]["operator"]["labels"] == ["running_mean"]' \
    "native_batch_norm's running_mean input is named"
expect_json bn-during.out \
    'any(o["label"] == "running_mean (written)" for o in d["traces"][0]["operator"]["a"]["outputs"])' \
    "the running statistics the operator writes are digested"
expect_json bn-late.out \
    'd["traces"][0]["operator"]["kind"] == "after_recorded_range" and d["traces"][0]["first_step"] == 3'
grep -q '"kind":"buffer"' bn-before-plain/memdet-trace.jsonl || fail "buffers are not marked as such"
checked "buffers: a nudged running_mean is found before the first step, at native_batch_norm, and after the recorded range"

# A trace whose last line was cut while being written is read up to it.
head -c -40 bn-during-plain/memdet-trace.jsonl >cut.jsonl
run_memdet cut diff cut.jsonl bn-during-plain/memdet-trace.jsonl
expect_status cut 1
grep -q "last line of A is cut short" cut.out || fail "cut trace: $(cat cut.out)"
checked "a trace cut short in its last line is compared up to it"

# check with the trace as an artifact.
run_memdet check check -n 4 --stop-at-first-difference --timeout 200 --json check.json \
    --artifact 'chk/{run}/memdet-trace.jsonl' -- "$PYTHON" "$example" --out 'chk/{run}' \
    --steps 3 --trace
if [ "$status" -eq 1 ]; then
    expect_json check.json \
        'any(c["kind"] == "trace" for o in d["outcomes"] for c in o["vs_reference"])' \
        "check compares the trace artifacts as traces"
    expect_json check.json \
        'all(c["trace"]["operator"]["kind"] == "cause" and c["trace"]["operator"]["a"]["name"].startswith("aten.index_put")
             for o in d["outcomes"] for c in o["vs_reference"]
             if c["kind"] == "trace" and c["trace"]["first_step"] == 0)' \
        "every outcome that parts at step 0 names index_put"
    grep -q "traces differ" check.out || fail "check's report does not show the trace comparison"
    checked "check: trace artifacts compared as traces"
else
    expect_status check 0
    checked "check: four runs agreed; the trace comparison was not exercised by check"
fi

# Lying traces: one line naming the file, exit 2.
cp "a$parted/memdet-trace.jsonl" good.jsonl
printf '{"memdet_trace":1,"params":[]}\n{"step":0,"params":["ab"]}\n' >count.jsonl
printf '{"memdet_trace":1,"params":[]}\n{"step":1,"params":[]}\n{"step":1,"params":[]}\n' >order.jsonl
printf '{"memdet_trace":1,"params":[]}\n{"step":0,"params":[],"saved":"../../etc/passwd"}\n' >escape.jsonl
printf '{"memdet_trace":1,"params":[]}\nnot json\n' >garbled.jsonl
printf '{"memdet_trace":7,"params":[]}\n' >format.jsonl
for bad in count order escape garbled format; do
    run_memdet "bad-$bad" diff good.jsonl "$bad.jsonl"
    expect_status "bad-$bad" 2
    expect_one_memdet_line "bad-$bad" "$bad.jsonl:"
done
checked "lying traces: one line naming the file and line, exit 2"
