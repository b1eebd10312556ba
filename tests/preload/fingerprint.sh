# fingerprint=DIR: every process image leaves a live file and, when it
# leaves by exit, _exit, exec or a fatal signal, a full record; SIGKILL
# leaves the live file alone. Per-thread digests key on creation ordinals,
# the caller of a kept allocation is named as module + offset, and the
# record is the same under each lower allocator.
source "$(dirname "$0")/lib.sh"

DIR=$WORK/fp
# fp_run LOWER ARGS...: the probe with only fingerprint= set; RECORD and
# LIVE name the launched process's files.
fp_run() {
  local lower
  lower=$(lower_path "$1")
  shift
  rm -rf "$DIR" && mkdir -p "$DIR"
  timeout 120 bash -c 'echo $$ >"$0"; exec "$@"' "$WORK/pid" \
    env MEMDET_PRELOAD="fingerprint=$DIR;fp_threshold=65536" LD_PRELOAD="$LIB${lower:+ $lower}" \
    "$PROBES/probe_fingerprint" "$@" >"$WORK/out" 2>"$WORK/out.err"
  local status=$?
  local pid
  pid=$(cat "$WORK/pid")
  RECORD=$DIR/fingerprint.$pid.txt
  LIVE=$DIR/fingerprint.$pid.live
  return $status
}

value() { awk -F'\t' -v key="$2" '$1 == key { print $2; exit }' "$1"; }

for lower in $(available_lowers); do
  fp_run "$lower" threads exit || fail "probe failed under $lower: $(head -3 "$WORK/out.err")"
  [[ -s $RECORD && -s $LIVE ]] || fail "no record or live file under $lower"
  [[ $(value "$RECORD" end) == exit ]] || fail "end is not exit"
  tail -1 "$RECORD" | grep -q '^end_of_record' || fail "record cut short"
  for ordinal in 0 0.1 0.2 0.3; do
    grep -q "^thread	$ordinal	" "$RECORD" || fail "no thread $ordinal under $lower"
  done
  count=$(awk -F'\t' '$1 == "thread" && $2 == "0.2" { print $3 }' "$RECORD")
  (( count == 500 )) || fail "thread 0.2 made 500 allocations, the record says $count"
  # The 8 MiB block: kept (above the threshold) with the probe as caller.
  large=$(awk -F'\t' '$1 == "large" && $5 == 8388608' "$RECORD")
  [[ $large == *probe_fingerprint+0x* ]] || fail "8 MiB block not kept with its caller: $large"
  printed=$(awk '{ print $2 }' "$WORK/out")
  [[ $(awk -F'\t' '{ print $6 }' <<<"$large") == "${printed#0x}" ]] ||
    fail "kept address differs from the probe's $printed"
  (( $(grep -c '^first	0	' "$RECORD") == 1024 )) || fail "main thread's first entries not 1024"
  [[ $(value "$RECORD" maps_digest) =~ ^[0-9a-f]+$ ]] || fail "no maps digest"
  grep -q '^region	[0-9a-f]*	[0-9]*	r-xp	.*probe_fingerprint$' "$RECORD" ||
    fail "no region line for the probe's code"
  [[ $(value "$RECORD" numa_pages) =~ ^(N[0-9]+=[0-9]+,?)+$ ]] || fail "no numa pages"
  [[ $(value "$RECORD" physical) =~ ^(readable|hidden|unreadable|none)$ ]] || fail "physical"
  echo "ok: record under $lower"
done

# The size sequence of a deterministic program repeats, under each lower
# allocator (their own start-up allocations through the hooks count too).
for lower in $(available_lowers); do
  digests=()
  for round in 1 2; do
    fp_run "$lower" same exit || fail "probe failed"
    digests+=("$(awk -F'\t' '$1 == "thread" && $2 == "0" { print $3, $4 }' "$RECORD")")
  done
  [[ ${digests[0]} == "${digests[1]}" ]] || fail "size sequence not repeated under $lower"
  [[ -n ${digests[0]} ]] || fail "no main thread digest under $lower"
done
echo "ok: the size sequence repeats under every allocator"

# How the process leaves.
fp_run glibc same _exit || fail "_exit probe failed"
[[ $(value "$RECORD" end) == _exit ]] || fail "_exit: end is $(value "$RECORD" end)"
fp_run glibc same abort
(( $? == 134 )) || fail "abort did not end the probe with SIGABRT"
[[ $(awk -F'\t' '$1 == "end" { print $2, $3 }' "$RECORD") == "signal 6" ]] ||
  fail "abort: end is $(awk -F'\t' '$1 == "end"' "$RECORD")"
fp_run glibc same exec || fail "exec probe failed"
[[ $(value "$RECORD" end) == exec ]] || fail "exec: end is $(value "$RECORD" end)"
pid=$(cat "$WORK/pid")
[[ -s $DIR/fingerprint.$pid-1.live ]] || fail "the exec'd image left no fingerprint.$pid-1.live"
fp_run glibc same kill
(( $? == 137 )) || fail "kill did not end the probe with SIGKILL"
[[ -s $LIVE && ! -e $RECORD ]] || fail "SIGKILL: want the live file alone"
head -c 8 "$LIVE" | grep -q memdetfp || fail "live file has no magic"
echo "ok: exit, _exit, abort, exec and SIGKILL"

# A forked child leaves its own, naming its parent.
fp_run glibc fork exit || fail "fork probe failed"
children=$(ls "$DIR"/fingerprint.*.txt | grep -vc "/fingerprint.$(cat "$WORK/pid").txt")
(( children == 1 )) || fail "want one child record, found $children"
child=$(ls "$DIR"/fingerprint.*.txt | grep -v "/fingerprint.$(cat "$WORK/pid").txt")
[[ $(value "$child" ppid) == $(cat "$WORK/pid") ]] || fail "child's ppid"
count=$(awk -F'\t' '$1 == "thread" && $2 == "0" { print $3 }' "$child")
(( count == 100 )) || fail "the child made 100 allocations, its record says $count"
echo "ok: a forked child's own fingerprint"

# Passive stays passive: no fingerprint without the key.
rm -rf "$DIR" && mkdir -p "$DIR"
MEMDET_PRELOAD="   " LD_PRELOAD=$LIB "$PROBES/probe_fingerprint" same exit >/dev/null ||
  fail "passive probe failed"
[[ -z $(ls "$DIR") ]] || fail "passive wrote a fingerprint"
echo "ok: nothing when passive"
