"""The paper's experiments as data: one registry instead of one training script per figure.

An experiment is a set of named runs (each a :class:`RunSpec`) at a given scale: ``paper`` is the
exact protocol of SPEC sections 3-7; ``smoke`` keeps every ingredient but shrinks N, the g grid,
the number of seeds and (where learning still completes) the epochs, so that everything runs in
minutes on a laptop CPU. ``run_experiment`` trains the runs into ``OUT/<experiment>/<run>``,
reusing completed runs and resuming interrupted ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from randstruct import store
from randstruct.engine.device import check_device
from randstruct.errors import UserInputError
from randstruct.executors import InProcess
from randstruct.runs import Run, RunSpec, TrainJob, load
from randstruct.engine.train import TrainConfig

SCALES = ("smoke", "paper")


def g_range(g_max: float, step: float = 0.3) -> tuple[float, ...]:
    """np.arange(0, g_max + step, step) as the paper's scripts build it, rounded for labels."""
    return tuple(round(float(g), 10) for g in np.arange(0, g_max + step / 2, step))


# --------------------------------------------------------------------------------- E1 and E2
NONLINEAR = {  # task: (g_max, epochs, rec_step) of SPEC 3.1
    "flipflop": (2.1, 1000, 5),
    "mante": (2.7, 2000, 10),
    "romo": (3.0, 6000, 30),
}
SMOKE_NONLINEAR = {"flipflop": 300, "mante": 800, "romo": 1200}


def _nonlinear_spec(task: str, n: int, g: tuple[float, ...], seeds: int, epochs: int, rec_step: int,
                    device: str) -> RunSpec:
    config = TrainConfig(epochs=epochs, batch_size=32, optimizer="adam", lr_rule="over_n", lr0=0.05,
                         trainable=("wi", "wrec", "wo"), rec_step=rec_step)
    return RunSpec(task=task, n=n, g=g, seeds=seeds, train=config, device=device)


def nonlinear(scale: str, device: str = "cpu") -> dict[str, RunSpec]:
    """E1 (Figs 1, 2, S2): tanh networks, Adam lr 0.05/N, W_in, W, W_out trained, batch 32."""
    runs = {}
    for task, (g_max, epochs, rec_step) in NONLINEAR.items():
        if scale == "paper":
            runs[task] = _nonlinear_spec(task, 256, g_range(g_max), 5, epochs, rec_step, device)
        else:
            smoke_epochs = SMOKE_NONLINEAR[task]
            runs[task] = _nonlinear_spec(task, 128, (0.0, 0.9, 1.8), 3, smoke_epochs, max(1, smoke_epochs // 100),
                                         device)
    return runs


def size_scaling(scale: str, device: str = "cpu") -> dict[str, RunSpec]:
    """E2 (Fig S1): the E1 protocol at N = 64 ... 1024, g in {0, 0.9, 1.8}."""
    # smoke: 3 seeds, so that one Adam loss spike at the end (a network that reached 5 % but has no
    # functional rank) still leaves the 2 converged networks a g point needs at every N
    sizes, seeds = ((64, 128, 256, 512, 1024), 5) if scale == "paper" else ((32, 64, 128), 3)
    runs = {}
    for task, (_, epochs, rec_step) in NONLINEAR.items():
        if scale == "smoke":
            epochs = SMOKE_NONLINEAR[task]
            rec_step = max(1, epochs // 100)
        for n in sizes:
            runs[f"{task}_N{n}"] = _nonlinear_spec(task, n, (0.0, 0.9, 1.8), seeds, epochs, rec_step, device)
    return runs


# --------------------------------------------------------------------------------- E3, E4, E5
LINEAR_ETA0 = {0.5: 0.015, 1.0: 0.009, 2.0: 0.003}  # SPEC 5.1 (zhat = 1.0 is simulated, never plotted)


def _linear_config(epochs: int, lr0: float, lr_rule: str = "linear_gain", **kw) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=1, optimizer="sgd", lr_rule=lr_rule, lr0=lr0,
                       trainable=("wrec",), **kw)


def linear(scale: str, device: str = "cpu") -> dict[str, RunSpec]:
    """E3 (Figs 3, 4, S3): linear networks on the simple task, SGD on W, eta = eta0 (1 - g^2)^2."""
    n, seeds = (1024, 5) if scale == "paper" else (256, 2)
    g = tuple(round(0.1 * i, 10) for i in range(10))
    runs = {}
    for zhat in (0.5, 2.0):
        config = _linear_config(200, LINEAR_ETA0[zhat], rec_step=1, sv_top=5)
        runs[f"zhat_{zhat}"] = RunSpec(task="simple", n=n, g=g, seeds=seeds, train=config,
                                       task_params={"T": 101.0, "target": zhat}, nonlinearity="linear",
                                       device=device)
    return runs


def diverge(scale: str, device: str = "cpu") -> dict[str, RunSpec]:
    """E4 (Fig S4): the simple task with T = 201 and large targets; eigenvalues of W every epoch."""
    n, seeds = (256, 5) if scale == "paper" else (128, 2)
    runs = {}
    for zhat, eta0 in ((2.0, 0.002), (4.0, 0.001)):
        config = _linear_config(200, eta0, rec_step=1, sv_top=5, eig_top=5)
        runs[f"zhat_{zhat}"] = RunSpec(task="simple", n=n, g=(0.6, 0.8), seeds=seeds, train=config,
                                       task_params={"T": 201.0, "target": zhat}, nonlinearity="linear",
                                       device=device)
    return runs


COSINE_LR = {0.0: 0.2, 0.4: 0.15, 0.8: 0.05}  # SPEC 7.1: one learning rate per g


def cosine(scale: str, device: str = "cpu") -> dict[str, RunSpec]:
    """E5 (Fig S5): one shared in/out vector, x0 = v, dt = 0.1; the full spectrum every 5 epochs."""
    n = 256 if scale == "paper" else 128
    runs = {}
    for g, lr in COSINE_LR.items():
        config = _linear_config(1000, lr, lr_rule="constant", rec_step=5, sv_top=5, eig_top=n)
        runs[f"g_{g}"] = RunSpec(task="cosine", n=n, g=(g,), seeds=1, train=config, nonlinearity="linear",
                                 shared_vector=True, x0_from_input=True, device=device)
    return runs


@dataclass(frozen=True)
class Experiment:
    name: str
    figures: tuple[str, ...]
    description: str
    runs: Callable[..., dict[str, RunSpec]]


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment("nonlinear", ("fig1", "fig2", "figS2"), "E1: tanh RNNs on flip-flop, Mante and Romo", nonlinear),
        Experiment("size", ("figS1",), "E2: E1 protocol across network sizes", size_scaling),
        Experiment("linear", ("fig3", "fig4", "figS3"), "E3: linear RNNs on the simple task", linear),
        Experiment("diverge", ("figS4",), "E4: diverging gradients for large targets", diverge),
        Experiment("cosine", ("figS5",), "E5: cosine generation needs initial randomness", cosine),
    )
}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UserInputError(f"unknown experiment {name!r}; allowed: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def experiment_specs(name: str, scale: str, device: str = "cpu") -> dict[str, RunSpec]:
    if scale not in SCALES:
        raise UserInputError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES)}")
    check_device(device)
    return get_experiment(name).runs(scale, device)


def plan_experiment(name: str, scale: str, out: str | Path, device: str = "cpu",
                    log: Callable[[str], None] = print) -> tuple[dict[str, Run], list[tuple[str, RunSpec, Path, bool]]]:
    """The completed runs of an experiment under ``out/name`` (reused) and the others as
    (label, spec, path, resume) still to train."""
    return plan_runs(experiment_specs(name, scale, device), Path(out) / name, f"{name} at scale {scale!r}", log)


def plan_runs(specs: dict[str, RunSpec], root: Path, what: str, log: Callable[[str], None] = print
              ) -> tuple[dict[str, Run], list[tuple[str, RunSpec, Path, bool]]]:
    """{label: spec} under ``root/label``: the completed runs (reused) and the others as (label,
    spec, path, resume); a folder holding a different run is refused (``what`` names the wanted one)."""
    done, todo = {}, []
    for label, spec in specs.items():
        path = root / label
        if store.is_complete(path) and _same_spec(path, spec):
            log(f"{root.name}/{label}: reusing {path}")
            done[label] = load(path)
            continue
        resume = (path / store.CONFIG).is_file()
        if resume and not _same_spec(path, spec):
            raise store.RunError(f"{path} holds a different run than {what}; "
                                 f"choose another output folder or remove it")
        todo.append((label, spec, path, resume))
    return done, todo


def run_experiment(name: str, scale: str, out: str | Path, device: str = "cpu", progress: bool = True,
                   log: Callable[[str], None] = print, executor=None) -> dict[str, Run]:
    """Train (or reuse, or resume) every run of an experiment under ``out/name``; ``executor``
    (randstruct.executors; default: this process) trains them, a Dask one every shard at once."""
    runs, todo = plan_experiment(name, scale, out, device, log)
    runs.update(train_planned(todo, name, executor, progress, log))
    return {label: runs[label] for label in experiment_specs(name, scale, device)}


def train_planned(todo: list[tuple[str, RunSpec, Path, bool]], prefix: str, executor=None, progress: bool = True,
                  log: Callable[[str], None] = print) -> dict[str, Run]:
    """Train (or resume) the runs :func:`plan_runs` left to do, all in one call to ``executor``
    (default: this process); {label: Run}."""
    for label, spec, _, resume in todo:
        log(f"{prefix}/{label}: {'resuming' if resume else 'training'} {len(spec.g) * len(spec.seeds)} networks")
    if not todo:
        return {}
    jobs = [TrainJob(spec, path, resume=resume, label=f"{prefix}/{label}") for label, spec, path, resume in todo]
    trained = (executor or InProcess()).train(jobs, progress=progress)
    return {label: run for (label, *_), run in zip(todo, trained)}


def _same_spec(path: Path, spec: RunSpec) -> bool:
    """Same run up to the device: a run trained on a GPU is reused (or resumed) on a CPU and back."""
    try:
        return spec.same_run(RunSpec.from_dict(store.read_config(path)["spec"]))
    except (store.RunError, KeyError, TypeError, ValueError):
        return False

