"""Training-throughput benchmark: the ensemble trainer against a serial reference, same run.

Machines are noisy, so every number is reported beside a reference measured in the same process:
(a) the serial reference, one network at a time with autograd and torch.optim (``reference.py``),
(b) the ensemble trainer, and (c) the raw batched-matmul rate at the recurrent product's shape,
which is the hardware ceiling the trainer's recurrent GFLOP/s is compared with.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import reference
from .model import Ensemble
from .seeding import member_rng
from .tasks import get_task
from .train import TrainConfig, Trainer


@dataclass
class Measurement:
    label: str
    n: int
    n_net: int
    net_epochs_per_s: list[float]  # one value per repeat
    gflops: float  # recurrent-product GFLOP/s at the median
    peak_rss_mb: float

    @property
    def median(self) -> float:
        return statistics.median(self.net_epochs_per_s)


def recurrent_flops(n: int, batch: int, steps: int) -> float:
    """FLOPs of the N x N products of one network-epoch: forward, backward and weight gradient."""
    return 3 * 2.0 * steps * batch * n * n


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(n: int, n_net: int, batch: int, device="cpu", seconds: float = 1.0) -> float:
    """GFLOP/s of torch.bmm at the forward step's shape (E, B, N) x (E, N, N)."""
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n_net, batch, n, generator=gen, device=device)
    w = torch.randn(n_net, n, n, generator=gen, device=device)
    out = torch.empty(n_net, batch, n, device=device)
    torch.bmm(a, w, out=out)
    reps, start = 0, time.perf_counter()
    _sync(device)
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            torch.bmm(a, w, out=out)
        _sync(device)
        reps += 10
    return reps * 2.0 * n_net * batch * n * n / (time.perf_counter() - start) / 1e9


def measure_ensemble(n: int, n_net: int, epochs: int, repeats: int, task_name="flipflop",
                     batch: int = 32, device="cpu") -> Measurement:
    task = get_task(task_name)
    config = TrainConfig(epochs=epochs * (repeats + 1), batch_size=batch, rec_step=10**9)
    gs = np.linspace(0, 1.8, n_net)
    trainer = Trainer(Ensemble.init(n, gs, 1, task.n_in, task.n_out, device=device), task, config)
    trainer.run(until=epochs)  # warm-up
    rates = []
    for r in range(repeats):
        _sync(device)
        start = time.perf_counter()
        trainer.run(until=epochs * (r + 2))
        _sync(device)
        rates.append(n_net * epochs / (time.perf_counter() - start))
    flops = recurrent_flops(n, batch, task.n_steps)
    return Measurement(f"ensemble E={n_net}", n, n_net, rates, statistics.median(rates) * flops / 1e9,
                       _peak_rss_mb())


def measure_serial(n: int, epochs: int, repeats: int, task_name="flipflop", batch: int = 32,
                   device="cpu") -> Measurement:
    """One network trained the plain way (autograd, Python loop over time, torch.optim.Adam)."""
    task = get_task(task_name)
    ens = Ensemble.init(n, [0.9], [0], task.n_in, task.n_out, device=device)
    params = {k: v[0].clone() for k, v in ens.params().items()}
    rng = member_rng(0, 0.9, "train")

    def batches(count):
        for _ in range(count):
            b = task.sample(batch, rng)
            yield tuple(torch.as_tensor(a, device=device) for a in (b.inputs, b.targets, b.mask))

    lr = 0.05 / n
    reference.train(params, ("wi", "wrec", "wo"), batches(2), task.dt, "tanh", lr)
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        reference.train(params, ("wi", "wrec", "wo"), batches(epochs), task.dt, "tanh", lr)
        _sync(device)
        rates.append(epochs / (time.perf_counter() - start))
    flops = recurrent_flops(n, batch, task.n_steps)
    return Measurement("serial reference", n, 1, rates, statistics.median(rates) * flops / 1e9, _peak_rss_mb())


def run_suite(sizes=((256, (1, 8, 40, 145)), (1024, (8,))), epochs: int = 5, repeats: int = 3,
              device="cpu", log=print) -> list[dict]:
    """Measure everything; returns one row per configuration (also logged as it goes)."""
    rows = []
    for n, ensembles in sizes:
        serial = measure_serial(n, max(2, epochs // 2), repeats, device=device)
        peak = matmul_rate(n, max(ensembles), 32, device)
        log(f"N={n}: serial reference {serial.median:.1f} net-epochs/s; bmm peak {peak:.1f} GFLOP/s")
        rows.append(row(serial, serial, peak))
        for e in ensembles:
            m = measure_ensemble(n, e, epochs, repeats, device=device)
            rows.append(row(m, serial, peak))
            log(f"N={n} E={e}: {m.median:.1f} net-epochs/s ({m.median / serial.median:.1f}x serial), "
                f"{m.gflops:.1f} GFLOP/s = {m.gflops / peak:.0%} of bmm, peak RSS {m.peak_rss_mb:.0f} MB")
    return rows


def row(m: Measurement, serial: Measurement, peak: float) -> dict:
    return {"config": m.label, "N": m.n, "E": m.n_net, "min": min(m.net_epochs_per_s),
            "median": m.median, "max": max(m.net_epochs_per_s), "vs_serial": m.median / serial.median,
            "gflops": m.gflops, "bmm_gflops": peak, "fraction_of_bmm": m.gflops / peak,
            "peak_rss_mb": m.peak_rss_mb}


def format_rows(rows: list[dict]) -> str:
    head = ("config", "N", "E", "net-epochs/s min/med/max", "x serial", "GFLOP/s", "% of bmm", "peak RSS MB")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['config']} | {r['N']} | {r['E']} | {r['min']:.1f} / {r['median']:.1f} / {r['max']:.1f} "
                     f"| {r['vs_serial']:.1f} | {r['gflops']:.1f} | {r['fraction_of_bmm']:.0%} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)
