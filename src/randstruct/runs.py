"""A training run end to end: specification -> run directory -> :class:`Run` handle.

``execute`` validates everything before it touches the output folder, writes ``config.json``
first, checkpoints every ``checkpoint_every`` epochs (so an interruption loses at most that
chunk; ``resume=True`` continues from the checkpoint) and writes the results store last.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from randstruct import memory, store
from randstruct.engine.device import check_device
from randstruct.engine.model import Ensemble, check_grid
from randstruct.engine.options import ModelOptions
from randstruct.errors import UserInputError
from randstruct.tasks import Task, get_task
from randstruct.tasks.registry import BUILTIN, TASKS, class_reference, import_class
from randstruct.engine.train import TrainConfig, Trainer, check_training

DTYPES = {"float32": torch.float32, "float64": torch.float64}
KIND = "rnn"
WHERE = ("device",)  # spec fields that say where a run is computed, not what: not part of its identity


@dataclass(frozen=True)
class RunSpec:
    """What to train: a (g x seed) grid of networks on one task with one training protocol.

    ``task`` is a reference (registered name, ``module:Class`` or ``neurogym:EnvId``); for a name
    registered at run time ``task_class`` records its ``module:Class`` so that a later process can
    import it when the name is not registered there. ``noise_rec`` ... ``sparsity`` are the model
    options of :class:`~randstruct.engine.options.ModelOptions` (docs/model.md).
    """

    task: str
    n: int
    g: tuple[float, ...]
    seeds: tuple[int, ...]
    train: TrainConfig
    task_params: dict = field(default_factory=dict)
    nonlinearity: str = "tanh"
    dtype: str = "float32"
    device: str = "cpu"
    shared_vector: bool = False
    x0_from_input: bool = False
    task_class: str = ""
    noise_rec: float = 0.0
    noise_x0: float = 0.0
    noise_in: float = 0.0
    readout: str = "small"
    dale: float | None = None
    sparsity: float = 0.0
    # False: a stored spec read back (config.json); the task's code is needed to compute, not to read
    check_task: InitVar[bool] = True

    @property
    def options(self) -> ModelOptions:
        return ModelOptions(self.noise_rec, self.noise_x0, self.noise_in, self.readout, self.dale, self.sparsity)

    def __post_init__(self, check_task: bool) -> None:
        object.__setattr__(self, "train", train_config(self.train))
        gs, seeds = check_grid(self.n, self.g, self.seeds, self.nonlinearity)
        for name, value in self.options.to_dict().items():  # validated and normalised (ints to floats)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "g", tuple(float(x) for x in gs))
        object.__setattr__(self, "seeds", tuple(int(s) for s in seeds))
        if self.dtype not in DTYPES:
            raise UserInputError(f"unknown dtype {self.dtype!r}; allowed: {', '.join(DTYPES)}")
        self.train.learning_rates(self.n, np.repeat(self.g, len(self.seeds)))  # refuses lr = 0 before any work
        if not check_task:
            return
        task = self.make_task()
        object.__setattr__(self, "task_params", task.params())
        if not self.task_class and self.task in TASKS and self.task not in BUILTIN:
            object.__setattr__(self, "task_class", class_reference(type(task)))

    def make_task(self) -> Task:
        """The task, rebuilt from its reference; a one-line ValueError says what to install or import."""
        if self.task_class and self.task not in TASKS and ":" not in self.task:
            if self.task_class.startswith("__main__:"):
                raise UserInputError(f"task {self.task!r} is not registered in this process and was defined in a "
                                     "script (__main__): import or run the code that registers it first")
            try:
                import_class(self.task_class)  # registers the name if its module does so on import
            except ValueError as err:
                raise UserInputError(f"task {self.task!r} is not registered: {err}") from None
            if self.task not in TASKS:
                return get_task(self.task_class, **self.task_params)
        return get_task(self.task, **self.task_params)

    def make_ensemble(self) -> Ensemble:
        task = self.make_task()
        return Ensemble.init(self.n, self.g, self.seeds, task.n_in, task.n_out, self.nonlinearity,
                             DTYPES[self.dtype], self.device, self.shared_vector, self.x0_from_input, self.options)

    def same_run(self, other: "RunSpec") -> bool:
        """The same networks, task and training, wherever either is computed (``WHERE``)."""
        return dataclasses.replace(other, **{k: getattr(self, k) for k in WHERE}) == self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"] = self.train.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, check_task: bool = True) -> "RunSpec":
        return cls(**d, check_task=check_task)

    @classmethod
    def stored(cls, d: dict) -> "RunSpec":
        """A run's recorded spec: rebuilt with its task where the task's code is at hand, else as
        recorded (reading a run needs no task; computing on it does)."""
        try:
            return cls.from_dict(d)
        except ValueError:
            return cls.from_dict(d, check_task=False)


def train_config(train) -> TrainConfig:
    """A TrainConfig as is, or built from a dict of its fields (as ``to_dict`` writes them)."""
    if isinstance(train, TrainConfig):
        return train
    if not isinstance(train, dict):
        raise UserInputError(f"train must be a TrainConfig or a dict of its fields, got {type(train).__name__}")
    allowed = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(train) - set(allowed))
    if unknown:
        raise UserInputError(f"unknown train field {unknown[0]!r}; allowed: {', '.join(allowed)}")
    if "epochs" not in train:
        raise UserInputError("train needs 'epochs' (the number of updates)")
    d = dict(train)
    for key in ("betas", "trainable"):
        if isinstance(d.get(key), list):
            d[key] = tuple(d[key])
    return TrainConfig(**d)


@dataclass(frozen=True)
class TrainJob:
    """One run of a command: what to train where, and how its folder is to be treated."""

    spec: RunSpec
    out: Path
    overwrite: bool = False
    resume: bool = False
    label: str = ""


def prepare_run(out: Path, spec: RunSpec, overwrite: bool, resume: bool) -> dict | None:
    """The one start of a run folder (the caller holds its lock): checked, cleared with
    ``overwrite``, ``config.json`` written for a new run; returns the checkpoint to resume from."""
    checkpoint = store.prepare_run_dir(out, KIND, spec.to_dict(), overwrite, resume, where=WHERE)
    if overwrite:
        store.clear_run_dir(out)
    if checkpoint is None and not resume:
        store.write_json_atomic(out / store.CONFIG, store.new_config(KIND, spec.to_dict()))
    if resume and store.read_config(out)["spec"]["train"]["epochs"] != spec.train.epochs:
        # extended to more epochs: the new length is the run's; an analysis of the shorter run is stale
        store.write_json_atomic(out / store.CONFIG, store.new_config(KIND, spec.to_dict()))
        shutil.rmtree(out / store.ADDITIONS, ignore_errors=True)
    return checkpoint


def execute(spec: RunSpec, out: str | Path, overwrite: bool = False, resume: bool = False, progress: bool = True,
            checkpoint_every: int | None = None, executor=None) -> "Run":
    """Train ``spec`` into the run directory ``out`` and return the loaded :class:`Run`.

    ``executor`` (randstruct.executors, e.g. a Dask executor that cuts the grid into shards and
    merges them bitwise into the same store) decides where; without one, in this process.
    """
    if executor is not None:
        return executor.train([TrainJob(spec, Path(out), overwrite, resume, str(out))], checkpoint_every, progress)[0]
    out = Path(out)
    check_device(spec.device)
    check_memory(spec)
    ensemble = check_trainable(spec)
    if resume and (out / "shards").is_dir():
        raise store.RunError(f"{out} was trained in shards on a Dask cluster; resume it with --scheduler")
    with store.run_lock(out, "train"):
        checkpoint = prepare_run(out, spec, overwrite, resume)
        train_into(out, spec, ensemble, checkpoint, progress, checkpoint_every)
    return load(out)


def train_into(out: Path, spec: RunSpec, ensemble: Ensemble, checkpoint: dict | None, progress: bool = True,
               checkpoint_every: int | None = None, on_epoch: Callable[[Trainer], None] | None = None,
               attrs: dict | None = None) -> xr.Dataset:
    """Train ``ensemble`` (``spec``'s networks, or a shard of them) in the prepared run directory
    ``out`` from ``checkpoint`` (None: from the start), saving a checkpoint every ``checkpoint_every``
    epochs (default epochs/20); writes ``results.zarr`` (with ``attrs`` added), then the final state
    as the checkpoint, from which ``--resume`` with more epochs extends the run."""
    initial = ensemble.clone()
    trainer = Trainer(ensemble, spec.make_task(), spec.train)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
    every = checkpoint_every or max(1, spec.train.epochs // 20)

    def on_chunk(t: Trainer) -> None:
        if t.epoch % every == 0:
            store.save_checkpoint(out, t.state_dict())
        if on_epoch is not None:
            on_epoch(t)

    try:
        trainer.run(progress=progress, chunk=1 if on_epoch is not None else every, on_chunk=on_chunk)
    finally:
        trainer.close()
    ds = results_dataset(spec, initial, trainer)
    ds.attrs.update(attrs or {})
    store.write_results(out, ds)
    store.save_checkpoint(out, trainer.state_dict())
    return ds


def check_trainable(spec: RunSpec) -> Ensemble:
    """The initial networks, once everything the trainer would refuse has been checked (the task's
    trials included), so that a refused run leaves nothing on disk."""
    ensemble = spec.make_ensemble()
    check_training(ensemble, spec.make_task(), spec.train, probe=True)
    return ensemble


def memory_estimate(spec: RunSpec) -> int:
    """Bytes a run needs at its peak, roughly: per network the kernels' augmented trace, deltas,
    outputs and batch arrays (with their noise), about ten N x N matrices (W, W0, optimizer moments,
    gradients, proposal, float64 draws; two more under Dale's law or sparsity), and the records
    (history, singular values, optional weights)."""
    task = spec.make_task()
    item = 8 if spec.dtype == "float64" else 4
    n, k, b = spec.n, task.n_steps, spec.train.batch_size
    n_in, n_out = task.n_in, task.n_out
    width = -(-(n + n_in + 1) // 16) * 16
    n_rec = len(spec.train.rec_epochs)
    n_sv = n if spec.train.sv_top is None else min(n, spec.train.sv_top)
    noise = (k * b * n if spec.noise_rec else 0) + (b * n if spec.noise_x0 else 0)
    matrices = 12 if spec.options.constrained else 10
    per_net = item * ((k + 1) * b * width + k * b * n + k * b * (n_in + 5 * n_out) + noise + matrices * n * n
                      + 2 * spec.train.epochs + n_rec * n_sv + (n_rec * n * n if spec.train.record_weights else 0))
    return len(spec.g) * len(spec.seeds) * per_net


def check_memory(spec: RunSpec) -> None:
    """Refuse a run that cannot fit before anything is allocated or written."""
    memory.require(memory_estimate(spec), spec.device, "this run",
                   "use fewer networks, a smaller N, a smaller batch or shorter trials")


def results_dataset(spec: RunSpec, initial: Ensemble, trainer: Trainer) -> xr.Dataset:
    rec, final = trainer.record, trainer.ensemble

    def np_(t):
        return t.detach().cpu().numpy()

    arrays = {
        "loss": rec.loss, "grad_norm": rec.grad_norm, "sv_dw": rec.sv_dw,
        "diverged_epoch": rec.diverged_epoch, "lr": rec.lr, "weights": rec.weights, "eig_w_rec": rec.eig_w,
        "accuracy": rec.accuracy, "penalty": rec.penalty,
        "w0": np_(initial.w0), "wi0": np_(initial.wi), "wo0": np_(initial.wo),
        "w": np_(final.w), "wi": np_(final.wi), "wo": np_(final.wo),
        "b": np_(final.b), "x0": np_(final.x0),
    }
    attrs = {"task": spec.task, "N": spec.n, "nonlinearity": spec.nonlinearity,
             "dt": trainer.task.dt, "loss_kind": spec.train.loss, "train_wall_time_s": rec.wall_time,
             "spec": json.dumps(spec.to_dict())}
    return store.build_dataset(arrays, initial.g, initial.seed, rec.rec_epochs, attrs)


@dataclass
class Run:
    """A completed run directory: its spec and its results as an xarray Dataset."""

    path: Path
    config: dict
    data: xr.Dataset

    @functools.cached_property
    def spec(self) -> RunSpec:
        return RunSpec.stored(self.config["spec"])

    def task(self) -> Task:
        """The run's task, built once per handle (a NeuroGym task costs gym.make and a trial); this
        needs the task's code, reading the run does not."""
        if "_task" not in self.__dict__:
            try:
                self.__dict__["_task"] = self.spec.make_task()
            except ValueError as err:
                raise UserInputError(f"{self.path} can be read without its task's code, but this needs it: "
                                     f"{err}") from None
        return self.__dict__["_task"]

    def ensemble(self, which: str = "final", device: str = "cpu", dtype: torch.dtype | None = None) -> Ensemble:
        """The stored networks as an :class:`Ensemble` (``which``: "final" or "initial")."""
        if which not in ("final", "initial"):
            raise UserInputError(f"which must be 'final' or 'initial', got {which!r}")
        ds, spec = self.data, self.spec
        dtype = dtype or DTYPES[spec.dtype]
        final = which == "final"
        ens = Ensemble.from_arrays(
            wrec=ds.w.values if final else ds.w0.values, wi=ds.wi.values if final else ds.wi0.values,
            wo=ds.wo.values if final else ds.wo0.values, b=ds.b.values if final else None,
            # the store keeps the final x0 only; the initial one is 0 or the input vector (SPEC 7.1)
            x0=ds.x0.values if final else (ds.wi0.values[:, 0] if spec.x0_from_input else None),
            w0=ds.w0.values, g=ds.g.values, seed=ds.seed.values,
            nonlinearity=spec.nonlinearity, dtype=dtype, device=device, options=spec.options)
        return ens

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, task={self.data.attrs.get('task')}, nets={self.data.sizes['net']})"


def load(path: str | Path) -> Run:
    """Open a completed run directory."""
    path = Path(path)
    config = store.read_config(path)
    if config["kind"] != KIND:
        raise store.RunError(f"{path} is a {config['kind']} run, not an RNN ensemble; "
                             f"use the {config['kind']} tools (randstruct {config['kind']} ...) for it")
    try:
        spec = RunSpec.stored(config["spec"])
    except (KeyError, TypeError, ValueError) as err:
        raise store.RunError(f"{path / store.CONFIG} holds no valid run spec ({err})") from None
    data = store.open_results(path)
    n_net = len(spec.g) * len(spec.seeds)
    if data.sizes.get("unit") != spec.n or data.sizes.get("net") != n_net:
        raise store.RunError(f"{path / store.CONFIG} does not match {path / store.RESULTS}: N = {spec.n} and "
                             f"{n_net} networks in the config, N = {data.sizes.get('unit')} and "
                             f"{data.sizes.get('net')} networks in the store")
    return Run(path, config, data)
