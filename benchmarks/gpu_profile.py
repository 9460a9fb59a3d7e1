"""Where an epoch of the largest ensemble goes on an accelerator: device or host bound?

Prints, for flip-flop at N = 256, batch 32 and E networks (default 145):
1. the host side alone: milliseconds per batch made in this process, and delivered by the
   prefetching worker processes when nothing else runs;
2. the trainer with CUDA graphs, with fresh batches and with one fixed batch (no generation):
   milliseconds per epoch; the fixed-batch epoch is the device's own time;
3. an eager epoch under the profiler: kernels per epoch, device time per epoch summed over
   kernels, and the kernels that take the most of it.

If (1) is close to (2, fresh) and (2, fixed) is well below it, the host is the bound; if
(2, fixed) is close to (2, fresh), the device is. Usage:
``python benchmarks/gpu_profile.py [--device cuda] [--networks 145] [--epochs 60]``
(``--device cpu`` runs the same steps on a CPU, for a dry run of the script).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from randstruct.engine.model import Ensemble
from randstruct.tasks import get_task
from randstruct.engine.batches import BatchStream, Prefetcher
from randstruct.engine.train import TrainConfig, Trainer

TASK, N, BATCH = "flipflop", 256, 32


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _ms(fn, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - start) / count * 1e3


def host_pipeline(n_net: int, batches: int) -> tuple[float, float]:
    """ms per batch: made in this process, and delivered by the prefetching worker processes."""
    task = get_task(TASK)
    ens = Ensemble.init(N, np.linspace(0, 1.8, n_net), 1, task.n_in, task.n_out)
    stream = BatchStream(task, ens, BATCH)
    alone = _ms(stream.next, 10)
    prefetch = Prefetcher(stream)
    try:
        for _ in range(prefetch.depth + 1):
            prefetch.next()
        return alone, _ms(prefetch.next, batches)
    finally:
        prefetch.close()


def trainer_epoch(n_net: int, epochs: int, device: str, fixed: bool, **options) -> float:
    task = get_task(TASK)
    ens = Ensemble.init(N, np.linspace(0, 1.8, n_net), 1, task.n_in, task.n_out, device=device)
    data = task.sample(BATCH, np.random.default_rng(0)) if fixed else None
    trainer = Trainer(ens, task, TrainConfig(epochs=2 * epochs, batch_size=BATCH, rec_step=10**9), data=data,
                      **options)
    try:
        trainer.run(until=epochs // 2)
        _sync(device)
        start = time.perf_counter()
        trainer.run(until=epochs // 2 + epochs)
        _sync(device)
        return (time.perf_counter() - start) / epochs * 1e3
    finally:
        trainer.close()


def kernel_table(n_net: int, device: str, epochs: int = 3, rows: int = 15) -> None:
    task = get_task(TASK)
    ens = Ensemble.init(N, np.linspace(0, 1.8, n_net), 1, task.n_in, task.n_out, device=device)
    trainer = Trainer(ens, task, TrainConfig(epochs=epochs + 2, batch_size=BATCH, rec_step=10**9),
                      cuda_graphs=False)
    gpu = device.startswith("cuda")
    try:
        trainer.run(until=2)
        _sync(device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
        with profile(activities=activities) as prof:
            trainer.run(until=2 + epochs)
            _sync(device)
    finally:
        trainer.close()
    events = [e for e in prof.events() if (e.device_type.name == "CUDA") == gpu]
    if gpu:
        total = sum(e.device_time for e in events) / epochs / 1e3
        print(f"eager epoch: {len(events) / epochs:.0f} kernels, {total:.2f} ms of device time")
        key = "device_time_total"
    else:
        print(f"eager epoch: {len(events) / epochs:.0f} operator calls")
        key = "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--networks", type=int, default=145)
    ap.add_argument("--epochs", type=int, default=60)
    a = ap.parse_args()
    e = a.networks
    print(f"flip-flop N={N}, batch {BATCH}, E={e} on {a.device}", flush=True)
    alone, pipeline = host_pipeline(e, max(10, a.epochs // 2))
    print(f"host: one batch in this process {alone:.2f} ms, from the prefetching workers {pipeline:.2f} ms",
          flush=True)
    for fixed in (False, True):
        ms = trainer_epoch(e, a.epochs, a.device, fixed)
        print(f"trainer, {'fixed batch' if fixed else 'fresh batches'}: {ms:.2f} ms per epoch "
              f"({e / ms * 1e3:,.0f} network-epochs/s)", flush=True)
    kernel_table(e, a.device)


if __name__ == "__main__":
    main()
