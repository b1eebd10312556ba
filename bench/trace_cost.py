#!/usr/bin/python3
"""What python/memdet_trace.py costs a training step, measured in one run.

Trains the embedding example's model (examples/pytorch/train_embedding.py)
for the same steps four ways, in alternating rounds: plain; with
trace.step() digests; with every operator recorded; with operators recorded
and their outputs saved. Prints the median step time of each, its ratio to
plain, and the cost per recorded operator.

Usage: /usr/bin/python3 bench/trace_cost.py [--steps N] [--rounds R] [--threads T]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "pytorch"))

import memdet_trace  # noqa: E402
import torch  # noqa: E402
import train_embedding as example  # noqa: E402


def run(mode, steps, folder):
    torch.manual_seed(0)
    ids, target = example.make_data(0)
    model = example.EmbeddingMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    trace = None
    if mode != "plain":
        ops = range(0, steps) if mode in ("ops", "ops+save") else None
        save = range(0, steps) if mode == "ops+save" else None
        trace = memdet_trace.Trace(model, path=folder, ops=ops, save=save)
    batches = example.SAMPLES // example.BATCH
    start = time.perf_counter()
    for step in range(steps):
        first = (step % batches) * example.BATCH
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(
            model(ids[first : first + example.BATCH]), target[first : first + example.BATCH]
        )
        loss.backward()
        optimizer.step()
        if trace is not None:
            trace.step(loss)
    elapsed = (time.perf_counter() - start) / steps
    calls = trace.call if trace is not None else 0
    if trace is not None:
        trace.close()
    return elapsed, calls / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: the least noise)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    modes = ["plain", "digests", "ops", "ops+save"]
    times = {mode: [] for mode in modes}
    ops_per_step = 0
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for mode in modes:
                elapsed, per_step = run(mode, args.steps, folder)
                times[mode].append(elapsed)
                if mode == "ops":
                    ops_per_step = per_step
    plain = statistics.median(times["plain"])
    print("trace cost, %d steps x %d rounds, median per step:" % (args.steps, args.rounds))
    for mode in modes:
        median = statistics.median(times[mode])
        line = "  %-9s %8.3f ms  x%.2f" % (mode, median * 1e3, median / plain)
        if mode in ("ops", "ops+save") and ops_per_step:
            line += "  (%.0f operators a step, %.1f us each over plain)" % (
                ops_per_step,
                (median - plain) / ops_per_step * 1e6,
            )
        print(line)


if __name__ == "__main__":
    main()
