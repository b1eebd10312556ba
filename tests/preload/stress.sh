# Allocation-heavy programs under the library with every hook active, over
# each lower allocator: no crash, and the same output as without it.
#   - stress_malloc: threads, random sizes, realloc, frees across threads
#   - stress_new: every operator new/delete form from std::threads
#   - stress_numpy.py: numpy and a small torch computation
# Their outputs depend on no entropy, clock or listing order, so serving
# those must not change them either.
source "$(dirname "$0")/lib.sh"

cpus=$(taskset -pc $$ | sed 's/.*: //')
first_two=$(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' |
  awk -F- '{ if (NF == 2) for (c = $1; c <= $2; c++) print c; else print $1 }' | head -2 |
  paste -sd,)
all_on() {
  echo "seed=5eed;heap=$1;heap_random=1;uninit=165;hugepages=$2;cpus=$first_two;free_cpus=$cpus;trace_threads=1$3"
}
# Everything on (twice, differently: the second also serves OS entropy,
# the wall clock and directory listings), only the report, and passive.
seeds=";entropy=5eed;lineage=0000000000000000;clock=counter;clock_epoch=946684800"
seeds+=";fileorder=keyed;fileorder_key=5eed"
configs=("$(all_on 16 huge ";mlock=1")" "$(all_on 48 small "$seeds")" "" passive)

python_ok=0
if [[ -x $PYTHON ]] && timeout 60 "$PYTHON" -c 'import numpy' 2>/dev/null; then
  python_ok=1
else
  echo "note: $PYTHON with numpy absent; the Python part is left out"
fi

compare() {  # LOWER CONFIG NAME COMMAND...
  local lower=$1 config=$2 name=$3
  shift 3
  local status=0
  run_shim "$lower" "$config" "$WORK/shim" "$@" || status=$?
  (( status != 124 )) || fail "$name did not finish in 300 s under $lower [$config]"
  (( status == 0 )) ||
    fail "$name crashed or failed ($status) under $lower [$config]: $(tail -3 "$WORK/shim.err")"
  cmp -s "$WORK/plain" "$WORK/shim" ||
    fail "$name output differs under $lower [$config]: $(diff "$WORK/plain" "$WORK/shim" | head -5)"
  if [[ $config == passive ]]; then
    [[ ! -e $REPORT ]] || fail "a passive run wrote a report"
  else
    need_report
    expect_report lower_consistent 1
  fi
}

for lower in $(available_lowers); do
  # jemalloc has no pvalloc: alone beneath the program, glibc's would be
  # mixed with jemalloc's free. The shim builds its own, so it is tested
  # there in the runs that follow.
  pvalloc=()
  [[ $lower == "$JEMALLOC" ]] && pvalloc=(--no-pvalloc)
  run_plain "$lower" "$WORK/plain" "$PROBES/stress_malloc" "${pvalloc[@]}" ||
    fail "stress_malloc failed without the library under $lower"
  for config in "${configs[@]}"; do
    compare "$lower" "$config" stress_malloc "$PROBES/stress_malloc" "${pvalloc[@]}"
  done
  [[ $lower == "$JEMALLOC" ]] && compare "$lower" "${configs[1]}" stress_malloc "$PROBES/stress_malloc"

  run_plain "$lower" "$WORK/plain" "$PROBES/stress_new" || fail "stress_new failed under $lower"
  for config in "${configs[@]}"; do
    compare "$lower" "$config" stress_new "$PROBES/stress_new"
  done

  if (( python_ok )); then
    run_plain "$lower" "$WORK/plain" "$PYTHON" "$SOURCES/stress_numpy.py" ||
      fail "stress_numpy.py failed without the library under $lower"
    # mlockall would lock every library torch maps; the C++ runs cover it.
    for config in "${configs[@]:1}"; do
      compare "$lower" "$config" stress_numpy.py "$PYTHON" "$SOURCES/stress_numpy.py"
    done
  fi
  echo "ok: stress under $lower"
done
