#!/bin/bash
# memdet diff end to end: identical files exit 0, one changed element exits
# 1 and is named with its tensor, coordinate and distance in text and JSON,
# a tolerance that covers it exits 0 and says so, and every lying file gets
# one line naming it and exit 2. The files are written byte by byte with the
# standard library, so no numpy is needed.
#
# Usage: bash diff.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

"$PYTHON" - <<'PY' || fail "cannot write the test files"
import json, os, struct

def npy(path, descr, shape, data, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", repr(tuple(shape)))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)

def safetensors(path, entries, header_extra=None, trailing=b""):
    header, data = {}, b""
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header) if header_extra is None else header_extra
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode() + data + trailing)

def f32(values):
    return struct.pack("<%df" % len(values), *values)

def next_up(x):
    (bits,) = struct.unpack("<I", struct.pack("<f", x))
    return struct.unpack("<f", struct.pack("<I", bits + 1))[0]

values = [0.5 * i + 1 for i in range(12)]
changed = list(values)
changed[1 * 4 + 2] = next_up(changed[1 * 4 + 2])
bias = struct.pack("<3h", 1, 2, 3)
safetensors("a.safetensors", [("bias", "I16", [3], bias), ("w", "F32", [3, 4], f32(values))])
safetensors("b.safetensors", [("bias", "I16", [3], bias), ("w", "F32", [3, 4], f32(changed))])
safetensors("c.safetensors", [("bias", "I16", [3], bias), ("w", "F32", [3, 4], f32(values))])

os.makedirs("run1/ckpt"); os.makedirs("run2/ckpt")
npy("run1/ckpt/x.npy", "<f4", [2, 3], f32([1, 2, 3, 4, 5, 6]))
npy("run2/ckpt/x.npy", "<f4", [2, 3], f32([1, 4, 2, 5, 3, 6]), fortran=True)
npy("run1/only1.npy", "<f4", [1], f32([1]))

nan = struct.pack("<I", 0x7fc00000)
npy("nan1.npy", "<f4", [2], f32([1]) + nan)
npy("nan2.npy", "<f4", [2], f32([1]) + struct.pack("<I", 0x7fc00001))

npy("short.npy", "<f4", [4], f32([1, 2]))
safetensors("trailing.safetensors", [("w", "F32", [1], f32([1]))], trailing=b"xx")
safetensors("dup.safetensors", [], header_extra='{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}')
safetensors("f4.safetensors", [], header_extra='{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}', trailing=b"x")
with open("huge.safetensors", "wb") as f:
    f.write(struct.pack("<Q", 2**63) + b"{}")
PY

run_memdet same diff a.safetensors c.safetensors
expect_status same 0
grep -q "^memdet diff: identical: " same.out || fail "identical files are not called identical: $(cat same.out)"
checked "identical safetensors: exit 0, identical"

run_memdet one diff a.safetensors b.safetensors
expect_status one 1
grep -q "^  w  float32 (3, 4): 1 of 12 elements differ" one.out || fail "the changed tensor is not named: $(cat one.out)"
grep -q "first at \[1, 2\]" one.out || fail "the coordinate [1, 2] is not given: $(cat one.out)"
grep -q "max ulp 1$" one.out || fail "the distance of 1 ULP is not given: $(cat one.out)"
grep -q "bias" one.out && fail "the unchanged tensor is listed: $(cat one.out)"
checked "one ULP at [1, 2] of w: exit 1, named with its coordinate and distance"

run_memdet json diff --json a.safetensors b.safetensors
expect_status json 1
expect_json json.out "d['verdict'] == 'differ' and [t['tensor'] for t in d['tensors'] if t['status'] != 'identical'] == ['w']" \
    "only w differs"
expect_json json.out "[t for t in d['tensors'] if t['tensor'] == 'w'][0]['first_index'] == [1, 2]" "w differs first at [1, 2]"
expect_json json.out "[t for t in d['tensors'] if t['tensor'] == 'w'][0]['max_ulp'] == 1" "w is 1 ULP apart"
checked "--json: the same finding"

run_memdet within diff --max-ulp 1 a.safetensors b.safetensors
expect_status within 0
grep -q "^memdet diff: equal within tolerance" within.out || fail "--max-ulp 1 does not say within tolerance: $(cat within.out)"
checked "--max-ulp 1: exit 0, equal within tolerance"

run_memdet dirs diff run1 run2
expect_status dirs 1
grep -q "only1.npy  only in run1" dirs.out || fail "the file only run1 has is not reported: $(cat dirs.out)"
grep -q "ckpt/x.npy" dirs.out && fail "C and Fortran order of the same values reported as differing: $(cat dirs.out)"
checked "folders: files paired by path, the missing one reported, memory order immaterial"

run_memdet nan diff nan1.npy nan2.npy
expect_status nan 1
grep -q "1 NaN pairs differ only in their payload bits" nan.out || fail "the NaN payload is not reported: $(cat nan.out)"
run_memdet nan_equal diff --equal-nan nan1.npy nan2.npy
expect_status nan_equal 0
checked "NaN payloads: a finding, and equal with --equal-nan"

for case in "short.npy:header says 16 bytes of data, file has 8" \
            "trailing.safetensors:2 trailing bytes after the last tensor" \
            "dup.safetensors:duplicate key 'w'" \
            "f4.safetensors:tensor 'w': dtype F4" \
            "huge.safetensors:header length 9223372036854775808 is over the format's limit" \
            "absent.npy:cannot open"; do
    file=${case%%:*}
    text=${case#*:}
    run_memdet bad diff "$file" "$file"
    expect_status bad 2
    expect_one_memdet_line bad "$file: $text"
    [ -s bad.out ] && fail "$file: a refused file still printed a report"
done
checked "lying files: one line naming the file and the problem, exit 2"

run_memdet tol diff --atol -1 a.safetensors b.safetensors
expect_status tol 2
expect_one_memdet_line tol "--atol"
run_memdet mixed diff a.safetensors run1
expect_status mixed 2
expect_one_memdet_line mixed "is a folder"
checked "bad options: one line, exit 2"

run_memdet args diff a.safetensors
expect_status args 2
checked "one path: exit 2"

# .npz archives as numpy writes them, when numpy is here; the rest of the
# script needs none.
if ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
    echo "note: numpy is missing; the .npz cases did not run"
    exit 0
fi
"$PYTHON" - <<'PY' || fail "cannot write the .npz files"
import io, zipfile
import numpy as np
w = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
w2 = w.copy(order="F")
w2[0, 3] = np.nextafter(w2[0, 3], np.float32(np.inf))
np.savez("a.npz", w=w, **{"layer/b": np.arange(4)})
np.savez_compressed("b.npz", w=w2, **{"layer/b": np.arange(4)})
buffer = io.BytesIO()
np.save(buffer, w)
with zipfile.ZipFile("clash.npz", "w") as z:
    z.writestr("a", buffer.getvalue())
    z.writestr("a.npy", buffer.getvalue())
PY
run_memdet npz diff --json a.npz b.npz
expect_status npz 1
expect_json npz.out "[(t['tensor'], t['first_index'], t['max_ulp']) for t in d['tensors'] if t['status'] != 'identical'] == [('w', [0, 3], 1)]" \
    "only w differs, at [0, 3], by 1 ULP"
run_memdet clash diff clash.npz clash.npz
expect_status clash 2
expect_one_memdet_line clash "clash.npz: members 'a' and 'a.npy' both name tensor 'a'"
checked ".npz: stored against deflated, Fortran order, named with its coordinate; a name collision is exit 2"

# Training logs: compared line by line and number by number, as check does.
mkdir -p logs1 logs2
printf 'step 0 loss 0.6931471824645996 time 1.2s\nstep 1 loss 0.5\n' >logs1/train.log
printf 'step 0 loss 0.6931471824645996 time 1.9s\nstep 1 loss 0.5000000596046448\n' >logs2/train.log
run_memdet log diff --json --step-regex '^step (\d+)' logs1/train.log logs2/train.log
expect_status log 1
expect_json log.out 'd["texts"][0]["text"]["first_line"] == 1 and d["texts"][0]["status"] == "differs"'
expect_json log.out 'd["texts"][0]["text"]["first_number_step"] == "1"' "the first number differs at step 1"
run_memdet log_masked diff --mask 'time \S+' logs1 logs2
expect_status log_masked 1
grep -q "numbers first differ at line 2, step\|first at line 2" log_masked.out ||
    fail "masked log: $(cat log_masked.out)"
printf 'step 1 loss 0.5 time 1.2s\n' >masked1.log
printf 'step 1 loss 0.5 time 1.9s\n' >masked2.log
run_memdet log_equal diff --mask 'time \S+' masked1.log masked2.log
expect_status log_equal 0
grep -q "equal within tolerance" log_equal.out || fail "masked log: $(cat log_equal.out)"
run_memdet log_regex diff --step-regex '(' logs1/train.log logs2/train.log
expect_status log_regex 2
expect_one_memdet_line log_regex "--step-regex"
checked "text logs: the first differing line and step, masks, a bad regex is exit 2"

# Folders are paired by the names their files have there, links followed.
mkdir -p target linked_a linked_b dir_x dir_y linked_c linked_d
echo 'loss 1' >target/f
ln -s ../target/f linked_a/w
ln -s ../target/f linked_b/v
run_memdet links diff linked_a linked_b
expect_status links 1
grep -q "w  only in linked_a" links.out || fail "links: $(cat links.out)"
echo 'a 1' >dir_x/f
echo 'a 2' >dir_y/f
ln -s ../dir_x linked_c/sub
ln -s ../dir_y linked_d/sub
run_memdet linked_dirs diff linked_c linked_d
expect_status linked_dirs 1
grep -q "sub/f" linked_dirs.out || fail "linked folders: $(cat linked_dirs.out)"
checked "folders: files named where they are, linked folders followed"

# A log's growth table: from the first step whose numbers differ, steps 0,
# 1, 2, 4, ... after it and the last.
"$PYTHON" - <<'PY'
with open("grow_a.log", "w") as a, open("grow_b.log", "w") as b:
    for step in range(12):
        a.write(f"step {step} loss {1.0 / (step + 1)!r}\n")
        b.write(f"step {step} loss {1.0 / (step + 1) + (0 if step < 3 else 1e-3 * step)!r}\n")
PY
run_memdet grow diff --json --step-regex '^step (\d+)' grow_a.log grow_b.log
expect_status grow 1
expect_json grow.out '[r["step"] for r in d["texts"][0]["text"]["growth"]] == ["3", "4", "5", "7", "11"]' \
    "growth rows at steps 3, 4, 5, 7 and the last, 11"
expect_json grow.out 'abs(d["texts"][0]["text"]["growth"][-1]["max_abs"] - 0.011) < 1e-9'
checked "text logs: the growth table from the first divergent step"
run_memdet no_step diff --step-regex '^epoch (\d+)' grow_a.log grow_b.log
expect_status no_step 1
grep -q "the step regex matched no line" no_step.out || fail "no step: $(cat no_step.out)"
checked "text logs: a step regex that matches no line is said so"
