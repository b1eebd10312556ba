#!/usr/bin/python3
"""Train a small embedding + MLP regressor on the CPU and save its weights.

Each sample is a bag of token ids. The model looks their rows up in an
embedding table by advanced indexing (table[ids]), averages them, and feeds
the result through a two-layer MLP that predicts a scalar target. The data
come from a fixed seed, so every run sees the same samples in the same order.

Why the result moves between runs: the backward pass of table[ids] scatters
the incoming gradient into the table with index_put_(accumulate=True). The
ids repeat, so several gradient rows land on the same table row. Once the
scattered gradient is large enough and more than one thread is allowed,
PyTorch's CPU kernel splits the work across threads and adds with atomics,
so the order of the additions, and with it the rounding of the float32 sums,
depends on thread timing. The last bits of the gradient differ from run to
run, SGD carries the differences forward, and by the end of training the
saved weights differ.

The cure: --deterministic calls torch.use_deterministic_algorithms(True),
which makes the CPU index_put_ kernel add serially, in index order. The
weights are then identical bit for bit across runs.

Outputs in --out DIR: one float32 .npy file per parameter and loss.txt with
one loss per step, printed with repr() so that every bit of it shows.
"""

import argparse
import os
import sys

import numpy as np
import torch

# The CPU kernel of index_put_(accumulate=True) in PyTorch 1.13
# (aten/src/ATen/native/cpu/IndexKernel.cpp) takes its parallel path with
# atomic adds only when the tensor it scatters has at least GRAIN_SIZE = 32768
# elements (looked-up rows times row width) and more than one thread is set;
# below that it adds serially and the result is reproducible even without
# --deterministic. The size of the table does not matter. BATCH * BAG * DIM
# is 65536, twice the threshold, so the parallel path is taken on every step.
VOCAB = 512
DIM = 64
BAG = 4
BATCH = 256
HIDDEN = 32
SAMPLES = 8192


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the .npy files and loss.txt")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and initial weights")
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="call torch.use_deterministic_algorithms(True)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="write memdet-trace.jsonl into --out with python/memdet_trace.py: every step's "
        "digests, and the operators of steps 0 to 2 with their outputs",
    )
    return parser.parse_args()


def make_data(seed):
    """Samples and targets drawn from a hidden embedding and a fixed nonlinearity."""
    gen = torch.Generator().manual_seed(seed)

    # Ids come from a skewed distribution over a small vocabulary, so every
    # batch repeats popular ids many times: the accumulation into those rows
    # is where the order of additions matters.
    weights = 1.0 / torch.arange(1, VOCAB + 1, dtype=torch.float32)
    ids = torch.multinomial(weights, SAMPLES * BAG, replacement=True, generator=gen)
    ids = ids.view(SAMPLES, BAG)

    hidden_table = torch.randn(VOCAB, DIM, generator=gen)
    direction = torch.randn(DIM, generator=gen)
    pooled = hidden_table[ids].mean(dim=1)
    target = torch.tanh(pooled @ direction / DIM**0.5) + 0.1 * torch.randn(SAMPLES, generator=gen)
    return ids, target


class EmbeddingMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # A bare Parameter indexed directly, rather than nn.Embedding, so the
        # backward pass is the generic index_put_ scatter.
        self.table = torch.nn.Parameter(0.1 * torch.randn(VOCAB, DIM))
        self.fc1 = torch.nn.Linear(DIM, HIDDEN)
        self.fc2 = torch.nn.Linear(HIDDEN, 1)

    def forward(self, ids):
        pooled = self.table[ids].mean(dim=1)
        return self.fc2(torch.relu(self.fc1(pooled))).squeeze(1)


def main():
    args = parse_args()

    # Two threads are enough for the atomic path to race (one would make the
    # kernel serial), and a fixed count keeps the run from depending on how
    # many cores the machine has.
    torch.set_num_threads(2)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)

    torch.manual_seed(args.seed)
    ids, target = make_data(args.seed)
    model = EmbeddingMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

    os.makedirs(args.out, exist_ok=True)
    trace = None
    if args.trace:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
        import memdet_trace

        trace = memdet_trace.Trace(model, path=args.out, ops=range(0, 3), save=range(0, 3))
    batches = SAMPLES // BATCH
    with open(os.path.join(args.out, "loss.txt"), "w") as log:
        for step in range(args.steps):
            start = (step % batches) * BATCH
            batch_ids = ids[start : start + BATCH]
            batch_target = target[start : start + BATCH]

            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(batch_ids), batch_target)
            loss.backward()
            optimizer.step()

            log.write(f"{step} {loss.item()!r}\n")
            if trace is not None:
                trace.step(loss)

    for name, param in model.named_parameters():
        array = param.detach().numpy()
        np.save(os.path.join(args.out, name.replace(".", "_") + ".npy"), array)


if __name__ == "__main__":
    main()
