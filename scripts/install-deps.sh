#!/usr/bin/env bash
# Installs what memdet needs to build and test, from Debian's packages only.
# Idempotent: a second run changes nothing. Run as root (or through sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build
  libcli11-dev nlohmann-json3-dev libxxhash-dev libre2-dev libpfm4-dev libhwloc-dev libzip-dev libsqlite3-dev libgtest-dev libgmock-dev
  python3 python3-numpy python3-torch
  libopenblas0-pthread libjemalloc2 libtcmalloc-minimal4
  clang libclang-rt-14-dev
  # a headless browser that renders the HTML report in the tests
  chromium
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

# Installing OpenBLAS switches Debian's libblas.so.3 away from the reference
# BLAS. Choose OpenBLAS (pthread build) explicitly, so every machine that ran
# this script loads the same BLAS, whatever was installed before.
arch_dir="/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
blas="$arch_dir/openblas-pthread/libblas.so.3"
lapack="$arch_dir/openblas-pthread/liblapack.so.3"
if [ -e "$blas" ]; then
  "${sudo_cmd[@]}" update-alternatives --quiet --set "libblas.so.3-$(basename "$arch_dir")" "$blas"
fi
if [ -e "$lapack" ]; then
  "${sudo_cmd[@]}" update-alternatives --quiet --set "liblapack.so.3-$(basename "$arch_dir")" "$lapack"
fi
