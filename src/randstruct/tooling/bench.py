"""Training-throughput benchmark: the ensemble trainer against a serial reference, same run.

Machines are noisy, so every number is reported beside references measured in the same
invocation: (a) the serial reference, one network at a time with autograd and torch.optim
(``reference.py``), (b) the ensemble trainer, and (c) the raw batched-matmul rate at the recurrent
product's shape, the ceiling that the trainer's recurrent GFLOP/s is compared with. This machine's
speed drifts by tens of percent within a minute, so (a) and (c) are timed again just before every
repeat of (b) and each repeat is compared with its own references. Each configuration runs in a
fresh subprocess so that its peak memory is its own; the serial reference has a process of its own.
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

from randstruct.engine import reference
from randstruct.engine.model import Ensemble
from randstruct.engine.options import ModelOptions
from randstruct.engine.seeding import member_rng
from randstruct.tasks import get_task
from randstruct.engine.batches import BatchStream
from randstruct.engine.train import TrainConfig, Trainer

TASK = "flipflop"
BATCH = 32
DEFAULT_SIZES = ((256, (1, 8, 40, 145)), (1024, (8,)))
# model variants the suite can time beside the default model: (ModelOptions, TrainConfig) arguments
MODELS = {
    "default": ({}, {}),
    "noise": (dict(noise_rec=0.2, noise_x0=1.0, noise_in=0.1), {}),
    "dale": (dict(dale=0.8), {}),
    "sparse": (dict(sparsity=0.5), {}),
    "l2": ({}, dict(l2_dw=1e-3, l2_rates=1e-4)),
    "all": (dict(noise_rec=0.2, noise_x0=1.0, noise_in=0.1, dale=0.8, sparsity=0.5), dict(l2_dw=1e-3, l2_rates=1e-4)),
}


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


def _warm_time(train, epochs: int, device) -> float:
    """Seconds of ``train(epochs)`` after one untimed ``train(1)``: after another process or the
    bmm ceiling had the cores, a first epoch ran 10-15 % slower than the next ones (its data
    evicted from the caches)."""
    train(1)
    return _timed(lambda: train(epochs), 1, device)[0]


def _timed_beside_references(train, epochs: int, repeats: int, device, n: int, n_net: int, clock=None) -> dict:
    """Times of ``train(epochs)`` (:func:`_warm_time`) and, just before each, the bmm ceiling at
    (n, n_net) and the serial rate (``clock``, a :class:`SerialClock`)."""
    times, ceilings, serial = [], [], []
    for _ in range(repeats):
        ceilings.append(matmul_rate(n, n_net, BATCH, device, seconds=0.3, windows=3))
        if clock is not None:
            serial.append(clock.rate())
        times.append(_warm_time(train, epochs, device))
    return {"times": times, "ceilings": ceilings, "serial": serial}


SERIAL_CLOCK_EPOCHS = 2  # per serial timing beside an ensemble repeat (~0.1 s at N = 256)


class SerialClock:
    """The serial reference in an interpreter of its own, trained and timed on request.

    Its own process keeps the ensemble's peak memory the ensemble's, and it waits on a pipe while
    the ensemble runs, so the two never compete for the cores.
    """

    def __init__(self, n: int, device="cpu", epochs: int = SERIAL_CLOCK_EPOCHS):
        code = f"from randstruct.tooling import bench; bench.serve_serial({n}, {epochs}, {str(device)!r})"
        self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        self._answer()  # built and warmed up

    def _answer(self) -> str:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the serial reference process exited with code {self._proc.wait()}")
        return line

    def rate(self) -> float:
        """Network-epochs/s of the serial reference, timed now."""
        self._proc.stdin.write("time\n")
        self._proc.stdin.flush()
        return float(self._answer())

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait()

    def __enter__(self) -> "SerialClock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_serial(n: int, epochs: int, device="cpu") -> None:
    """The :class:`SerialClock` process: answers each line of stdin with a serial rate, timed like
    every repeat of the suite (:func:`_warm_time`)."""
    train = _serial_trainer(n, device)
    print("ready", flush=True)
    for _ in sys.stdin:
        print(epochs / _warm_time(train, epochs, device), flush=True)


def measure_ensemble(n: int, n_net: int, epochs: int, repeats: int, device="cpu", cuda_graphs: bool | None = None,
                     tf32: bool = False, fixed_batch: bool = False, clock: SerialClock | None = None,
                     model: str = "default") -> dict:
    """Network-epochs/s of the ensemble trainer, and the share of task generation in an epoch.

    With ``fixed_batch`` every epoch reuses one batch, so no task generation at all: on an
    accelerator the batches are made in worker processes while the device trains, and the honest
    cost of that generation is how much slower training is with it than without (``run_suite``).
    On a CPU generation is part of the epoch and timed directly. The serial rates come from
    ``clock``, or from a clock of this call's own. ``model`` names the options of ``MODELS``.
    """
    task = get_task(TASK)
    model_options, train_options = MODELS[model]
    config = TrainConfig(epochs=(epochs + 1) * (repeats + 1), batch_size=BATCH, rec_step=10**9, **train_options)
    ens = Ensemble.init(n, np.linspace(0, 1.8, n_net), 1, task.n_in, task.n_out, device=device,
                        options=ModelOptions(**model_options))
    data = task.sample(BATCH, np.random.default_rng(0)) if fixed_batch else None
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = Trainer(ens, task, config, data=data, cuda_graphs=cuda_graphs)
    own_clock = clock is None
    try:
        clock = SerialClock(n, device) if own_clock else clock
        trainer.run(until=epochs)  # warm-up (and graph capture)

        def train(count):
            trainer.run(until=trainer.epoch + count)

        timed = _timed_beside_references(train, epochs, repeats, device, n, n_net, clock)
    finally:
        trainer.close()
        if own_clock and clock is not None:
            clock.close()
        torch.backends.cuda.matmul.allow_tf32 = previous
    times = timed["times"]
    share = float("nan")
    if not fixed_batch and not trainer.prefetching:
        stream = BatchStream(task, ens, BATCH, noise=trainer.stream.noise)
        share = statistics.median(_timed(stream.next, 5, device)) / (statistics.median(times) / epochs)
    return {"rates": [n_net * epochs / t for t in times], "ceilings": timed["ceilings"], "serial": timed["serial"],
            "task_share": share, "peak_mb": _peak_memory_mb(device)}


def _serial_trainer(n: int, device="cpu"):
    """A warmed-up serial reference: a callable that trains it for a number of epochs."""
    task = get_task(TASK)
    ens = Ensemble.init(n, [0.9], [0], task.n_in, task.n_out, device=device)
    params = {k: v[0].clone() for k, v in ens.params().items()}
    rng = member_rng(0, 0.9, "train")

    def batches(count):
        for _ in range(count):
            b = task.sample(BATCH, rng)
            yield tuple(torch.as_tensor(a, device=device) for a in (b.inputs, b.targets, b.mask))

    def train(epochs: int) -> None:
        reference.train(params, ("wi", "wrec", "wo"), batches(epochs), task.dt, "tanh", 0.05 / n)

    train(2)
    return train


def measure_serial(n: int, epochs: int, repeats: int, device="cpu") -> dict:
    """One network trained the plain way (autograd, Python loop over time, torch.optim.Adam)."""
    train = _serial_trainer(n, device)
    timed = _timed_beside_references(train, epochs, repeats, device, n, 1)
    rates = [epochs / t for t in timed["times"]]
    return {"rates": rates, "ceilings": timed["ceilings"], "serial": rates, "task_share": float("nan"),
            "peak_mb": _peak_memory_mb(device)}


def _in_subprocess(kind: str, n: int, n_net: int, epochs: int, repeats: int, device: str,
                   model: str = "default") -> dict:
    """Run one measurement in a fresh interpreter (own peak memory, no warm caches)."""
    extra = "" if model == "default" else f", model={model!r}"
    code = (f"import json; from randstruct.tooling import bench; "
            f"r = bench.measure_{kind}({n}, {'' if kind == 'serial' else f'{n_net}, '}{epochs}, {repeats}, {device!r}"
            f"{extra}); print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(kind: str, n: int, n_net: int, epochs: int, repeats: int, device: str, clock=None, **options) -> dict:
    """On a CPU each configuration runs in a fresh interpreter (its own peak RSS, no warm caches,
    its own serial clock); on a GPU in this process, with the device's peak-memory counter reset."""
    if torch.device(device).type == "cuda":
        if kind == "serial":
            torch.cuda.reset_peak_memory_stats(device)
            return measure_serial(n, epochs, repeats, device)
        return measure_ensemble(n, n_net, epochs, repeats, device, clock=clock, **options)
    return _in_subprocess(kind, n, n_net, epochs, repeats, device, options.get("model", "default"))


def gpu_variants(ensembles) -> list[tuple[str, int, dict]]:
    """Per E: one fixed batch (no task generation), CUDA graphs (the default), eager launches, and
    graphs with TF32 matmuls (opt-in)."""
    out = []
    for e in ensembles:
        out += [(f"ensemble E={e}, fixed batch", e, {"fixed_batch": True}), (f"ensemble E={e}", e, {}),
                (f"ensemble E={e}, no graphs", e, {"cuda_graphs": False}),
                (f"ensemble E={e}, TF32", e, {"tf32": True})]
    return out


def model_variants(ensembles, models) -> list[tuple[str, int, dict]]:
    """Per E, one row per model variant other than the default (timed right after the default's rows)."""
    return [(f"ensemble E={e}, {m}", e, {"model": m}) for e in ensembles for m in models if m != "default"]


def run_suite(sizes=DEFAULT_SIZES, epochs: int = 4, repeats: int = 3, device="cpu", log=print,
              models=("default",)) -> list[dict]:
    """Every configuration of the suite; returns one row per configuration (also logged as it goes).

    "x serial" is the median over repeats of the ensemble's rate over the serial rate timed just
    before that repeat. On an accelerator the task share of a default row is 1 - its rate / the
    fixed-batch rate: the time that generating batches on the host adds to an epoch (variants other
    than the default leave it blank). ``models`` adds rows for model variants (``MODELS``): their cost
    is 1 - their rate / the default row's rate of the same E."""
    rows = []
    task = get_task(TASK)
    gpu = torch.device(device).type == "cuda"
    for n, ensembles in sizes:
        flop = recurrent_flops(n, BATCH, task.n_steps) / 1e9  # per network-epoch, in GFLOP
        variants = gpu_variants(ensembles) if gpu else [(f"ensemble E={e}", e, {}) for e in ensembles]
        variants += model_variants(ensembles, models)
        fixed = {}
        # one clock per size on an accelerator (a process with its own device context takes seconds to start)
        clock = SerialClock(n, device) if gpu else None
        try:
            for label, e, opts in [("serial reference", 1, None)] + variants:
                if opts is None:
                    m = _measure("serial", n, 1, max(2, epochs // 2), repeats, device)
                else:
                    m = _measure("ensemble", n, e, epochs, repeats, device, clock, **opts)
                med = statistics.median(m["rates"])
                if opts and opts.get("fixed_batch"):
                    fixed[e] = med
                share = m["task_share"]
                if gpu and opts is not None:
                    share = 1 - med / fixed[e] if not opts else float("nan")
                rows.append(_row(label, n, e, m, flop, share))
                log(format_row(rows[-1]))
        finally:
            if clock is not None:
                clock.close()
    return rows


def _row(label: str, n: int, e: int, m: dict, flop: float, share: float) -> dict:
    # the ceiling is bmm with the row's own number of networks (a large E no longer fits the
    # weights in cache); each repeat is compared with the references timed just before it
    rates = m["rates"]
    return {"config": label, "N": n, "E": e, "min": min(rates), "median": statistics.median(rates), "max": max(rates),
            "vs_serial": statistics.median(r / s for r, s in zip(rates, m["serial"])),
            "gflops": statistics.median(rates) * flop,
            "bmm_gflops": statistics.median(m["ceilings"]),
            "fraction_of_bmm": statistics.median(r * flop / c for r, c in zip(rates, m["ceilings"])),
            "task_share": share, "peak_mb": m["peak_mb"]}


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
