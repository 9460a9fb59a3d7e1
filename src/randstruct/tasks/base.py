"""Seedable, vectorised generators for the paper's tasks (SPEC section 2).

Trial generation is split in two so that ensembles stay reproducible member by member:
``draw`` takes the few random variates per trial from an explicit ``numpy.random.Generator``
(there is no global random state), and ``build`` turns any number of such variates -- possibly the
concatenation of several draws, one per ensemble member -- into float32 inputs, targets and masks
without Python loops over trials or time steps. All times are in units of the neuron time constant
tau; durations become step counts with ``steps`` (floor, as the reference code's ``int(d / dt)``).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

from randstruct.errors import UserCodeError, UserInputError, owner, user_code

_REL_TOL = 1e-9
F32 = np.float32


def steps(duration: float | np.ndarray, dt: float) -> int | np.ndarray:
    """Step count floor(duration / dt): an int for a scalar, an int64 array for an array.

    The quotient is raised by a relative 1e-9 first, because exact multiples such as 0.3 / 0.1
    evaluate to 2.999... in floating point and would otherwise lose a step.
    """
    n = np.floor(np.asarray(duration, dtype=np.float64) / dt * (1.0 + _REL_TOL)).astype(np.int64)
    return int(n) if n.ndim == 0 else n


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator as is, or ``default_rng(seed)`` for an int seed; None is refused on purpose."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    if rng is None:
        raise UserInputError("rng is required: pass a numpy.random.Generator or an int seed")
    raise UserInputError(f"rng must be a numpy.random.Generator or an int seed, got {rng!r}")


def check_batch_size(batch: int) -> int:
    if isinstance(batch, bool) or not isinstance(batch, Integral) or batch < 1:
        raise UserInputError(f"batch must be an integer >= 1, got {batch!r}")
    return int(batch)


def unpack_variates(variates: Mapping[str, np.ndarray], spec: Mapping[str, tuple[int, ...]]) -> list[np.ndarray]:
    """The arrays named in ``spec`` (name -> shape after the batch axis), checked for a common batch axis."""
    missing = [name for name in spec if name not in variates]
    if missing:
        raise UserInputError(f"variates lack {', '.join(missing)}; expected keys: {', '.join(spec)}")
    arrays = [np.asarray(variates[name]) for name in spec]
    n = arrays[0].shape[0] if arrays[0].ndim else None
    for (name, tail), array in zip(spec.items(), arrays):
        if array.ndim != 1 + len(tail) or array.shape[0] != n or array.shape[1:] != tail:
            expected = ", ".join(["batch", *map(str, tail)])
            raise UserInputError(f"variates[{name!r}] must have shape ({expected}) with a common batch, got "
                                 f"{array.shape}")
    return arrays


def onehot(index: np.ndarray, n: int) -> np.ndarray:
    return index[..., None] == np.arange(n)


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of trials; arrays are (batch, time, channels) float32, mask entries 0 or 1."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    meta: dict[str, np.ndarray]
    dt: float
    decision: np.ndarray | None = None  # (batch, time, 1): the steps whose argmax is the trial's choice

    @property
    def n_steps(self) -> int:
        return self.inputs.shape[1]

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[0]


class Task(ABC):
    """Base of the task generators; subclasses are frozen dataclasses whose fields are the parameters.

    The contract (docs/tasks.md), checked by :func:`check_task`: class variables ``name``, ``n_in``,
    ``n_out``, ``stochastic`` (an adapter may set the channel counts per instance), a ``dt`` field in
    (0, 1], a step count K (``__post_init__`` stores it as ``_n_steps``, or the subclass overrides
    ``n_steps``), ``draw`` and ``build``. A task with ``has_labels`` (one-hot targets of a class per
    step) also fills ``Batch.decision``, which makes cross-entropy and decision accuracy available.
    """

    name: ClassVar[str]
    n_in: ClassVar[int]
    n_out: ClassVar[int]
    stochastic: ClassVar[bool]
    has_labels: ClassVar[bool] = False
    # batches made one trial at a time in Python: the trainer makes them ahead in worker
    # processes by default, on a CPU as well (engine.batches.Prefetcher)
    slow_batches: ClassVar[bool] = False
    dt: float

    @property
    def n_steps(self) -> int:
        """Number of Euler steps K per trial (each task's ``__post_init__`` derives it)."""
        try:
            return self.__dict__["_n_steps"]
        except KeyError:
            raise UserInputError(f"task {type(self).__name__} does not set its step count: assign _n_steps in "
                                 "__post_init__ or override the n_steps property (see docs/tasks.md)") from None

    @abstractmethod
    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The random per-trial variates of ``batch`` trials, each with leading axis ``batch``."""

    @abstractmethod
    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        """Deterministic construction of a batch from variates of any number of trials."""

    def params(self) -> dict[str, Any]:
        """Every constructor parameter as JSON types, so that ``get_task(name, **params)`` rebuilds the task."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def sample(self, batch: int, rng: np.random.Generator | int | None) -> Batch:
        """``build(draw(batch, rng))``; deterministic tasks ignore ``rng`` and accept None."""
        generator = None if rng is None and not self.stochastic else as_generator(rng)
        owner = task_owner(self)
        with user_code(owner):
            out = self.build(self.draw(batch, generator))
        return check_values(owner, out)

    def test_batch(self, batch: int = 1, rng: np.random.Generator | int | None = None) -> Batch:
        """The plotting ("test") variant of SPEC 2; the plain task unless a subclass fixes trials."""
        return self.sample(batch, rng)

    def _number(self, name: str, *, low: float | None = None, strict: bool = False) -> float:
        """Check a real parameter (optionally bounded below), store it as float and return it."""
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
            raise UserInputError(f"{name} must be a finite real number, got {value!r}")
        if low is not None and (value <= low if strict else value < low):
            raise UserInputError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
        object.__setattr__(self, name, float(value))
        return float(value)

    def _dt(self) -> float:
        dt = self.dt
        if isinstance(dt, bool) or not isinstance(dt, Real) or not 0 < dt <= 1:
            raise UserInputError(f"dt must be in (0, 1], got {dt!r}")
        object.__setattr__(self, "dt", float(dt))
        return float(dt)

    def _flag(self, name: str) -> None:
        value = getattr(self, name)
        if not isinstance(value, (bool, np.bool_)):
            raise UserInputError(f"{name} must be True or False, got {value!r}")
        object.__setattr__(self, name, bool(value))

    def _one_step_at_least(self, name: str) -> int:
        """Step count of duration ``name``, which must cover at least one step."""
        n = steps(getattr(self, name), self.dt)
        if n < 1:
            raise UserInputError(f"{name} must last at least one step (>= dt = {self.dt:g}), "
                                 f"got {getattr(self, name)!r}")
        return n

    def _set(self, **derived: Any) -> None:
        for key, value in derived.items():
            object.__setattr__(self, key, value)

    def _batch(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, meta: dict[str, np.ndarray],
               decision: np.ndarray | None = None) -> Batch:
        return Batch(
            inputs=np.ascontiguousarray(inputs, dtype=F32),
            targets=np.ascontiguousarray(targets, dtype=F32),
            mask=np.ascontiguousarray(mask, dtype=F32),
            meta=meta,
            dt=self.dt,
            decision=None if decision is None else np.ascontiguousarray(decision, dtype=F32),
        )


class DeterministicTask(Task):
    """A task whose every trial is the same: nothing to draw but the batch size."""

    stochastic: ClassVar[bool] = False

    def draw(self, batch: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """No randomness: the only variate is a placeholder that carries the batch size."""
        return {"trial": np.zeros(check_batch_size(batch), dtype=bool)}




def task_owner(task: Task | type) -> str | None:
    """How the error policy names a user's task, or None for randstruct's own (whose failures are bugs)."""
    return owner(task if isinstance(task, type) else type(task), "task")


def check_values(owner: str | None, batch: Batch) -> Batch:
    """``batch`` if a user's task (``owner``) made finite inputs, and finite targets wherever the mask
    scores them; NaN there would train every network on garbage without a word. Built-ins: unchecked."""
    if owner is None:
        return batch
    inputs, targets, mask = (np.asarray(a) for a in (batch.inputs, batch.targets, batch.mask))
    for what, bad in (("input", ~np.isfinite(inputs)),
                      ("target at a scored step", ~np.isfinite(targets) & (mask != 0))):
        if bad.any():
            trial, step, channel = np.argwhere(bad)[0]
            raise UserCodeError(f"{owner} made a NaN or infinite {what} (trial {trial}, step {step}, channel "
                                f"{channel}; {bad.sum()} in all); {what.split()[0]}s must be finite"
                                + (" wherever the mask is nonzero" if what.startswith("target") else ""))
    return batch


CLASS_CONTRACT = {"name": str, "n_in": Integral, "n_out": Integral, "stochastic": (bool, np.bool_)}


def check_task_class(cls: Any) -> type[Task]:
    """``cls`` if it is a Task subclass with the contract's class variables, else a one-line ValueError."""
    label = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UserInputError(f"{label} is not a randstruct.tasks.Task subclass (see docs/tasks.md)")
    missing = [k for k in CLASS_CONTRACT if not hasattr(cls, k)]
    if missing:
        raise UserInputError(f"task class {label} lacks the class variable(s) {', '.join(missing)} (see docs/tasks.md)")
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        raise UserInputError(f"task class {label} does not implement {', '.join(abstract)} (see docs/tasks.md)")
    if not dataclasses.is_dataclass(cls):
        raise UserInputError(f"task class {label} must be a dataclass (its fields are the parameters; see "
                             "docs/tasks.md)")
    return cls


def check_task(task: Task) -> Task:
    """``task`` if its instance satisfies the contract (channels, dt, step count), else a one-line ValueError."""
    label = type(task).__qualname__
    for key, kind in CLASS_CONTRACT.items():
        value = getattr(task, key, None)
        if not isinstance(value, kind) or (kind is Integral and (isinstance(value, bool) or value < 1)):
            want = "a string" if kind is str else "True or False" if key == "stochastic" else "an integer >= 1"
            raise UserInputError(f"task {label}: {key} must be {want}, got {value!r}")
    dt = getattr(task, "dt", None)
    if isinstance(dt, bool) or not isinstance(dt, Real) or not 0 < dt <= 1:
        raise UserInputError(f"task {label}: dt must be in (0, 1] (units of tau), got {dt!r}")
    k = task.n_steps
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise UserInputError(f"task {label}: n_steps must be an integer >= 1, got {k!r}")
    return task
