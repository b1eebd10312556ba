# The thread-count setters a program calls at run time: the report names
# the last call, the call still reaches the library beneath, a setter
# called from inside another counts once; and memdet's threads record says
# "overridden by the program" only when the count set differs from the one
# pinned. torch's own call at import, with the count OMP_NUM_THREADS gives,
# is no override.
source "$(dirname "$0")/lib.sh"

OMP_PROBE=$PROBES/probe_omp
BLAS_PROBE=$PROBES/probe_openblas
MEMDET=$(dirname "$LIB")/memdet
[[ -x $OMP_PROBE ]] || skip "probe_omp was not built (no OpenMP in this compiler)"

# omp_set_num_threads is recorded and forwarded: libgomp runs a team of 1.
OMP_NUM_THREADS=2 run_shim glibc "trace_threads=1" "$WORK/out" "$OMP_PROBE" set 1 ||
  fail "probe_omp set 1 failed: $(head -3 "$WORK/out.err")"
need_report
expect_report threads_set_calls 1
expect_report threads_set_by omp_set_num_threads
expect_report threads_set 1
expect_report threads_set_low 1
expect_report threads_set_high 1
grep -qx "team 1" "$WORK/out" || fail "libgomp did not get the count: $(cat "$WORK/out")"

# No call: no setting reported, and the environment's count holds.
OMP_NUM_THREADS=2 run_shim glibc "trace_threads=1" "$WORK/out" "$OMP_PROBE" ||
  fail "probe_omp failed: $(head -3 "$WORK/out.err")"
need_report
expect_report threads_set_calls 0
[[ -z $(report_value "$REPORT" threads_set_by) ]] || fail "threads_set_by without a call"
grep -qx "team 2" "$WORK/out" || fail "OMP_NUM_THREADS=2 gave: $(cat "$WORK/out")"

# Passive: forwarded all the same.
OMP_NUM_THREADS=2 run_shim glibc passive "$WORK/out" "$OMP_PROBE" set 1 ||
  fail "probe_omp set 1 failed passive: $(head -3 "$WORK/out.err")"
grep -qx "team 1" "$WORK/out" || fail "passive: libgomp did not get the count: $(cat "$WORK/out")"
echo "ok: omp_set_num_threads recorded and forwarded"

# OpenBLAS: openblas_set_num_threads calls goto_set_num_threads inside;
# one call, named by the outer function.
if [[ -x $BLAS_PROBE ]]; then
  OPENBLAS_NUM_THREADS=2 run_shim glibc "trace_threads=1" "$WORK/out" "$BLAS_PROBE" 1 ||
    fail "probe_openblas failed: $(head -3 "$WORK/out.err")"
  need_report
  expect_report threads_set_calls 1
  expect_report threads_set_by openblas_set_num_threads
  expect_report threads_set 1
  grep -qx "threads 1" "$WORK/out" || fail "OpenBLAS did not get the count: $(cat "$WORK/out")"
  echo "ok: openblas_set_num_threads counted once"
else
  echo "note: no OpenBLAS here; its setter is not checked"
fi

# memdet's record: overridden when the count set differs from the pin.
[[ -x $MEMDET ]] || fail "$MEMDET is missing; build memdet"
threads_record() {
  "$PYTHON" -c '
import json, sys
record = json.load(open(sys.argv[1]))
[factor] = [f for f in record["factors"] if f["name"] == "threads"]
print(factor["verified"] + "|" + factor["observed"] + "|" + factor.get("note", ""))' "$1"
}

timeout 120 "$MEMDET" run --pin threads=2 --json "$WORK/over.json" -- "$OMP_PROBE" set 1 \
  >"$WORK/over.out" 2>"$WORK/over.err" || fail "memdet run failed: $(tail -3 "$WORK/over.err")"
seen=$(threads_record "$WORK/over.json")
[[ $seen == "differs|overridden by the program: omp_set_num_threads(1)"* ]] ||
  fail "pinned 2, the program set 1: the record says '$seen'"

timeout 120 "$MEMDET" run --pin threads=1 --json "$WORK/same.json" -- "$OMP_PROBE" set 1 \
  >"$WORK/same.out" 2>"$WORK/same.err" || fail "memdet run failed: $(tail -3 "$WORK/same.err")"
seen=$(threads_record "$WORK/same.json")
[[ $seen == verified\|*\|*"set the same count itself: omp_set_num_threads(1)"* ]] ||
  fail "pinned 1, the program set 1: the record says '$seen'"
echo "ok: the threads record tells an override from the same count"

# torch: its import sets the count from OMP_NUM_THREADS (no override);
# torch.set_num_threads(1) under a pin of 2 is one.
if ! timeout 120 "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  skip "$PYTHON has no torch; the torch half is not checked"
fi
timeout 300 "$MEMDET" run --pin threads=2 --json "$WORK/torch_import.json" \
  -- "$PYTHON" -c "import torch" >"$WORK/ti.out" 2>"$WORK/ti.err" ||
  fail "memdet run (import torch) failed: $(tail -3 "$WORK/ti.err")"
seen=$(threads_record "$WORK/torch_import.json")
[[ $seen == verified\|*"omp_set_num_threads(2)"* ]] ||
  fail "import torch under a pin of 2: the record says '$seen'"

timeout 300 "$MEMDET" run --pin threads=2 --json "$WORK/torch_set.json" \
  -- "$PYTHON" -c "import torch; torch.set_num_threads(1)" >"$WORK/ts.out" 2>"$WORK/ts.err" ||
  fail "memdet run (torch.set_num_threads) failed: $(tail -3 "$WORK/ts.err")"
seen=$(threads_record "$WORK/torch_set.json")
[[ $seen == "differs|overridden by the program: omp_set_num_threads(1)"* ]] ||
  fail "torch.set_num_threads(1) under a pin of 2: the record says '$seen'"
echo "ok: torch's import is no override, torch.set_num_threads(1) is"
