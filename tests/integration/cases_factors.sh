#!/bin/bash
# The factors against the cases from real bug reports (shared/cases): each
# must repeat when its cause is pinned and change when it is perturbed, as
# the cases' README measured.
#
# Usage: bash cases_factors.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

CASES=$SOURCE_DIR/../shared/cases
[ -d "$CASES" ] || skip "$CASES is missing"
"$PYTHON" -c 'import numpy' 2>/dev/null || skip "$PYTHON has no numpy (scripts/install-deps.sh installs it)"

# in_case CASE NAME ARGS...: memdet check in a fresh copy of CASE's folder.
in_case() { memdet_in_case check "$@"; }

# outcomes NAME: distinct outcomes of the campaign.
outcomes() { json_value "$1.json" 'len(d["outcomes"])'; }

in_case grad_clip_set grad_pinned -n 3 --pin aslr
expect_status grad_pinned 0
in_case grad_clip_set grad_perturbed -n 3 --pin env --perturb aslr
expect_status grad_perturbed 1
checked "grad_clip_set: repeats with aslr pinned, $(outcomes grad_perturbed) outcomes in 3 runs with it perturbed"

in_case uninit_class_prior uninit_aslr -n 3 --pin aslr
expect_status uninit_aslr 0
in_case uninit_class_prior uninit_pinned -n 3 --pin uninit
expect_status uninit_pinned 0
in_case uninit_class_prior uninit_perturbed -n 3 --perturb uninit --pin aslr
expect_status uninit_perturbed 1
expect_json uninit_perturbed.json 'len(d["outcomes"]) == 3' "every perturbed pattern gives its own result"
checked "uninit_class_prior: repeats with aslr or uninit pinned, changes with uninit perturbed"

if [ ! -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
    echo "jemalloc is not installed: logspace_allocator skipped"
elif ! grep -q avx512f /proc/cpuinfo; then
    echo "no AVX-512 on this CPU: logspace_allocator's SIMD path does not exist here, skipped"
else
    in_case logspace_allocator logspace_pinned -n 2 --pin allocator=jemalloc
    expect_status logspace_pinned 0
    # Run 1 is the glibc reference; runs 2 and 3 take the other allocators.
    in_case logspace_allocator logspace_perturbed -n 3 --perturb allocator --seed 1
    expect_status logspace_perturbed 1
    jemalloc_run='[r for r in d["runs"] for f in r["factors"] if f["name"] == "allocator" and f["value"] == "jemalloc"][0]'
    expect_json logspace_perturbed.json "$jemalloc_run['outcome'] != d['runs'][0]['outcome']" \
        "the jemalloc run differs from the glibc reference"
    checked "logspace_allocator: jemalloc repeats, and another allocator changes the result"
fi

in_case openblas_threads blas_one -n 2 --pin threads=1
expect_status blas_one 0
in_case openblas_threads blas_two -n 2 --pin threads=2
expect_status blas_two 0
cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
    in_case openblas_threads blas_perturbed -n 2 --perturb threads
    expect_status blas_perturbed 1
    checked "openblas_threads: repeats at 1 and at 2 threads, changes with the count perturbed"
else
    checked "openblas_threads: repeats at 1 and 2 threads (one CPU: no perturbation)"
fi
