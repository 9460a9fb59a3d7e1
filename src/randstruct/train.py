"""Training an ensemble: optimizers, learning-rate conventions, recording, divergence handling.

One epoch = one fresh batch per member, one full-BPTT forward/backward pass, one optimizer step
(SPEC 1.4). Members are independent: the loss is a sum of per-member losses, the optimizers are
element-wise and every learning rate is per member, so an ensemble follows the same trajectories
as its members trained one by one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from . import kernels
from .model import PARAMS, Ensemble, to_kernel_layout
from .seeding import member_rng
from .spectra import SubspaceTracker, leading_eigenvalues
from .tasks import Batch, Task

OPTIMIZERS = ("adam", "sgd")
SV_METHODS = ("auto", "full", "subspace")
LR_RULES = {
    "over_n": "lr = lr0 / N (the paper's Adam convention; loss curves roughly N-independent)",
    "linear_gain": "lr = lr0 (1 - g^2)^2 (the paper's SGD convention for linear networks)",
    "constant": "lr = lr0",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run besides the networks and the task."""

    epochs: int
    batch_size: int = 32
    optimizer: str = "adam"
    lr_rule: str = "over_n"
    lr0: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    trainable: tuple[str, ...] = ("wi", "wrec", "wo")
    rec_step: int = 1
    sv_top: int | None = None
    sv_method: str = "auto"
    eig_top: int | None = None
    record_weights: bool = False

    def __post_init__(self) -> None:
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
        if self.lr_rule not in LR_RULES:
            raise ValueError(f"unknown lr_rule {self.lr_rule!r}; allowed: {', '.join(LR_RULES)}")
        if not (math.isfinite(self.lr0) and self.lr0 > 0):
            raise ValueError(f"lr0 must be a finite number > 0, got {self.lr0}")
        if not all(0 <= b < 1 for b in self.betas) or len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        bad = [p for p in self.trainable if p not in PARAMS]
        if bad or not self.trainable:
            raise ValueError(f"trainable must be a non-empty subset of {', '.join(PARAMS)}, got {list(self.trainable)}")
        if int(self.rec_step) != self.rec_step or self.rec_step < 1:
            raise ValueError(f"rec_step must be an integer >= 1, got {self.rec_step}")
        if self.sv_top is not None and self.sv_top < 1:
            raise ValueError(f"sv_top must be >= 1 or None, got {self.sv_top}")
        if self.sv_method not in SV_METHODS:
            raise ValueError(f"unknown sv_method {self.sv_method!r}; allowed: {', '.join(SV_METHODS)}")
        if self.sv_method == "subspace" and self.sv_top is None:
            raise ValueError("sv_method 'subspace' needs sv_top (the number of singular values to track)")
        if self.eig_top is not None and self.eig_top < 1:
            raise ValueError(f"eig_top must be >= 1 or None, got {self.eig_top}")
        object.__setattr__(self, "trainable", tuple(self.trainable))
        object.__setattr__(self, "betas", tuple(self.betas))

    def uses_subspace(self, n: int) -> bool:
        """"auto" tracks the top singular values by subspace iteration when few of many are kept."""
        if self.sv_method == "auto":
            return self.sv_top is not None and 8 * self.sv_top <= n
        return self.sv_method == "subspace"

    @property
    def rec_epochs(self) -> np.ndarray:
        """Epochs at which dW is recorded, before that epoch's update (SPEC 1.4)."""
        return np.arange(0, self.epochs, self.rec_step)

    def learning_rates(self, n: int, g: np.ndarray) -> np.ndarray:
        g = np.asarray(g, dtype=float)
        if self.lr_rule == "over_n":
            return np.full(g.shape, self.lr0 / n)
        if self.lr_rule == "linear_gain":
            return self.lr0 * (1.0 - g**2) ** 2
        return np.full(g.shape, self.lr0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainRecord:
    """Per-member training history; NaN after a member diverged."""

    loss: np.ndarray  # (E, epochs): batch loss before each update
    grad_norm: np.ndarray  # (E, epochs)
    rec_epochs: np.ndarray  # (n_rec,)
    sv_dw: np.ndarray  # (E, n_rec, n_sv): singular values of W - W0 at rec_epochs
    diverged_epoch: np.ndarray  # (E,): first epoch with non-finite loss or weights, -1 if none
    lr: np.ndarray  # (E,)
    weights: np.ndarray | None = None  # (E, n_rec, N, N) when recording weights
    eig_w: np.ndarray | None = None  # (E, n_rec, eig_top): leading eigenvalues of W (by real part)
    wall_time: float = 0.0
    epochs_done: int = 0

    @classmethod
    def empty(cls, n_net: int, n: int, config: TrainConfig, lr: np.ndarray, dtype=np.float32) -> "TrainRecord":
        """All-NaN records; ``dtype`` follows the networks' precision."""
        n_rec = len(config.rec_epochs)
        n_sv = n if config.sv_top is None else min(n, config.sv_top)
        return cls(
            loss=np.full((n_net, config.epochs), np.nan, dtype),
            grad_norm=np.full((n_net, config.epochs), np.nan, dtype),
            rec_epochs=config.rec_epochs,
            sv_dw=np.full((n_net, n_rec, n_sv), np.nan, dtype),
            diverged_epoch=np.full(n_net, -1, np.int64),
            lr=np.asarray(lr, dtype=np.float64),
            weights=np.full((n_net, n_rec, n, n), np.nan, dtype) if config.record_weights else None,
            eig_w=None if config.eig_top is None else np.full(
                (n_net, n_rec, min(n, config.eig_top)), np.nan, np.result_type(dtype, np.complex64)),
        )


class BatchStream:
    """Fresh training batches for every member, each from the member's own random stream."""

    def __init__(self, task: Task, ensemble: Ensemble, batch_size: int, data: Batch | None = None):
        self.task, self.batch_size = task, batch_size
        self.rngs = [member_rng(int(s), float(g), "train") for g, s in zip(ensemble.g, ensemble.seed)]
        self.n_net, self.dtype, self.device = ensemble.size, ensemble.dtype, ensemble.device
        self._fixed = None
        if data is not None:
            self._fixed = self._to_tensors(data.inputs, data.targets, data.mask)
        elif not task.stochastic:
            self._fixed = self._to_tensors(*self._arrays(task.sample(batch_size, self.rngs[0])))

    @staticmethod
    def _arrays(batch: Batch):
        return batch.inputs, batch.targets, batch.mask

    def _to_tensors(self, *arrays):
        return tuple(to_kernel_layout(a, self.n_net, self.dtype, self.device) for a in arrays)

    def next(self):
        """(inputs, targets, mask) in kernel layout (E, K, B, C)."""
        if self._fixed is not None:
            return self._fixed
        parts = [self.task.draw(self.batch_size, rng) for rng in self.rngs]
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        batch = self.task.build(merged)
        shape = (self.n_net, self.batch_size)
        return self._to_tensors(*(a.reshape(shape + a.shape[1:]) for a in self._arrays(batch)))

    def state(self) -> list[dict]:
        return [rng.bit_generator.state for rng in self.rngs]

    def set_state(self, states: list[dict]) -> None:
        for rng, s in zip(self.rngs, states):
            rng.bit_generator.state = s


def _tracker(ensemble: Ensemble, k: int, oversample: int = 6) -> SubspaceTracker:
    """Subspace tracker whose random start comes from each member's own stream."""
    p = min(ensemble.n, k + oversample)
    start = np.stack([member_rng(int(s), float(g), "spectra").standard_normal((ensemble.n, p))
                      for g, s in zip(ensemble.g, ensemble.seed)])
    return SubspaceTracker(k, torch.as_tensor(start, dtype=ensemble.dtype, device=ensemble.device))


def _per_member(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape an (E,) tensor to broadcast against a parameter with leading E."""
    return x.view((-1,) + (1,) * (like.ndim - 1))


class Trainer:
    """Trains an ensemble in place; resumable through :meth:`state_dict`."""

    def __init__(self, ensemble: Ensemble, task: Task, config: TrainConfig, data: Batch | None = None):
        if task.n_in != ensemble.n_in or task.n_out != ensemble.n_out:
            raise ValueError(
                f"task {task.name!r} has {task.n_in} inputs / {task.n_out} outputs but the networks have "
                f"{ensemble.n_in} / {ensemble.n_out}")
        self.ensemble, self.task, self.config = ensemble, task, config
        self.dt = task.dt
        lr = config.learning_rates(ensemble.n, ensemble.g)
        np_dtype = np.float64 if ensemble.dtype == torch.float64 else np.float32
        self.record = TrainRecord.empty(ensemble.size, ensemble.n, config, lr, np_dtype)
        self.stream = BatchStream(task, ensemble, config.batch_size, data)
        self._lr = torch.as_tensor(lr, dtype=ensemble.dtype, device=ensemble.device)
        self.active = torch.ones(ensemble.size, dtype=torch.bool, device=ensemble.device)
        self.moments = {
            p: (torch.zeros_like(getattr(ensemble, p)), torch.zeros_like(getattr(ensemble, p)))
            for p in config.trainable
        } if config.optimizer == "adam" else {}
        self.sv_tracker = _tracker(ensemble, config.sv_top) if config.uses_subspace(ensemble.n) else None
        self.epoch = 0

    # ------------------------------------------------------------------ one epoch
    def step(self) -> torch.Tensor:
        """One update of every active member; returns the per-member loss before it."""
        ens, cfg, epoch = self.ensemble, self.config, self.epoch
        inputs, targets, mask = self.stream.next()
        trace = kernels.forward(inputs, ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, self.dt, ens.nonlinearity)
        loss, d_out = kernels.masked_mse(trace.outputs, targets, mask)
        self._mark_diverged(torch.isfinite(loss), epoch)
        d_out.mul_(_per_member(self.active.to(d_out.dtype), d_out)).nan_to_num_(0.0)
        if epoch % cfg.rec_step == 0:
            self._record_dw(epoch // cfg.rec_step)
        grads = kernels.backward(trace, d_out, ens.wrec, ens.wo, self.dt, ens.nonlinearity, cfg.trainable)
        del trace
        sq = sum(g.reshape(g.shape[0], -1).square().sum(dim=1) for g in grads.values())
        self._update(grads, epoch + 1)
        shown = self.active.cpu().numpy() | (self.record.diverged_epoch == epoch)
        self.record.loss[:, epoch] = np.where(shown, loss.cpu().numpy(), np.nan)
        self.record.grad_norm[:, epoch] = np.where(shown, sq.sqrt().cpu().numpy(), np.nan)
        self.epoch += 1
        self.record.epochs_done = self.epoch
        return loss

    def _mark_diverged(self, finite: torch.Tensor, epoch: int) -> None:
        newly = (self.active & ~finite).cpu().numpy()
        if newly.any():
            self.record.diverged_epoch[newly] = epoch
            self.active &= finite

    def _record_dw(self, j: int) -> None:
        ens, rec = self.ensemble, self.record
        alive = self.active.cpu().numpy()
        if not alive.any():
            return
        dw = ens.dw[self.active]
        if self.sv_tracker is not None:
            sv = self.sv_tracker(dw, self.active)
        else:
            sv = torch.linalg.svdvals(dw)[:, : rec.sv_dw.shape[-1]]
        rec.sv_dw[alive, j] = sv.cpu().numpy()
        if rec.eig_w is not None:
            rec.eig_w[alive, j] = leading_eigenvalues(ens.wrec[self.active], rec.eig_w.shape[-1]).cpu().numpy()
        if rec.weights is not None:
            rec.weights[alive, j] = ens.wrec[self.active].cpu().numpy()

    def _update(self, grads: dict[str, torch.Tensor], t: int) -> None:
        cfg, ens = self.config, self.ensemble
        new = {}
        for name, grad in grads.items():
            p = getattr(ens, name)
            grad = torch.where(_per_member(self.active, grad), grad, torch.zeros((), dtype=grad.dtype,
                                                                                   device=grad.device))
            lr = _per_member(self._lr, p)
            if cfg.optimizer == "sgd":
                new[name] = p - lr * grad
                continue
            (b1, b2), (m, v) = cfg.betas, self.moments[name]
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(cfg.eps)
            new[name] = p - (lr / (1 - b1**t)) * m / denom
        finite = torch.stack([torch.isfinite(v.reshape(v.shape[0], -1)).all(dim=1) for v in new.values()]).all(dim=0)
        self._mark_diverged(finite, t - 1)
        for name, value in new.items():
            keep = _per_member(self.active, value)
            setattr(ens, name, torch.where(keep, value, getattr(ens, name)))

    # ------------------------------------------------------------------ loop
    def run(
        self,
        until: int | None = None,
        progress: bool = False,
        on_chunk: Callable[["Trainer"], None] | None = None,
        chunk: int | None = None,
    ) -> TrainRecord:
        """Train up to epoch ``until`` (default: all); ``on_chunk`` runs every ``chunk`` epochs."""
        until = self.config.epochs if until is None else min(until, self.config.epochs)
        bar = _progress(self, until) if progress else None
        start = time.perf_counter()
        with torch.no_grad():
            while self.epoch < until:
                loss = self.step()
                if bar is not None:
                    bar.update(loss)
                if on_chunk is not None and chunk and self.epoch % chunk == 0 and self.epoch < until:
                    on_chunk(self)
        self.record.wall_time += time.perf_counter() - start
        if bar is not None:
            bar.close()
        return self.record

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "params": {k: v.cpu() for k, v in self.ensemble.params().items()},
            "moments": {k: (m.cpu(), v.cpu()) for k, (m, v) in self.moments.items()},
            "active": self.active.cpu(),
            "rngs": self.stream.state(),
            "sv_subspace": None if self.sv_tracker is None else self.sv_tracker.q.cpu(),
            "record": {k: v for k, v in vars(self.record).items()},
        }

    def load_state_dict(self, state: dict) -> None:
        dev = self.ensemble.device
        for k, v in state["params"].items():
            setattr(self.ensemble, k, v.to(dev))
        self.moments = {k: (m.to(dev), v.to(dev)) for k, (m, v) in state["moments"].items()}
        self.active = state["active"].to(dev)
        self.stream.set_state(state["rngs"])
        if self.sv_tracker is not None:
            self.sv_tracker.q = state["sv_subspace"].to(dev)
        self.record = TrainRecord(**state["record"])
        self.epoch = state["epoch"]


class _progress:
    """tqdm bar with the mean loss per g and the throughput in network-epochs/s."""

    def __init__(self, trainer: Trainer, until: int):
        from tqdm.auto import tqdm

        self.trainer = trainer
        self.groups = {float(g): trainer.ensemble.g == g for g in np.unique(trainer.ensemble.g)}
        self.bar = tqdm(total=until, initial=trainer.epoch, unit="epoch", dynamic_ncols=True,
                        desc=f"{trainer.task.name} x{trainer.ensemble.size}")
        self.last = time.perf_counter()
        self.every = max(1, until // 200)

    def update(self, loss: torch.Tensor) -> None:
        self.bar.update(1)
        if self.trainer.epoch % self.every:
            return
        values = loss.detach().cpu().numpy()
        now = time.perf_counter()
        rate = self.trainer.ensemble.size * self.every / max(now - self.last, 1e-9)
        self.last = now
        parts = [f"g={g:g}:{np.nanmean(values[m]):.3g}" for g, m in self.groups.items()]
        self.bar.set_postfix_str(f"loss {' '.join(parts)} | {rate:,.0f} net-ep/s", refresh=False)

    def close(self) -> None:
        self.bar.close()


def train(
    ensemble: Ensemble,
    task: Task,
    config: TrainConfig,
    data: Batch | None = None,
    progress: bool = False,
) -> TrainRecord:
    """Train ``ensemble`` in place on ``task`` (or on the fixed batch ``data``)."""
    return Trainer(ensemble, task, config, data).run(progress=progress)
