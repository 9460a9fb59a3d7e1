"""Training-throughput benchmark: the ensemble trainer against a serial reference, same run.

Machines are noisy, so every number is reported beside references measured in the same
invocation: (a) the serial reference, one network at a time with autograd and torch.optim
(``reference.py``), (b) the ensemble trainer, and (c) the raw batched-matmul rate at the recurrent
product's shape, the ceiling that the trainer's recurrent GFLOP/s is compared with. Each
configuration runs in a fresh subprocess so that its peak memory is its own.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from . import reference
from .model import Ensemble
from .seeding import member_rng
from .tasks import get_task
from .batches import BatchStream
from .train import TrainConfig, Trainer

TASK = "flipflop"
BATCH = 32
DEFAULT_SIZES = ((256, (1, 8, 40, 145)), (1024, (8,)))


def recurrent_flops(n: int, batch: int, steps: int) -> float:
    """FLOPs of the N x N products of one network-epoch: forward, backward and weight gradient."""
    return 3 * 2.0 * steps * batch * n * n


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _peak_memory_mb(device) -> float:
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_rate(n: int, n_net: int, batch: int = BATCH, device="cpu", seconds: float = 1.0, windows: int = 5) -> float:
    """GFLOP/s of torch.bmm at the forward step's shape (E, B, N) x (E, N, N): the best of
    ``windows`` timing windows, so that a noisy machine makes the trainer's share look smaller,
    never larger."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n_net, batch, n, generator=gen).to(device)
    w = torch.randn(n_net, n, n, generator=gen).to(device)
    out = torch.empty(n_net, batch, n, device=device)
    torch.bmm(a, w, out=out)
    best = 0.0
    for _ in range(windows):
        reps, start = 0, time.perf_counter()
        _sync(device)
        while time.perf_counter() - start < seconds / windows:
            for _ in range(10):
                torch.bmm(a, w, out=out)
            _sync(device)
            reps += 10
        best = max(best, reps * 2.0 * n_net * batch * n * n / (time.perf_counter() - start) / 1e9)
    return best


def _timed(fn, repeats: int, device) -> list[float]:
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _timed_beside_bmm(fn, repeats: int, device, n: int, n_net: int) -> tuple[list[float], list[float]]:
    """Times of ``fn`` and, just before each, the bmm ceiling at (n, n_net): this machine's speed
    drifts by tens of percent within a minute, so each repeat is compared with its own ceiling."""
    times, ceilings = [], []
    for _ in range(repeats):
        ceilings.append(matmul_rate(n, n_net, BATCH, device, seconds=0.3, windows=3))
        times += _timed(fn, 1, device)
    return times, ceilings


def measure_ensemble(n: int, n_net: int, epochs: int, repeats: int, device="cpu", cuda_graphs: bool | None = None,
                     tf32: bool = False, fixed_batch: bool = False) -> dict:
    """Network-epochs/s of the ensemble trainer, and the share of task generation in an epoch.

    With ``fixed_batch`` every epoch reuses one batch, so no task generation at all: on an
    accelerator the batches are made in worker processes while the device trains, and the honest
    cost of that generation is how much slower training is with it than without (``run_suite``).
    On a CPU generation is part of the epoch and timed directly.
    """
    task = get_task(TASK)
    config = TrainConfig(epochs=epochs * (repeats + 1), batch_size=BATCH, rec_step=10**9)
    ens = Ensemble.init(n, np.linspace(0, 1.8, n_net), 1, task.n_in, task.n_out, device=device)
    data = task.sample(BATCH, np.random.default_rng(0)) if fixed_batch else None
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = Trainer(ens, task, config, data=data, cuda_graphs=cuda_graphs)
    try:
        trainer.run(until=epochs)  # warm-up (and graph capture)
        done = [epochs]

        def chunk():
            done[0] += epochs
            trainer.run(until=done[0])

        times, ceilings = _timed_beside_bmm(chunk, repeats, device, n, n_net)
    finally:
        trainer.close()
        torch.backends.cuda.matmul.allow_tf32 = previous
    share = float("nan")
    if not fixed_batch and not trainer.prefetching:
        stream = BatchStream(task, ens, BATCH)
        share = statistics.median(_timed(stream.next, 5, device)) / (statistics.median(times) / epochs)
    return {"rates": [n_net * epochs / t for t in times], "ceilings": ceilings, "task_share": share,
            "peak_mb": _peak_memory_mb(device)}


def measure_serial(n: int, epochs: int, repeats: int, device="cpu") -> dict:
    """One network trained the plain way (autograd, Python loop over time, torch.optim.Adam)."""
    task = get_task(TASK)
    ens = Ensemble.init(n, [0.9], [0], task.n_in, task.n_out, device=device)
    params = {k: v[0].clone() for k, v in ens.params().items()}
    rng = member_rng(0, 0.9, "train")

    def batches(count):
        for _ in range(count):
            b = task.sample(BATCH, rng)
            yield tuple(torch.as_tensor(a, device=device) for a in (b.inputs, b.targets, b.mask))

    def chunk():
        reference.train(params, ("wi", "wrec", "wo"), batches(epochs), task.dt, "tanh", 0.05 / n)

    reference.train(params, ("wi", "wrec", "wo"), batches(2), task.dt, "tanh", 0.05 / n)
    times, ceilings = _timed_beside_bmm(chunk, repeats, device, n, 1)
    return {"rates": [epochs / t for t in times], "ceilings": ceilings, "task_share": float("nan"),
            "peak_mb": _peak_memory_mb(device)}


def _in_subprocess(kind: str, n: int, n_net: int, epochs: int, repeats: int, device: str) -> dict:
    """Run one measurement in a fresh interpreter (own peak memory, no warm caches)."""
    code = (f"import json; from randstruct import bench; "
            f"r = bench.measure_{kind}({n}, {'' if kind == 'serial' else f'{n_net}, '}{epochs}, {repeats}, {device!r}); "
            f"print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(kind: str, n: int, n_net: int, epochs: int, repeats: int, device: str, **options) -> dict:
    """On a CPU each configuration runs in a fresh interpreter (its own peak RSS, no warm caches);
    on a GPU in this process, with the device's peak-memory counter reset."""
    if torch.device(device).type == "cuda":
        if kind == "serial":
            torch.cuda.reset_peak_memory_stats(device)
            return measure_serial(n, epochs, repeats, device)
        return measure_ensemble(n, n_net, epochs, repeats, device, **options)
    return _in_subprocess(kind, n, n_net, epochs, repeats, device)


def gpu_variants(ensembles) -> list[tuple[str, int, dict]]:
    """Per E: one fixed batch (no task generation), CUDA graphs (the default), eager launches, and
    graphs with TF32 matmuls (opt-in)."""
    out = []
    for e in ensembles:
        out += [(f"ensemble E={e}, fixed batch", e, {"fixed_batch": True}), (f"ensemble E={e}", e, {}),
                (f"ensemble E={e}, no graphs", e, {"cuda_graphs": False}),
                (f"ensemble E={e}, TF32", e, {"tf32": True})]
    return out


def run_suite(sizes=DEFAULT_SIZES, epochs: int = 4, repeats: int = 3, device="cpu", log=print) -> list[dict]:
    """Every configuration of the suite; returns one row per configuration (also logged as it goes).

    On an accelerator the task share of a default row is 1 - its rate / the fixed-batch rate: the
    time that generating batches on the host adds to an epoch (variants other than the default
    leave it blank)."""
    rows = []
    task = get_task(TASK)
    gpu = torch.device(device).type == "cuda"
    for n, ensembles in sizes:
        flop = recurrent_flops(n, BATCH, task.n_steps) / 1e9  # per network-epoch, in GFLOP
        variants = gpu_variants(ensembles) if gpu else [(f"ensemble E={e}", e, {}) for e in ensembles]
        base, fixed = None, {}
        for label, e, opts in [("serial reference", 1, None)] + variants:
            if opts is None:
                m = _measure("serial", n, 1, max(2, epochs // 2), repeats, device)
            else:
                m = _measure("ensemble", n, e, epochs, repeats, device, **opts)
            med = statistics.median(m["rates"])
            base = med if base is None else base
            if opts and opts.get("fixed_batch"):
                fixed[e] = med
            share = m["task_share"]
            if gpu and opts is not None:
                share = 1 - med / fixed[e] if not opts else float("nan")
            # the ceiling is bmm with the row's own number of networks (a large E no longer fits the
            # weights in cache), timed before each repeat
            fraction = statistics.median(r * flop / c for r, c in zip(m["rates"], m["ceilings"]))
            row = {"config": label, "N": n, "E": e, "min": min(m["rates"]), "median": med, "max": max(m["rates"]),
                   "vs_serial": med / base, "gflops": med * flop, "bmm_gflops": statistics.median(m["ceilings"]),
                   "fraction_of_bmm": fraction,
                   "task_share": share, "peak_mb": m["peak_mb"]}
            rows.append(row)
            log(format_row(row))
    return rows


HEADER = ("config", "N", "E", "net-epochs/s min / median / max", "x serial", "recurrent GFLOP/s",
          "% of bmm peak", "task gen % of epoch", "peak memory MB")


def format_row(r: dict) -> str:
    share = "" if np.isnan(r["task_share"]) else f"{100 * r['task_share']:.1f}"
    return (f"| {r['config']} | {r['N']} | {r['E']} | {r['min']:.1f} / {r['median']:.1f} / {r['max']:.1f} "
            f"| {r['vs_serial']:.1f} | {r['gflops']:.1f} | {100 * r['fraction_of_bmm']:.0f} | {share} "
            f"| {r['peak_mb']:.0f} |")


def format_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return "\n".join(lines + [format_row(r) for r in rows])
