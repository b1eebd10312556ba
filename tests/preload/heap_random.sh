# heap_random=1: seeded offsets. The same seed gives the same sequence of
# offsets twice; another seed gives another.
source "$(dirname "$0")/lib.sh"

for lower in $(available_lowers); do
  offsets() {  # SEED OUTPUT
    run_shim "$lower" "heap=16;heap_random=1;seed=$1" "$2" "$PROBES/probe_heap" offsets ||
      fail "probe_heap offsets failed under $lower"
  }
  offsets 1 "$WORK/first"
  offsets 1 "$WORK/again"
  offsets 2 "$WORK/other"
  first=$(cat "$WORK/first")
  again=$(cat "$WORK/again")
  other=$(cat "$WORK/other")
  [[ $first == "$again" ]] || fail "seed 1 twice differs under $lower"
  [[ $first != "$other" ]] || fail "seeds 1 and 2 give the same offsets under $lower"
  distinct=$(tr ' ' '\n' <<<"$first" | sort -u | tr '\n' ' ')
  [[ $distinct == "0 16 32 48 " ]] || fail "offsets not spread over the classes: $distinct"
  expect_report heap_random 1
  echo "ok: heap_random under $lower"
done
