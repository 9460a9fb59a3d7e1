"""What a run is: the (g x seed) grid, task, model and training protocol (:class:`RunSpec`), what
it needs in memory, and one run of a command (:class:`TrainJob`)."""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field
from pathlib import Path

import numpy as np
import torch

from randstruct import memory
from randstruct.engine.model import Ensemble, check_grid
from randstruct.engine.options import ModelOptions
from randstruct.engine.train import TrainConfig
from randstruct.errors import UserInputError
from randstruct.tasks import Task, get_task
from randstruct.tasks.registry import BUILTIN, TASKS, class_reference, import_class

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
    readout_from: str = "rates"
    # False: a stored spec read back (config.json); the task's code is needed to compute, not to read
    check_task: InitVar[bool] = True

    @property
    def options(self) -> ModelOptions:
        return ModelOptions(self.noise_rec, self.noise_x0, self.noise_in, self.readout, self.dale, self.sparsity,
                            self.readout_from)

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


def memory_estimate(spec: RunSpec) -> int:
    """Bytes a run needs at its peak, roughly: per network the kernels' augmented trace, deltas,
    outputs and batch arrays (with their noise, and the states of a readout from the state), about ten N x N matrices (W, W0, optimizer moments,
    gradients, proposal, float64 draws; two more under Dale's law or sparsity), and the records
    (history, singular values, optional weights)."""
    task = spec.make_task()
    item = 8 if spec.dtype == "float64" else 4
    n, k, b = spec.n, task.n_steps, spec.train.batch_size
    n_in, n_out = task.n_in, task.n_out
    width = -(-(n + n_in + 1) // 16) * 16
    n_rec = len(spec.train.rec_epochs)
    n_sv = n if spec.train.sv_top is None else min(n, spec.train.sv_top)
    extra = (k * b * n if spec.noise_rec else 0) + (b * n if spec.noise_x0 else 0) \
        + (k * b * n if spec.readout_from == "state" else 0)
    matrices = 12 if spec.options.constrained else 10
    per_net = item * ((k + 1) * b * width + k * b * n + k * b * (n_in + 5 * n_out) + extra + matrices * n * n
                      + 2 * spec.train.epochs + n_rec * n_sv + (n_rec * n * n if spec.train.record_weights else 0))
    return len(spec.g) * len(spec.seeds) * per_net


def check_memory(spec: RunSpec) -> None:
    """Refuse a run that cannot fit before anything is allocated or written."""
    memory.require(memory_estimate(spec), spec.device, "this run",
                   "use fewer networks, a smaller N, a smaller batch or shorter trials")


