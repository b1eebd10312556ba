# Sourced by the integration scripts: `source common.bash MEMDET SOURCE_DIR`.
#
# Each script gets a scratch directory as its working directory, removed on
# exit, and helpers that run memdet under a hard time limit and judge its
# exit status and JSON. The file ends in .bash so that the *.sh glob in
# tests/CMakeLists.txt does not take it for a test.

set -u

if [ $# -lt 2 ]; then
    echo "usage: bash $0 PATH-TO-MEMDET SOURCE-DIR" >&2
    exit 2
fi
MEMDET=$(realpath "$1")
SOURCE_DIR=$(realpath "$2")
PYTHON=/usr/bin/python3

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*"
    exit 77
}

checked() {
    echo "ok: $*"
}

[ -x "$MEMDET" ] || fail "$MEMDET is not an executable"
# JSON is read with the standard library only, so any python3 will do, but
# without one nothing can be judged.
[ -x "$PYTHON" ] || skip "$PYTHON is missing; it is needed to read memdet's JSON"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/memdet-test.XXXXXX") || fail "mktemp -d failed"
trap 'cd / && rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH" || fail "cannot enter $SCRATCH"

# No test may hang the suite, whatever memdet does.
LIMIT_SECONDS=300

# run_memdet NAME ARGS...: runs memdet with ARGS, stdout to NAME.out and
# stderr to NAME.err in the scratch directory; the exit status is in $status.
run_memdet() {
    local name=$1
    shift
    timeout "$LIMIT_SECONDS" "$MEMDET" "$@" >"$name.out" 2>"$name.err"
    status=$?
}

# expect_status NAME WANT: fails, showing what memdet printed, unless the
# last run_memdet exited with WANT.
expect_status() {
    local name=$1 want=$2
    if [ "$status" -ne "$want" ]; then
        echo "--- $name stdout:" >&2
        tail -n 30 "$name.out" >&2
        echo "--- $name stderr:" >&2
        tail -n 30 "$name.err" >&2
        fail "$name: exit status $status, expected $want"
    fi
}

# expect_json FILE EXPRESSION [WHAT]: EXPRESSION is Python over `d`, the
# parsed document; it must be true. On failure the expression and the
# document's "result" (or its start) are shown.
expect_json() {
    local file=$1 expression=$2 what=${3:-$2}
    "$PYTHON" - "$file" "$expression" <<'EOF' || fail "$file: $what"
import json
import sys

path, expression = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        d = json.load(f)
except (OSError, ValueError) as error:
    print(f"cannot read {path}: {error}", file=sys.stderr)
    sys.exit(1)
try:
    ok = eval(expression, {"d": d})
except Exception as error:
    ok = False
    print(f"evaluating {expression!r}: {type(error).__name__}: {error}", file=sys.stderr)
if not ok:
    shown = d.get("result", d) if isinstance(d, dict) else d
    print(f"not true: {expression}", file=sys.stderr)
    print(json.dumps(shown, indent=1)[:3000], file=sys.stderr)
    sys.exit(1)
EOF
}

# json_value FILE EXPRESSION: prints the value of EXPRESSION over `d`.
json_value() {
    "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$1" "$2"
}

# expect_one_memdet_line NAME TEXT: the stderr of NAME holds exactly one
# line starting with "memdet", and that line contains TEXT.
expect_one_memdet_line() {
    local name=$1 text=$2
    local count
    count=$(grep -c '^memdet' "$name.err")
    if [ "$count" -ne 1 ]; then
        cat "$name.err" >&2
        fail "$name: $count lines on stderr start with 'memdet', expected exactly one"
    fi
    if ! grep '^memdet' "$name.err" | grep -qF -- "$text"; then
        cat "$name.err" >&2
        fail "$name: the memdet line on stderr does not mention '$text'"
    fi
}

# memdet_in_case SUBCOMMAND CASE NAME ARGS...: memdet SUBCOMMAND in a fresh
# copy of $CASES/CASE's folder, on the case's own command, with --json
# NAME.json --artifact out.npy ARGS; stdout and stderr to NAME.out and
# NAME.err in the scratch directory, the exit status in $status.
memdet_in_case() {
    local subcommand=$1 case=$2 name=$3
    shift 3
    rm -rf "$SCRATCH/$name.dir"
    cp -r "$CASES/$case" "$SCRATCH/$name.dir"
    local command
    mapfile -t command < <("$PYTHON" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["command"]))' "$CASES/$case/case.json")
    (cd "$SCRATCH/$name.dir" && timeout "$LIMIT_SECONDS" "$MEMDET" "$subcommand" \
        --json "$SCRATCH/$name.json" --artifact out.npy "$@" -- "${command[@]}" \
        >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err")
    status=$?
}
