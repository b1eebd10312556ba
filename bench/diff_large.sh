#!/usr/bin/env bash
# memdet diff of two large float32 .npy files whose only difference is the
# last element (so every tool must read everything), against, in the same
# run and in alternating rounds: a plain read of both files through the
# mapping memdet uses (build/bench/bench_mapped_read), and through cat, cmp, and
# numpy (np.fromfile and a max abs difference). Page cache warm; best of
# ROUNDS wall times; memdet's peak resident memory from wait4. Prints
# throughput and ratios.
#
# Usage: bash bench/diff_large.sh PATH-TO-MEMDET [GIB] [ROUNDS]
set -euo pipefail
memdet=$(realpath "$1")
gib=${2:-1}
rounds=${3:-3}
dir=$(mktemp -d "${TMPDIR:-/tmp}/memdet-bench-diff.XXXXXX")
trap 'rm -rf "$dir"' EXIT

/usr/bin/python3 - "$memdet" "$dir" "$gib" "$rounds" <<'PY'
import os
import subprocess
import sys
import time

memdet, folder, gib, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
count = int(gib * (1 << 30) // 4)
paths = [f"{folder}/a.npy", f"{folder}/b.npy"]
# Written by a child, so that this process stays small: a child's peak RSS
# counts what it inherited before exec.
writer = """
import sys
import numpy as np
count, paths = int(sys.argv[1]), sys.argv[2:]
for path in paths:
    array = np.lib.format.open_memmap(path, mode="w+", dtype="<f4", shape=(count,))
    for start in range(0, count, 1 << 24):
        stop = min(count, start + (1 << 24))
        array[start:stop] = np.arange(start, stop, dtype=np.float32) * np.float32(1e-3)
    if path == paths[-1]:
        array[-1] = np.nextafter(array[-1], np.float32(np.inf))
    array.flush()
"""
subprocess.run(["/usr/bin/python3", "-c", writer, str(count)] + paths, check=True)
total = sum(os.path.getsize(path) for path in paths)

numpy_code = (
    "import sys, numpy as np\n"
    "a = np.fromfile(sys.argv[1], dtype='<f4', offset=128)\n"
    "b = np.fromfile(sys.argv[2], dtype='<f4', offset=128)\n"
    "print(float(np.abs(a - b).max()))\n"
)
# The floor: both files read through the mapping and page release memdet
# uses, built beside memdet.
mapped_read = os.path.join(os.path.dirname(memdet), "bench", "bench_mapped_read")
commands = {
    "plain read (mmap)": [mapped_read] + paths,
    "plain read (cat)": ["cat"] + paths,
    "memdet diff": [memdet, "diff"] + paths,
    "cmp": ["cmp", "-s"] + paths,
    "numpy": ["/usr/bin/python3", "-c", numpy_code] + paths,
}
subprocess.run(["cat"] + paths, stdout=subprocess.DEVNULL, check=True)
best = {name: float("inf") for name in commands}
peak = {}
for _ in range(rounds):
    for name, command in commands.items():
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(child.pid, 0)
        best[name] = min(best[name], time.perf_counter() - start)
        peak[name] = max(peak.get(name, 0), usage.ru_maxrss)

print(f"two files of {gib:g} GiB each, best of {rounds}, page cache warm:")
read = best["plain read (mmap)"]
for name, seconds in best.items():
    line = f"  {name:18} {total / seconds / 1e9:6.2f} GB/s  peak RSS {peak[name] // 1024:5d} MiB"
    if name != "plain read (mmap)":
        line += f"  x{read / seconds:.2f} of the mapped read"
    if name in ("cmp", "numpy"):
        line += f"; memdet is x{seconds / best['memdet diff']:.2f} faster"
    print(line)
PY
