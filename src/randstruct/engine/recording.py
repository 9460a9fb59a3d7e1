"""What training records: the loss and gradient-norm history per epoch, the singular values of
dW (and optionally leading eigenvalues and weights) at the recorded epochs, and divergence marks.

The per-epoch history and divergence marks live on the device and are written without waiting
for the host (so a CUDA graph can replay them); the host :class:`TrainRecord` is filled from them
on demand. Singular spectra come from one of three back-ends: a warm-started subspace tracker
(few of many values), batched ``svdvals`` on the device, or host threads beside an accelerator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from randstruct.engine.config import TrainConfig
from randstruct.engine.model import Ensemble
from randstruct.engine.seeding import member_rng
from randstruct.engine.spectra import HostSingularValues, SubspaceTracker, leading_eigenvalues
from randstruct.errors import UserInputError


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
    accuracy: np.ndarray | None = None  # (E, epochs): decision accuracy on the batch, tasks with labels
    penalty: np.ndarray | None = None  # (E, epochs): regularization penalty on the batch, regularized runs

    @classmethod
    def empty(cls, n_net: int, n: int, config: TrainConfig, lr: np.ndarray, dtype=np.float32,
              accuracy: bool = False, penalty: bool = False) -> "TrainRecord":
        """All-NaN records; ``dtype`` follows the networks' precision; ``accuracy`` for a task with
        labels, ``penalty`` for a regularized run."""
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
            accuracy=np.full((n_net, config.epochs), np.nan, dtype) if accuracy else None,
            penalty=np.full((n_net, config.epochs), np.nan, dtype) if penalty else None,
        )


def _grown(saved: TrainRecord, empty: TrainRecord) -> TrainRecord:
    """``saved`` in the (NaN) arrays of ``empty``: the same shapes, or a run extended to more epochs,
    whose history and records continue where the saved ones end."""
    for name in ("loss", "grad_norm", "accuracy", "penalty", "sv_dw", "weights", "eig_w"):
        old, new = getattr(saved, name), getattr(empty, name)
        if old is None or new is None or old.shape == new.shape:
            continue
        if old.shape[0] != new.shape[0] or old.shape[2:] != new.shape[2:] or old.shape[1] > new.shape[1]:
            raise ValueError(f"the checkpoint's {name} {old.shape} does not fit this run's {new.shape}")
        new[:, :old.shape[1]] = old
        setattr(saved, name, new)
    saved.rec_epochs = empty.rec_epochs
    return saved


def subspace_tracker(ensemble: Ensemble, k: int, oversample: int = 6) -> SubspaceTracker:
    """Subspace tracker whose random start comes from each member's own stream."""
    p = min(ensemble.n, k + oversample)
    start = np.stack([member_rng(int(s), float(g), "spectra").standard_normal((ensemble.n, p))
                      for g, s in zip(ensemble.g, ensemble.seed)])
    return SubspaceTracker(k, torch.as_tensor(start, dtype=ensemble.dtype, device=ensemble.device))


class Recorder:
    """The device-side history of one trainer and the recorded snapshots of dW."""

    def __init__(self, ensemble: Ensemble, config: TrainConfig, lr: np.ndarray, host_spectra: bool,
                 accuracy: bool = False, penalty: bool = False):
        dev = ensemble.device
        np_dtype = np.float64 if ensemble.dtype == torch.float64 else np.float32
        self.config = config
        self.host = TrainRecord.empty(ensemble.size, ensemble.n, config, lr, np_dtype, accuracy, penalty)
        self.epoch_t = torch.zeros((), dtype=torch.int64, device=dev)  # the epoch the stages write
        self.diverged = torch.full((ensemble.size,), -1, dtype=torch.int64, device=dev)
        # rows: loss, gradient norm, then decision accuracy (a task with labels), penalty (a regularized run)
        self.penalty_row = 3 if accuracy else 2
        rows = 2 + accuracy + penalty
        self.hist = torch.full((rows, ensemble.size, config.epochs), float("nan"), dtype=ensemble.dtype, device=dev)
        self.tracker = subspace_tracker(ensemble, config.sv_top) if config.uses_subspace(ensemble.n) else None
        self.spectra = HostSingularValues() if host_spectra and self.tracker is None else None

    def mark(self, active: torch.Tensor, finite: torch.Tensor) -> None:
        """Freeze members that just turned non-finite, remembering the epoch (no host sync)."""
        self.diverged.copy_(torch.where(active & ~finite, self.epoch_t, self.diverged))
        active.logical_and_(finite)

    def write(self, row: int, values: torch.Tensor) -> None:
        """Row 0 (loss), 1 (gradient norm), 2 (accuracy) or ``penalty_row`` of the current epoch, on the device."""
        self.hist[row].index_copy_(1, self.epoch_t.view(1), values[:, None])

    def snapshot_if_due(self, epoch: int, ensemble: Ensemble, active: torch.Tensor) -> None:
        if epoch % self.config.rec_step == 0:
            self._snapshot(epoch // self.config.rec_step, ensemble, active)

    def _snapshot(self, j: int, ens: Ensemble, active: torch.Tensor) -> None:
        rec = self.host
        alive = active.cpu().numpy()
        if not alive.any():
            return
        w = ens.w
        dw = (w - ens.w0)[active]
        if self.spectra is not None:
            members, n_sv = np.flatnonzero(alive), rec.sv_dw.shape[-1]

            def deliver(rows: slice, values: np.ndarray) -> None:
                rec.sv_dw[members[rows], j] = values[:, :n_sv]

            self.spectra.submit(dw, deliver)
        else:
            sv = self.tracker(dw, active) if self.tracker is not None else torch.linalg.svdvals(dw)
            rec.sv_dw[alive, j] = sv[:, : rec.sv_dw.shape[-1]].cpu().numpy()
        if rec.eig_w is not None:
            rec.eig_w[alive, j] = leading_eigenvalues(w[active], rec.eig_w.shape[-1]).cpu().numpy()
        if rec.weights is not None:
            rec.weights[alive, j] = w[active].cpu().numpy()

    def record(self, epochs_done: int) -> TrainRecord:
        """The host record, filled from the device (waits for pending spectra)."""
        if self.spectra is not None:
            self.spectra.wait()
        rec = self.host
        hist = self.hist.cpu().numpy()
        rec.loss[...], rec.grad_norm[...] = hist[0], hist[1]
        if rec.accuracy is not None:
            rec.accuracy[...] = hist[2]
        if rec.penalty is not None:
            rec.penalty[...] = hist[self.penalty_row]
        rec.diverged_epoch[...] = self.diverged.cpu().numpy()
        rec.epochs_done = epochs_done
        return rec

    def state(self, epochs_done: int) -> dict:
        return {"record": dict(vars(self.record(epochs_done))),
                "sv_subspace": None if self.tracker is None else self.tracker.q.cpu()}

    def load_state(self, state: dict) -> None:
        self.host = _grown(TrainRecord(**state["record"]), self.host)
        rows = [self.host.loss, self.host.grad_norm] + [r for r in (self.host.accuracy, self.host.penalty) if r is not None]
        if len(rows) != self.hist.shape[0]:
            raise UserInputError("the checkpoint's history does not match this run (accuracy or penalty recorded "
                                 "or not)")
        self.hist.copy_(torch.as_tensor(np.stack(rows)))
        self.diverged.copy_(torch.as_tensor(self.host.diverged_epoch))
        if self.tracker is not None:
            self.tracker.q = state["sv_subspace"].to(self.hist.device)

    def close(self) -> None:
        if self.spectra is not None:
            self.spectra.close()
