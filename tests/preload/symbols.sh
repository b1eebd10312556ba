# Build hygiene of the library: only the interposed functions exported, no
# C++ runtime needed, initial-exec TLS only (no __tls_get_addr, which may
# allocate).
source "$(dirname "$0")/lib.sh"

command -v nm >/dev/null && command -v readelf >/dev/null || skip "needs nm and readelf (binutils)"

exported=$(nm -D --defined-only "$LIB" | awk '{ print $3 }' | sort | tr '\n' ' ')
expected=$(printf '%s\n' malloc free calloc realloc posix_memalign aligned_alloc memalign valloc \
  pvalloc malloc_usable_size madvise pthread_create _exit _Exit execve execv execvp execvpe fexecve \
  omp_set_num_threads openblas_set_num_threads goto_set_num_threads mkl_set_num_threads \
  _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t \
  _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t \
  _ZdlPv _ZdaPv _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvm _ZdaPvm \
  _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvSt11align_val_tRKSt9nothrow_t \
  _ZdaPvSt11align_val_tRKSt9nothrow_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t \
  $(cat "$SOURCES"/exports/*.txt 2>/dev/null) |
  sort | tr '\n' ' ')
[[ $exported == "$expected" ]] ||
  fail "exported symbols differ: $(diff <(tr ' ' '\n' <<<"$expected") <(tr ' ' '\n' <<<"$exported") | grep '^[<>]' | tr '\n' ' ')"

needed=$(readelf -d "$LIB" | awk '/NEEDED/ { print $5 }' | tr -d '[]' | tr '\n' ' ')
[[ $needed != *stdc++* && $needed != *gcc_s* ]] || fail "needs the C++ runtime: $needed"
nm -D --undefined-only "$LIB" | grep -q __tls_get_addr && fail "uses dynamic TLS (__tls_get_addr)"
echo "ok: exports, needed ($needed), TLS model"
