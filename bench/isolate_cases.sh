#!/bin/bash
# memdet isolate over the public cases in shared/cases: each case copied to
# a scratch folder, built when it is compiled, and isolated with its
# artifacts. Prints one line per case: the verdict memdet gave, the one the
# cases' README lists, the factors found, and the runs and time it took.
# Too slow for CI (PyTorch cases take seconds a run): a benchmark.
#
# Usage: bash bench/isolate_cases.sh PATH-TO-MEMDET CASES-DIR [CASE...]
set -u
MEMDET=$(realpath "$1")
CASES=$(realpath "$2")
shift 2
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/memdet-cases.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

# What the cases' README says memdet should find: the verdict, the factors
# named as its cause, and after "values:" those whose value the result
# depends on.
declare -A EXPECTED=(
    [embedding_index_mlp]="not-explained"
    [openmp_atomic_sgd]="not-explained"
    [grad_clip_set]="layout-or-timing-dependent aslr"
    [uninit_class_prior]="reads-uninitialised-memory values:uninit"
    [pointer_key_grad_map]="layout-or-timing-dependent aslr"
    [openblas_threads]="reproducible values:threads"
    [logspace_allocator]="reproducible values:allocator"
    [unseeded_generator_init]="missed-seed entropy"
    [scandir_split]="depends-on-directory-order values:fileorder"
)

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for dir in "$CASES"/*/; do
        names+=("$(basename "$dir")")
    done
fi

printf '%-24s %-40s %-40s %5s %7s\n' case "memdet says" "expected" runs seconds
for name in "${names[@]}"; do
    cp -r "$CASES/$name" "$SCRATCH/$name"
    cd "$SCRATCH/$name" || exit 1
    build=$(/usr/bin/python3 -c 'import json; print(json.load(open("case.json")).get("build", ""))')
    if [ -n "$build" ] && ! bash -c "$build" >build.log 2>&1; then
        printf '%-24s build failed: %s\n' "$name" "$(tail -1 build.log)"
        continue
    fi
    mapfile -t command < <(/usr/bin/python3 -c \
        'import json; print("\n".join(json.load(open("case.json"))["command"]))')
    artifacts=()
    while read -r artifact; do
        [ "$artifact" = stdout ] || artifacts+=(--artifact "$artifact")
    done < <(/usr/bin/python3 -c \
        'import json; print("\n".join(json.load(open("case.json"))["artifacts"]))')
    start=$(date +%s.%N)
    "$MEMDET" isolate --out campaign --json isolate.json --timeout 600 "${artifacts[@]}" \
        -- "${command[@]}" >isolate.out 2>isolate.err
    status=$?
    end=$(date +%s.%N)
    said=$(/usr/bin/python3 - isolate.json <<'EOF' 2>/dev/null || echo "no report (exit $status)"
import json, sys
d = json.load(open(sys.argv[1]))
changed = [f for f in d["factors"] if f["status"] == "changes-result"]
causes = [f["name"] for f in changed if f.get("explains_divergence")]
values = [f["name"] for f in changed if not f.get("explains_divergence")]
print(" ".join([d["verdict"]] + causes + (["values:" + ",".join(values)] if values else [])))
EOF
)
    runs=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"])' \
        isolate.json 2>/dev/null || echo -)
    printf '%-24s %-40s %-40s %5s %7.1f\n' "$name" "$said" "${EXPECTED[$name]:-?}" "$runs" \
        "$(echo "$end - $start" | bc)"
    if [ -n "${MEMDET_CASES_KEEP:-}" ]; then
        mkdir -p "$MEMDET_CASES_KEEP"
        cp isolate.out "$MEMDET_CASES_KEEP/$name.out"
    fi
    cd "$SCRATCH" || exit 1
    rm -rf "$SCRATCH/$name"
done
