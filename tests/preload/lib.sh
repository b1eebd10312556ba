# Shared by the preload test scripts, which ctest runs as
#   bash <script> <libmemdet_preload.so> <probe directory> <source directory>
set -u

LIB=$1
PROBES=$2
SOURCES=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
PYTHON=/usr/bin/python3

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# Lower allocators present on this machine: "" is glibc's.
available_lowers() {
  echo glibc
  [[ -r $JEMALLOC ]] && echo "$JEMALLOC"
  [[ -r $TCMALLOC ]] && echo "$TCMALLOC"
}

lower_path() { [[ $1 == glibc ]] || echo "$1"; }

# run_shim LOWER CONFIG OUTPUT COMMAND...
# Runs COMMAND (at most 300 s; status 124 when it ran out) with the library, then LOWER, preloaded and
# MEMDET_PRELOAD=CONFIG plus a report prefix (CONFIG "passive": no
# MEMDET_PRELOAD at all); stdout goes to OUTPUT, stderr to OUTPUT.err. Sets
# REPORT to the report of the process started, whose pid a bash -c records
# before exec'ing it.
run_shim() {
  local lower config output
  lower=$(lower_path "$1")
  config=$2
  output=$3
  shift 3
  rm -f "$WORK"/report.*
  local setting=(MEMDET_PRELOAD="$config;report=$WORK/report")
  [[ $config == passive ]] && setting=(-u MEMDET_PRELOAD)
  timeout 300 bash -c 'echo $$ >"$0"; exec "$@"' "$WORK/pid" \
    env "${setting[@]}" LD_PRELOAD="$LIB${lower:+ $lower}" \
    "$@" >"$output" 2>"$output.err"
  local status=$?
  REPORT=$WORK/report.$(cat "$WORK/pid")
  return $status
}

# run_plain LOWER OUTPUT COMMAND...: the same without the library.
run_plain() {
  local lower output
  lower=$(lower_path "$1")
  output=$2
  shift 2
  timeout 300 env LD_PRELOAD="$lower" "$@" >"$output" 2>"$output.err"
}

# report_value FILE KEY: the first value of KEY in a report.
report_value() { awk -F'\t' -v key="$2" '$1 == key { print $2; exit }' "$1"; }

# expect_report KEY VALUE: the report's KEY is VALUE.
expect_report() {
  local got
  got=$(report_value "$REPORT" "$1")
  [[ $got == "$2" ]] || fail "report $1 is '$got', expected '$2' ($REPORT)"
}

need_report() {
  [[ -s $REPORT ]] || fail "no report at $REPORT; stderr: $(cat "$WORK"/*.err 2>/dev/null | head -5)"
}
