"""NeuroGym environments as ensemble tasks (``--task neurogym:EnvId-v0``).

NeuroGym builds one trial at a time: ``env.new_trial()`` fills ``env.ob`` (steps, inputs) and
``env.gt`` (steps,) ground-truth actions, with period boundaries in ``env.start_ind`` /
``env.end_ind`` and every duration in milliseconds. The adapter keeps whole trials (never the
windows of NeuroGym's ``Dataset``, which cut across trial boundaries), batch-first, each padded
with mask 0 to K steps, the longest trial the env's ``timing`` allows. K is fixed per task, not per
batch, because every member of an ensemble epoch, the prefetch slots, the kernels' workspaces and
CUDA graphs all share one shape; the longest trial of a 40-member epoch came within a few steps of
that bound anyway (docs/tasks.md).

Time: NeuroGym's ``dt`` is in ms, ours in units of tau: ``dt = env_dt / tau_ms``.
Seeding: every ``draw`` reseeds the environment (its rng, its action space and the timing
distributions, through ``env.seed``) from the member's own generator, so the member's generator
state is the env's whole random state: it is what checkpoints already hold, and resume is exact.
Environments that carry state from one trial to the next (none of the trial-based native ones
used here) would not be reproduced by this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from randstruct.errors import UserInputError, missing
from randstruct.tasks.base import F32, Batch, Task, check_batch_size, onehot, unpack_variates

SCORES = ("decision", "all")
_FIELDS = ("dt", "tau_ms", "score", "max_ms", "env_kwargs")


def _neurogym():
    try:
        import neurogym
    except ImportError:
        raise missing("NeuroGym tasks need", "neurogym", "neurogym") from None
    return neurogym


def make_env(env_id: str, kwargs: Mapping[str, Any]):
    """The unwrapped TrialEnv of ``env_id``; unknown ids and bad kwargs are one-line ValueErrors."""
    ngym = _neurogym()
    from neurogym.envs.registration import all_envs

    known = all_envs(contrib=True, collections=True)
    if env_id not in known:
        raise UserInputError(f"unknown NeuroGym environment {env_id!r}; allowed: {', '.join(known)}")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gymnasium's note about render_modes metadata
            env = ngym.make(env_id, **kwargs).unwrapped
    except TypeError as err:
        raise UserInputError(f"NeuroGym environment {env_id!r} refused its parameters {dict(kwargs)}: {err}") from None
    if not hasattr(env, "new_trial") or not hasattr(env, "timing"):
        raise UserInputError(f"NeuroGym environment {env_id!r} is not trial-based (no new_trial/timing)")
    return env


def _longest(value: Any, period: str, env_id: str) -> float:
    """Upper bound (ms) of one period's duration as NeuroGym's ``sample_time`` draws it."""
    if isinstance(value, Real):
        return float(value)
    if callable(value):
        vmax = getattr(value, "vmax", None)  # NeuroGym's TruncExp
        if isinstance(vmax, Real) and np.isfinite(vmax):
            return float(vmax)
    elif isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, Real) for v in value):
            return float(max(value))
        if len(value) == 2 and isinstance(value[0], str):
            dist, args = value
            if dist in ("uniform", "choice", "truncated_exponential") and np.ndim(args) == 1 and len(args):
                bound = float(max(args)) if dist != "truncated_exponential" else (
                    float(args[2]) if len(args) > 2 else np.inf)
                if np.isfinite(bound):
                    return bound
            if dist == "constant" and isinstance(args, Real):
                return float(args)
    raise UserInputError(f"the duration of period {period!r} of {env_id!r} has no finite upper bound ({value!r}); "
                         "pass max_ms, the longest trial in ms")


def max_steps(env, env_id: str) -> int:
    """Steps of the longest trial: the periods' longest durations, each floored to whole dt as NeuroGym does."""
    dt = float(env.dt)
    total = 0
    for period, value in env.timing.items():
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "until":
            total = max(total, int(float(value[1]) // dt))  # the period ends at a fixed time
        else:
            total += int(_longest(value, period, env_id) // dt)
    return total


@dataclass(frozen=True, eq=False)
class NeuroGymTask(Task):
    """One NeuroGym environment as a batch-first, padded, seedable task (``has_labels``).

    env_id: a NeuroGym id such as ``PerceptualDecisionMaking-v0``.
    dt: Euler step in units of tau, in (0, 1]; the env is built with dt * tau_ms ms (default 0.5:
        50 ms). None takes the env's own dt (100 ms for most: dt = 1, where the leak vanishes and a
        network with W0 = 0 keeps nothing across steps without input: ContextDecisionMaking at
        g = 0 then has an exactly zero gradient).
    tau_ms: the neurons' time constant in ms (100 by default: the env's dt = 20 ms is dt = 0.2).
    score: "decision" masks the steps of the env's decision period, "all" every step of the trial.
    max_ms: trial length (ms) to pad to; None derives it from the env's timing (a timing with no
        finite bound, such as a plain function, needs it).
    env_kwargs: the env's constructor arguments (``timing``, ``sigma``, ...).
    Targets are one-hot over the env's actions (action 0 is fixation in the native envs) on every
    step of a trial, so the same batch serves masked MSE and cross-entropy; ``Batch.decision`` marks
    the decision period, whose summed outputs' argmax is the trial's choice for the accuracy.
    Variates: ob (batch, K, n_in) float32, gt (batch, K), length, dec_start, dec_end (batch,).
    """

    stochastic: ClassVar[bool] = True
    has_labels: ClassVar[bool] = True
    slow_batches: ClassVar[bool] = True

    env_id: str = "PerceptualDecisionMaking-v0"
    dt: float | None = 0.5
    tau_ms: float = 100.0
    score: str = "decision"
    max_ms: float | None = None
    env_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id:
            raise UserInputError(f"env_id must be a NeuroGym environment id, got {self.env_id!r}")
        self._number("tau_ms", low=0, strict=True)
        if self.score not in SCORES:
            raise UserInputError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if not isinstance(self.env_kwargs, Mapping):
            raise UserInputError(f"env_kwargs must be a mapping of the env's parameters, got {self.env_kwargs!r}")
        kwargs = dict(self.env_kwargs)
        if "dt" in kwargs:
            raise UserInputError("the env's dt is set through dt (units of tau) and tau_ms, not env_kwargs")
        if self.dt is not None:
            dt = self.dt
            if isinstance(dt, bool) or not isinstance(dt, Real) or not 0 < dt <= 1:
                raise UserInputError(f"dt must be in (0, 1] (units of tau), got {dt!r}")
            kwargs["dt"] = float(dt) * self.tau_ms
        env = make_env(self.env_id, kwargs)
        dt = float(env.dt) / self.tau_ms
        if not 0 < dt <= 1:
            raise UserInputError(f"dt = env dt {env.dt:g} ms / tau_ms {self.tau_ms:g} = {dt:g} is not in (0, 1]; "
                                 "raise tau_ms or pass a smaller dt")
        space = env.action_space
        if not hasattr(space, "n") or getattr(space, "shape", None) != ():
            raise UserInputError(f"NeuroGym environment {self.env_id!r} has action space {space}; only discrete "
                                 "actions (a class per step) can be trained")
        shape = env.observation_space.shape
        if shape is None or len(shape) != 1:
            raise UserInputError(f"NeuroGym environment {self.env_id!r} has observations of shape {shape}; only "
                                 "vectors can be inputs")
        if self.max_ms is None:
            k = max_steps(env, self.env_id)
        else:
            self._number("max_ms", low=0, strict=True)
            k = int(self.max_ms // env.dt)
        if k < 1:
            raise UserInputError(f"max_ms must cover at least one env step ({env.dt:g} ms), got {self.max_ms!r}")
        object.__setattr__(self, "dt", dt)
        object.__setattr__(self, "env_kwargs", {k_: v for k_, v in dict(self.env_kwargs).items()})
        self._set(name=f"neurogym:{self.env_id}", n_in=int(shape[0]), n_out=int(space.n), _n_steps=k,
                  _env=env, _env_dt=float(env.dt))
        if self.score == "decision":
            env.seed(0)
            env.new_trial()
            if "decision" not in env.start_ind:
                raise UserInputError(f"NeuroGym environment {self.env_id!r} has no 'decision' period "
                                     f"(periods: {', '.join(env.start_ind)}); use score='all'")

    # the env stays out of pickles (prefetch workers, deep copies): it is rebuilt from the fields
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_env"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        kwargs = dict(self.env_kwargs)
        kwargs["dt"] = self._env_dt
        object.__setattr__(self, "_env", make_env(self.env_id, kwargs))

    def params(self) -> dict[str, Any]:
        """The adapter's fields (dt resolved to units of tau); ``get_task(name, **params)`` rebuilds it."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, k = check_batch_size(batch), self._n_steps
        env = self._env
        env.seed(int(rng.integers(2**31)))
        ob = np.zeros((n, k, self.n_in), dtype=F32)
        gt = np.zeros((n, k), dtype=np.int64)
        length, dec_start, dec_end = (np.zeros(n, dtype=np.int64) for _ in range(3))
        for i in range(n):
            env.new_trial()
            steps_i = env.ob.shape[0]
            if steps_i > k:
                raise UserInputError(f"a trial of {self.env_id!r} lasted {steps_i} steps, more than the "
                                     f"{k} of max_ms; pass a larger max_ms")
            ob[i, :steps_i] = env.ob
            gt[i, :steps_i] = np.asarray(env.gt).reshape(steps_i)
            length[i] = steps_i
            dec_start[i] = env.start_ind.get("decision", 0)
            dec_end[i] = env.end_ind.get("decision", steps_i)
        return {"ob": ob, "gt": gt, "length": length, "dec_start": dec_start, "dec_end": dec_end}

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        k = self._n_steps
        spec = {"ob": (k, self.n_in), "gt": (k,), "length": (), "dec_start": (), "dec_end": ()}
        ob, gt, length, dec_start, dec_end = unpack_variates(variates, spec)
        steps_ = np.arange(k)
        inside = steps_ < length[:, None]
        decision = (steps_ >= dec_start[:, None]) & (steps_ < dec_end[:, None]) & inside
        scored = decision if self.score == "decision" else inside
        targets = onehot(gt, self.n_out) & inside[..., None]
        last = np.clip(dec_end - 1, 0, k - 1)
        meta = {"length": length, "label": gt[np.arange(len(gt)), last], "decision_start": dec_start,
                "decision_end": dec_end}
        return self._batch(ob, targets, np.repeat(scored[..., None], self.n_out, axis=2), meta,
                           decision=decision[..., None])


def make_neurogym_task(reference_id: str, /, **params: Any) -> NeuroGymTask:
    """The adapter over ``reference_id``: keys among its fields set them, every other key goes to the env."""
    env_id = params.pop("env_id", reference_id)
    if env_id != reference_id:
        raise UserInputError(f"env_id {env_id!r} contradicts the task reference neurogym:{reference_id}")
    own = {k: params.pop(k) for k in _FIELDS if k in params}
    env_kwargs = dict(own.pop("env_kwargs", None) or {})
    env_kwargs.update(params)
    return NeuroGymTask(env_id=env_id, env_kwargs=env_kwargs, **own)

