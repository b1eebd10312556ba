#!/bin/bash
# memdet isolate on the missed-seed cases from real bug reports
# (shared/cases): an unseeded numpy generator must get "missed seed: OS
# entropy" with the default_rng call named, a seeded split of an unsorted
# listing "depends on directory order" with the listing named; a program
# that reads entropy and the clock without depending on them stays
# reproducible with nothing blamed; a static program is never called
# pinned.
#
# Usage: bash isolate_seeds.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

CASES=$SOURCE_DIR/../shared/cases
"$PYTHON" -c 'import numpy' 2>/dev/null || skip "$PYTHON has no numpy (scripts/install-deps.sh installs it)"

# isolate_case CASE NAME ARGS...: memdet isolate in a fresh copy of CASE's
# folder, its campaign in NAME.campaign.
isolate_case() {
    local case=$1 name=$2
    shift 2
    memdet_in_case isolate "$case" "$name" --out "$SCRATCH/$name.campaign" "$@"
}


# A control: it reads OS entropy and the wall clock, but writes neither.
cat >control.py <<'PY'
import os, sys, time, uuid
os.urandom(16)
uuid.uuid4()
time.time()
with open(sys.argv[1], "w") as out:
    out.write("42\n")
PY
run_memdet control isolate --json control.json --out control.campaign --artifact '{run_dir}/out.txt' \
    -- "$PYTHON" control.py '{run_dir}/out.txt'
expect_status control 0
expect_json control.json "d['verdict'] == 'reproducible'" "control: reproducible"
expect_json control.json "not [f for f in d['factors'] if f['status'] == 'changes-result']" \
    "control: nothing blamed"
expect_json control.json "next(f for f in d['factors'] if f['name'] == 'entropy')['status'] != 'unused'" \
    "control: its entropy reads were seen, so entropy was tried"
checked "a program that reads entropy and the clock without depending on them: reproducible in $(json_value control.json 'd["runs"]') runs"

if [ -d "$CASES/unseeded_generator_init" ]; then
    isolate_case unseeded_generator_init unseeded
    expect_status unseeded 1
    expect_json unseeded.json "d['verdict'] == 'missed-seed'" "unseeded: missed seed"
    expect_json unseeded.json "'entropy' in [f['name'] for f in d['factors'] if f['status'] == 'changes-result']" \
        "unseeded: entropy blamed"
    expect_json unseeded.json "d['seed_reads'] and d['seed_reads'][0]['found']" "unseeded: the read was named"
    expect_json unseeded.json "'default_rng' in d['seed_reads'][0]['site']['line']" \
        "unseeded: the read is the default_rng call"
    grep -q "MISSED SEED: the result follows OS entropy" unseeded.out || fail "unseeded: no verdict line"
    checked "unseeded_generator_init: missed seed at $(json_value unseeded.json 'd["seed_reads"][0]["site"]["location"]') in $(json_value unseeded.json 'd["runs"]') runs"
else
    echo "note: $CASES/unseeded_generator_init is missing; its check is left out"
fi

if [ -d "$CASES/scandir_split" ]; then
    isolate_case scandir_split scandir
    expect_status scandir 1
    expect_json scandir.json "d['verdict'] == 'depends-on-directory-order'" "scandir: depends on directory order"
    expect_json scandir.json "[f['name'] for f in d['factors'] if f['status'] == 'changes-result'] == ['fileorder']" \
        "scandir: only fileorder blamed"
    expect_json scandir.json "any(l['directory'].endswith('/samples') for l in d['listings'])" \
        "scandir: the samples listing is named"
    checked "scandir_split: depends on directory order in $(json_value scandir.json 'd["runs"]') runs"
else
    echo "note: $CASES/scandir_split is missing; its check is left out"
fi

# A static program loads no preload library: never "pinned".
if printf '#include <sys/random.h>\n#include <stdio.h>\nint main(void){unsigned v=0;getrandom(&v,sizeof v,0);printf("%%u\\n",v);return 0;}\n' |
    cc -static -x c -o static_probe - 2>/dev/null; then
    run_memdet static run --pin entropy --json static.json -- ./static_probe
    expect_json static.json \
        "next(f for f in d['factors'] if f['name'] == 'entropy').get('verified') != 'verified'" \
        "static: entropy not verified"
    expect_json static.json \
        "'did not load the preload library' in next(f for f in d['factors'] if f['name'] == 'entropy')['reason']" \
        "static: the reason names the preload library"
    checked "a static program: entropy $(json_value static.json "next(f for f in d['factors'] if f['name'] == 'entropy')['applied']")"
else
    echo "note: cc -static is not available here; the static-program check is left out"
fi
