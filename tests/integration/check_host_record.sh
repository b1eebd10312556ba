#!/usr/bin/env bash
# Each run's record names the program and script it ran and the BLAS and
# allocator the workload really loaded, as the dynamic linker reported them.
source "$(dirname "$0")/common.bash"

"$PYTHON" -c 'import numpy' 2>/dev/null || skip "numpy is needed for a workload that loads a BLAS"
cat > multiply.py <<'PY'
import numpy as np
a = np.ones((64, 64))
print(float((a @ a).sum()))
PY

run_memdet numpy check -n 2 --out numpy -- "$PYTHON" multiply.py
expect_status numpy 0
system_blas=$(readlink -f /lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
expect_json numpy/run-01/record.json 'd["schema"] == "memdet.run/2" and d["loaded"]["recorded"]' \
    "the run recorded what it loaded"
expect_json numpy/run-01/record.json \
    'd["program"]["interpreter"].startswith("python") and d["program"]["script"] == "multiply.py" and len(d["program"]["script_digest"]) == 32' \
    "the script behind the interpreter is named and digested"
if [ -n "$system_blas" ]; then
    expect_json numpy/run-01/record.json \
        "any(o['resolved'] == '$system_blas' for o in d['loaded']['blas_objects'])" \
        "the BLAS the system's libblas.so.3 points at ($system_blas) is the one recorded"
fi
expect_json numpy/run-01/record.json 'd["loaded"]["allocator"] == "glibc malloc"' \
    "glibc's allocator when nothing else is preloaded"
grep -q "^loaded (run 01): BLAS " numpy.out || fail "the summary does not name the BLAS"
checked "BLAS recorded: $(grep '^loaded' numpy.out)"

jemalloc=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 2>/dev/null || true)
if [ -n "$jemalloc" ]; then
    # The preload reaches the workload through env, not memdet itself, which
    # may be a sanitizer build that must load its own runtime first.
    run_memdet jemalloc check -n 2 --out jemalloc -- \
        /usr/bin/env "LD_PRELOAD=$jemalloc" "$PYTHON" multiply.py
    expect_status jemalloc 0
    expect_json jemalloc/run-01/record.json 'd["loaded"]["allocator"] == "jemalloc"' \
        "a preloaded jemalloc is recorded as the allocator"
    checked "jemalloc under LD_PRELOAD is recorded"
else
    echo "note: libjemalloc2 is not installed; the allocator case was not tried"
fi

# env -i drops LD_AUDIT: the objects env itself loaded are not passed off
# as the program's.
run_memdet cleared check -n 2 --out cleared -- /usr/bin/env -i PATH=/usr/bin python3 multiply.py
expect_json cleared/run-01/record.json \
    'not d["loaded"]["recorded"] and "never ran in" in d["loaded"]["note"]' \
    "a wrapper that dropped LD_AUDIT is not recorded as the program"
expect_json cleared/run-01/record.json 'd["program"]["script"] == "multiply.py"' \
    "env's own PATH finds the interpreter and its script"
checked "env -i: loaded libraries honestly not recorded"

# A static program loads no audit library: the record says so.
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
    run_memdet static check -n 2 --out static -- /bin/busybox true
    expect_json static/run-01/record.json 'not d["loaded"]["recorded"]' "a static program is not claimed"
fi
echo PASS
