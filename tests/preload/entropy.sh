# entropy=: every source of OS entropy repeats under one seed, changes with
# the seed, stays real when passive and is counted in the report; forked
# workers, threads and exec'd images get streams of their own, the same in
# every pinned run; entropy_window moves only the windowed reads.
source "$(dirname "$0")/lib.sh"

PROBE=$PROBES/probe_entropy
ROOT=lineage=0000000000000000

# probe CONFIG OUTPUT COMMAND...: run under the library, fail if it fails.
probe() {
  local config=$1 output=$2
  shift 2
  run_shim glibc "$config" "$output" "$@" ||
    fail "$* failed under [$config]: $(tail -3 "$output.err")"
}

# Reads each mode makes, and the source the report names for them.
declare -A reads=([getrandom]=1 [getentropy]=1 [arc4random]=4 [arc4random_buf]=1
  [arc4random_uniform]=4 [syscall]=1 [urandom]=1 [random]=1 [openat]=1 [readv]=1 [pread]=1
  [dup]=3 [uuid]=1 [fopen]=1 [fread_unlocked]=1 [fgetc]=4 [fgets]=2 [freopen]=1
  [random_device]=4)
declare -A names=([getrandom]=getrandom [getentropy]=getentropy [arc4random]=arc4random
  [arc4random_buf]=arc4random [arc4random_uniform]=arc4random [syscall]=syscall
  [urandom]=urandom [random]=random [openat]=urandom [readv]=urandom [pread]=urandom
  [dup]=urandom [uuid]=uuid [fopen]=urandom [fread_unlocked]=urandom [fgetc]=urandom
  [fgets]=uuid [freopen]=urandom [random_device]=random_device)

for mode in "${!reads[@]}"; do
  probe "entropy=a1;$ROOT" "$WORK/a" "$PROBE" "$mode"
  need_report
  expect_report entropy a1
  expect_report lineage 0
  expect_report entropy_reads "${reads[$mode]}"
  expect_report entropy_windowed 0
  sources=$(awk -F'\t' '$1 == "entropy_read" { print $3 }' "$REPORT" | sort -u)
  [[ $sources == "${names[$mode]}" ]] || fail "$mode: reads from '$sources', expected ${names[$mode]}"
  probe "entropy=a1;$ROOT" "$WORK/a2" "$PROBE" "$mode"
  probe "entropy=b2;$ROOT" "$WORK/b" "$PROBE" "$mode"
  probe passive "$WORK/p1" "$PROBE" "$mode"
  probe passive "$WORK/p2" "$PROBE" "$mode"
  cmp -s "$WORK/a" "$WORK/a2" || fail "$mode: two runs with one seed differ: $(cat "$WORK/a" "$WORK/a2")"
  cmp -s "$WORK/a" "$WORK/b" && fail "$mode: two seeds give the same values: $(cat "$WORK/a")"
  cmp -s "$WORK/p1" "$WORK/p2" && fail "$mode: two passive runs give the same values: $(cat "$WORK/p1")"
  echo "ok: $mode"
done

# Shapes the served values must keep.
probe "entropy=a1;$ROOT" "$WORK/out" "$PROBE" uuid
grep -Eqx 'uuid [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' "$WORK/out" ||
  fail "not a version-4 UUID: $(cat "$WORK/out")"
probe "entropy=a1;$ROOT" "$WORK/out" "$PROBE" dup
grep -qx "pipe 00000000000000000000000000000000" "$WORK/out" ||
  fail "a reused descriptor was served from the stream: $(cat "$WORK/out")"
probe "seed=1" "$WORK/s1" "$PROBE" getrandom
probe "seed=1" "$WORK/s2" "$PROBE" getrandom
cmp -s "$WORK/s1" "$WORK/s2" && fail "active without entropy= is not real randomness"
echo "ok: uuid shape, reused descriptors, entropy= off"

# distinct FILE LABEL...: each label's value differs from every other's.
distinct() {
  local file=$1
  shift
  local values
  values=$(for label in "$@"; do awk -v l="$label" '$1 == l { print $2 }' "$file"; done)
  [[ $(sort -u <<<"$values" | wc -l) == "$#" ]] || fail "values repeat among $*: $(cat "$file")"
}

# Forked workers: streams of their own, the same in every run, each with a
# report of its own.
probe "entropy=a1;$ROOT" "$WORK/f1" "$PROBE" fork
expect_report lineage 0
expect_report entropy_reads 1
lineages=$(for report in "$WORK"/report.*; do
  [[ $report == "$REPORT" ]] && continue
  [[ $(report_value "$report" entropy_reads) == 1 ]] || fail "a worker's report counts other reads"
  report_value "$report" lineage
done | sort -u)
[[ $(wc -l <<<"$lineages") == 2 ]] && ! grep -qx 0 <<<"$lineages" ||
  fail "workers' lineages: $lineages"
probe "entropy=a1;$ROOT" "$WORK/f2" "$PROBE" fork
cmp -s "$WORK/f1" "$WORK/f2" || fail "forked workers differ between runs: $(paste "$WORK/f1" "$WORK/f2")"
distinct "$WORK/f1" child1 child2 parent
echo "ok: fork"

# Threads: the same values whatever order they run in.
probe "entropy=a1;$ROOT" "$WORK/t1" "$PROBE" threads
expect_report entropy_reads 4
for run in 2 3 4; do
  probe "entropy=a1;$ROOT" "$WORK/t$run" "$PROBE" threads
  cmp -s "$WORK/t1" "$WORK/t$run" || fail "threads differ between runs: $(paste "$WORK/t1" "$WORK/t$run")"
done
distinct "$WORK/t1" thread1 thread2 thread3 main
ordinals=$(awk -F'\t' '$1 == "entropy_read" { print $5 }' "$REPORT" | sort | paste -sd,)
[[ $ordinals == 0,0.1,0.2,0.3 ]] || fail "reads by thread: $ordinals"
echo "ok: threads"

# Exec: the new image takes its own lineage through an environment of the
# same size; without a lineage= field the environment passes unchanged.
probe "entropy=a1;$ROOT" "$WORK/e1" "$PROBE" exec
lineage=$(report_value "$REPORT" lineage)
[[ $lineage =~ ^[0-9a-f]+$ && $lineage != 0 ]] || fail "exec'd image's lineage: '$lineage'"
expect_report entropy_reads 1
probe "entropy=a1;$ROOT" "$WORK/e2" "$PROBE" exec
cmp -s "$WORK/e1" "$WORK/e2" || fail "exec'd images differ between runs: $(paste "$WORK/e1" "$WORK/e2")"
distinct "$WORK/e1" parent child
[[ $(awk '$1 == "parent_environment" { print $2 }' "$WORK/e1") == \
  $(awk '$1 == "child_environment" { print $2 }' "$WORK/e1") ]] ||
  fail "the exec'd image's MEMDET_PRELOAD changed size: $(cat "$WORK/e1")"
probe "entropy=a1" "$WORK/e3" "$PROBE" exec
[[ $(awk '$1 == "parent" { print $2 }' "$WORK/e3") == $(awk '$1 == "child" { print $2 }' "$WORK/e3") ]] ||
  fail "without lineage= the exec'd image should keep the stream: $(cat "$WORK/e3")"
probe "entropy=a1;$ROOT" "$WORK/x1" "$PROBE" exec_sh
probe "entropy=a1;$ROOT" "$WORK/x2" "$PROBE" exec_sh
cmp -s "$WORK/x1" "$WORK/x2" || fail "/bin/sh -c differs between runs: $(paste "$WORK/x1" "$WORK/x2")"
distinct "$WORK/x1" parent getrandom
probe "entropy=a1;$ROOT" "$WORK/s1" "$PROBE" spawn
probe "entropy=a1;$ROOT" "$WORK/s2" "$PROBE" spawn
cmp -s "$WORK/s1" "$WORK/s2" || fail "posix_spawn differs between runs: $(paste "$WORK/s1" "$WORK/s2")"
[[ $(awk '{ print $2 }' "$WORK/s1" | sort -u | wc -l) == 3 ]] ||
  fail "posix_spawn'd images repeat a stream: $(cat "$WORK/s1")"
echo "ok: exec, posix_spawn"

# entropy_window=2-2 moves the second read only.
probe "entropy=a1;$ROOT" "$WORK/w0" "$PROBE" window
probe "entropy=a1;$ROOT;entropy_window=2-2;entropy_window_seed=77" "$WORK/w1" "$PROBE" window
expect_report entropy_windowed 1
for read in read1 read3; do
  grep -qxF "$(grep "^$read " "$WORK/w0")" "$WORK/w1" || fail "window 2-2 changed $read"
done
grep -qxF "$(grep "^read2 " "$WORK/w0")" "$WORK/w1" && fail "window 2-2 left read2 alone"
echo "ok: entropy_window"

[[ -x $PYTHON ]] || skip "$PYTHON is absent; the native sources passed"

# python_check NAME CODE: repeats pinned, differs between seeds.
python_check() {
  local name=$1 code=$2
  probe "entropy=a1;$ROOT" "$WORK/py1" "$PYTHON" -c "$code"
  probe "entropy=a1;$ROOT" "$WORK/py2" "$PYTHON" -c "$code"
  probe "entropy=b2;$ROOT" "$WORK/py3" "$PYTHON" -c "$code"
  cmp -s "$WORK/py1" "$WORK/py2" || fail "$name differs under one seed: $(paste "$WORK/py1" "$WORK/py2")"
  cmp -s "$WORK/py1" "$WORK/py3" && fail "$name is the same under two seeds: $(cat "$WORK/py1")"
  echo "ok: $name"
}

python_check os.urandom 'import os; print(os.urandom(8).hex())'
probe passive "$WORK/pp1" "$PYTHON" -c 'import os; print(os.urandom(8).hex())'
probe passive "$WORK/pp2" "$PYTHON" -c 'import os; print(os.urandom(8).hex())'
cmp -s "$WORK/pp1" "$WORK/pp2" && fail "os.urandom repeats when passive"

# The caller column names the Python frames, though os.urandom releases
# the interpreter's lock around getrandom.
cat >"$WORK/entropy_frames.py" <<'EOF'
import os
def draw():
    return os.urandom(8)
print(draw().hex())
EOF
probe "entropy=a1;$ROOT" "$WORK/out" "$PYTHON" "$WORK/entropy_frames.py"
need_report
grep -qF "|py:$WORK/entropy_frames.py:3;$WORK/entropy_frames.py:4" "$REPORT" ||
  fail "no Python frames in the callers: $(grep ^entropy_read "$REPORT")"
echo "ok: Python frames"

# A descriptor the image inherited open on /dev/urandom (a shell's
# redirection) is served too.
probe "entropy=a1;$ROOT" "$WORK/i1" sh -c 'head -c 8 </dev/urandom | od -An -tx1'
probe "entropy=a1;$ROOT" "$WORK/i2" sh -c 'head -c 8 </dev/urandom | od -An -tx1'
cmp -s "$WORK/i1" "$WORK/i2" || fail "an inherited /dev/urandom differs under one seed"
echo "ok: inherited descriptors"

# Children started by system() get streams of their own, the same in every
# run; flags getrandom does not know fail as they would without the library.
cat >"$WORK/entropy_system.py" <<'EOF'
import os, sys
for _ in range(2):
    os.system(sys.executable + " -c 'import os; print(os.urandom(8).hex())'")
EOF
probe "entropy=a1;$ROOT" "$WORK/y1" "$PYTHON" "$WORK/entropy_system.py"
probe "entropy=a1;$ROOT" "$WORK/y2" "$PYTHON" "$WORK/entropy_system.py"
cmp -s "$WORK/y1" "$WORK/y2" || fail "system() children differ between runs under one seed"
[[ $(sort -u "$WORK/y1" | wc -l) == 2 ]] || fail "two system() children drew the same bytes: $(cat "$WORK/y1")"
probe "entropy=a1;$ROOT" "$WORK/g" "$PYTHON" -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
buffer = ctypes.create_string_buffer(8)
print(libc.getrandom(buffer, 8, 0xff), ctypes.get_errno())'
[[ $(cat "$WORK/g") == "-1 22" ]] || fail "getrandom with unknown flags: $(cat "$WORK/g"), expected -1 EINVAL"
echo "ok: system() children, getrandom's unknown flags"

if timeout 60 "$PYTHON" -c 'import numpy' 2>/dev/null; then
  python_check numpy 'import numpy as np; print(np.random.default_rng().random())'
else
  echo "note: numpy is not importable; its check is left out"
fi
timeout 120 "$PYTHON" -c 'import torch' 2>/dev/null || skip "torch is not importable; the rest passed"
python_check torch 'import torch; print(torch.initial_seed())'
