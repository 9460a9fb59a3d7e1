"""Share of a training epoch that NeuroGym's trial generation takes, and padding of whole trials.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/neurogym_share.py [--env PerceptualDecisionMaking-v0]
        [--E 40] [--N 128] [--epochs 20]

An epoch is timed three ways after two untimed ones: on a fixed batch (no generation at all: the
reference), with batches made on the training thread, and with the Prefetcher's worker processes
(1 and 2). The share of generation is 1 - fixed / timed. Also prints the trial-length spread: the
longest trial of each ensemble epoch against K, the task's padded length.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from randstruct.engine.batches import Prefetcher, make_batch
from randstruct.engine.model import Ensemble
from randstruct.engine.seeding import member_rng
from randstruct.engine.train import TrainConfig, Trainer
from randstruct.tasks import get_task


def epoch_time(trainer: Trainer, epochs: int) -> float:
    with torch.no_grad():
        for _ in range(2):
            trainer.step()
        start = time.perf_counter()
        for _ in range(epochs):
            trainer.step()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="PerceptualDecisionMaking-v0")
    p.add_argument("--E", type=int, default=40)
    p.add_argument("--N", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(1)
    task = get_task(f"neurogym:{a.env}")
    seeds = list(range(a.E))
    cfg = TrainConfig(epochs=10_000, batch_size=a.batch, rec_step=10_000)

    def trainer(data=None, workers=None):
        ens = Ensemble.init(a.N, [0.9], seeds, task.n_in, task.n_out)
        t = Trainer(ens, task, cfg, data=data, prefetch=False)  # the Prefetcher is set up below
        if workers:
            t._prefetch = Prefetcher(t.stream, workers=workers)
        return t

    rngs = [member_rng(s, 0.9, "train") for s in seeds]
    start = time.perf_counter()
    for _ in range(5):
        make_batch(task, rngs, a.batch)
    gen = (time.perf_counter() - start) / 5
    longest = [max(task.draw(a.batch, rng)["length"].max() for rng in rngs) for _ in range(5)]
    print(f"{a.env}: E = {a.E}, N = {a.N}, B = {a.batch}, K = {task.n_steps}; making one ensemble batch "
          f"{gen * 1e3:.1f} ms; longest trial of each of 5 ensemble epochs: {longest}")
    fixed = trainer(data=task.sample(a.batch, 0))
    ref = epoch_time(fixed, a.epochs)
    print(f"fixed batch (no generation): {ref * 1e3:.1f} ms/epoch")
    for label, workers in (("on the training thread", None), ("prefetch, 1 worker", 1), ("prefetch, 2 workers", 2)):
        t = trainer(workers=workers)
        try:
            dt = epoch_time(t, a.epochs)
        finally:
            t.close()
        print(f"{label}: {dt * 1e3:.1f} ms/epoch, generation share {max(0.0, 1 - ref / dt):.1%}")


if __name__ == "__main__":
    main()
