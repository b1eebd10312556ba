# uninit=B: fresh and reused memory from every allocation function holds B;
# calloc stays zero; realloc keeps the old bytes and fills the new tail.
source "$(dirname "$0")/lib.sh"

expect_line() {
  grep -qxF "$1" "$WORK/out" || fail "$2: expected '$1', got '$(grep -F "${1%% *} " "$WORK/out")'"
}

for lower in $(available_lowers); do
  # Without and with block headers: realloc takes different paths.
  for extra in "" ";heap=32"; do
    what="$lower uninit=165$extra"
    run_shim "$lower" "uninit=165$extra" "$WORK/out" "$PROBES/probe_heap" uninit ||
      fail "probe_heap uninit failed under $what"
    need_report
    for function in malloc malloc_reused new[] posix_memalign memalign valloc aligned_alloc \
      realloc_tail; do
      expect_line "$function all=165" "$what"
    done
    expect_line "calloc all=0" "$what"
    expect_line "calloc_reused all=0" "$what"
    expect_line "realloc_kept all=51" "$what"
    expect_report uninit 165
    expect_report uninit_probe ok
  done
  echo "ok: uninit under $lower"
done
