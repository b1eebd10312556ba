#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into BUILD-DIR (default
# build-fuzz) and runs each on its seed corpus for SECONDS (default 20).
# New inputs the fuzzer finds go to a scratch copy of the corpus, so the
# committed corpus stays as it is; a crash leaves its input in BUILD-DIR
# and fails the script.
#
# Usage: bash fuzz/run.sh [SECONDS] [BUILD-DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
build=${2:-build-fuzz}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DMEMDET_FUZZ=ON -DMEMDET_TESTS=OFF -DMEMDET_BENCH=OFF >/dev/null
cmake --build "$build" --target fuzz_npy fuzz_npz fuzz_safetensors fuzz_trace

scratch=$(mktemp -d "${TMPDIR:-/tmp}/memdet-fuzz.XXXXXX")
trap 'rm -rf "$scratch" /tmp/memdet-fuzz-*.npy /tmp/memdet-fuzz-*.npz /tmp/memdet-fuzz-*.safetensors' EXIT
for reader in npy npz safetensors trace; do
  mkdir -p "$scratch/$reader"
  cp fuzz/corpus/"$reader"/* "$scratch/$reader/"
  echo "fuzz_$reader: ${seconds} s"
  # -rss_limit_mb: a reader that allocates what a lying header promises
  # fails here, not just slows down.
  "$build/fuzz/fuzz_$reader" -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 \
    -artifact_prefix="$build/fuzz-$reader-" -print_final_stats=1 "$scratch/$reader" \
    2>"$scratch/$reader.log" || {
    tail -n 40 "$scratch/$reader.log" >&2
    echo "fuzz_$reader failed; the input is in $build/fuzz-$reader-*" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$scratch/$reader.log" | tr '\n' ' '
  echo
done
