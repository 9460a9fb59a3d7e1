"""Training an ensemble: optimizers, learning-rate conventions, recording, divergence handling.

One epoch = one fresh batch per member, one full-BPTT forward/backward pass, one optimizer step
(SPEC 1.4). Members are independent: the loss is a sum of per-member losses, the optimizers are
element-wise and every learning rate is per member, so an ensemble follows the same trajectories
as its members trained one by one.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from randstruct.engine import kernels
from randstruct.engine.batches import BatchStream, Prefetcher
from randstruct.engine.model import PARAMS, Ensemble
from randstruct.engine.seeding import member_rng
from randstruct.engine.spectra import HostSingularValues, SubspaceTracker, leading_eigenvalues
from randstruct.tasks import Batch, Task

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
    """Trains an ensemble in place; resumable through :meth:`state_dict`.

    An epoch is two pure device stages, forward (loss, divergence marks) and backward (gradients,
    optimizer update), with the dW record between them on record epochs. Both stages update the
    parameters, optimizer moments, divergence marks and loss history in place on the device and
    never wait for the host, so on a GPU they can be captured once as CUDA graphs and replayed
    (``cuda_graphs``, default on for CUDA unless the environment sets RANDSTRUCT_CUDA_GRAPHS=0;
    results are the same either way): one launch per stage instead of about a thousand
    kernel launches per epoch, while batches for the next epochs are made in worker processes and
    full singular spectra of dW are computed on host threads (``prefetch``, ``host_spectra``).
    """

    def __init__(self, ensemble: Ensemble, task: Task, config: TrainConfig, data: Batch | None = None,
                 cuda_graphs: bool | None = None, prefetch: bool | None = None, host_spectra: bool | None = None):
        if task.n_in != ensemble.n_in or task.n_out != ensemble.n_out:
            raise ValueError(
                f"task {task.name!r} has {task.n_in} inputs / {task.n_out} outputs but the networks have "
                f"{ensemble.n_in} / {ensemble.n_out}")
        self.ensemble, self.task, self.config = ensemble, task, config
        self.dt = task.dt
        lr = config.learning_rates(ensemble.n, ensemble.g)
        np_dtype = np.float64 if ensemble.dtype == torch.float64 else np.float32
        self._record = TrainRecord.empty(ensemble.size, ensemble.n, config, lr, np_dtype)
        self.stream = BatchStream(task, ensemble, config.batch_size, data)
        dev, dtype = ensemble.device, ensemble.dtype
        self._lr = torch.as_tensor(lr, dtype=dtype, device=dev)
        self.active = torch.ones(ensemble.size, dtype=torch.bool, device=dev)
        self.moments = {
            p: (torch.zeros_like(getattr(ensemble, p)), torch.zeros_like(getattr(ensemble, p)))
            for p in config.trainable
        } if config.optimizer == "adam" else {}
        self.sv_tracker = _tracker(ensemble, config.sv_top) if config.uses_subspace(ensemble.n) else None
        self.epoch = 0
        # Device-side state written by the stages; the host record is filled from it on demand.
        self._epoch_t = torch.zeros((), dtype=torch.int64, device=dev)
        self._diverged = torch.full((ensemble.size,), -1, dtype=torch.int64, device=dev)
        self._hist = torch.full((2, ensemble.size, config.epochs), float("nan"), dtype=dtype, device=dev)
        on_cuda = torch.device(dev).type == "cuda"
        if cuda_graphs is None:
            cuda_graphs = os.environ.get("RANDSTRUCT_CUDA_GRAPHS", "1") != "0"
        self.cuda_graphs = bool(cuda_graphs) and on_cuda
        use_prefetch = on_cuda if prefetch is None else prefetch
        self._prefetch = Prefetcher(self.stream) if use_prefetch and not self.stream.fixed else None
        self._graphs, self._warm, self._stream = None, False, None
        self._chunks = kernels.member_chunks(ensemble.size, ensemble.n, ensemble.n_in,
                                             ensemble.wrec.element_size(), dev)
        # CUDA's caching allocator already reuses the big per-epoch buffers; a CPU needs workspaces.
        self._workspaces = [None if on_cuda else kernels.Workspace() for _ in self._chunks]
        full_spectra = self.sv_tracker is None
        use_host = on_cuda if host_spectra is None else host_spectra
        self._spectra = HostSingularValues() if use_host and full_spectra else None

    # ------------------------------------------------------------------ record
    @property
    def record(self) -> TrainRecord:
        """The training history so far (copied from the device)."""
        if self._spectra is not None:
            self._spectra.wait()
        rec = self._record
        hist = self._hist.cpu().numpy()
        rec.loss[...], rec.grad_norm[...] = hist[0], hist[1]
        rec.diverged_epoch[...] = self._diverged.cpu().numpy()
        rec.epochs_done = self.epoch
        return rec

    # ------------------------------------------------------------------ one epoch
    def _mark(self, finite: torch.Tensor) -> None:
        """Freeze members that just turned non-finite, remembering the epoch (no host sync)."""
        self._diverged.copy_(torch.where(self.active & ~finite, self._epoch_t, self._diverged))
        self.active.logical_and_(finite)

    def _forward_stage(self, inputs, targets, mask):
        ens = self.ensemble
        shown = self.active.clone()
        traces = [kernels.forward(inputs[c], ens.wi[c], ens.wrec[c], ens.wo[c], ens.b[c], ens.x0[c], self.dt,
                                  ens.nonlinearity, workspace=w) for c, w in zip(self._chunks, self._workspaces)]
        outputs = traces[0].outputs if len(traces) == 1 else torch.cat([t.outputs for t in traces])
        loss, d_out = kernels.masked_mse(outputs, targets, mask)
        self._mark(torch.isfinite(loss))
        d_out.mul_(_per_member(self.active.to(d_out.dtype), d_out)).nan_to_num_(0.0)
        self._write_history(0, torch.where(shown, loss, float("nan")))
        return traces, d_out, shown

    def _backward_stage(self, traces, d_out, shown):
        ens, cfg = self.ensemble, self.config
        parts = [kernels.backward(t, d_out[c], ens.wrec[c], ens.wo[c], self.dt, ens.nonlinearity, cfg.trainable,
                                  workspace=w) for t, c, w in zip(traces, self._chunks, self._workspaces)]
        grads = parts[0] if len(parts) == 1 else {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        sq = sum(g.reshape(g.shape[0], -1).square().sum(dim=1) for g in grads.values())
        self._write_history(1, torch.where(shown, sq.sqrt(), float("nan")))
        self._update(grads)

    def _write_history(self, row: int, values: torch.Tensor) -> None:
        self._hist[row].index_copy_(1, self._epoch_t.view(1), values[:, None])

    def step(self) -> torch.Tensor:
        """One update of every active member; returns the per-member loss before it."""
        batch = self._prefetch.next() if self._prefetch is not None else self.stream.next()
        if self.cuda_graphs and self._warm:
            return self._replay(batch)
        if not self.cuda_graphs:
            return self._eager(batch)
        # The first step runs eagerly on the stream that will capture: lazy library set-up
        # (cuBLAS workspaces, ...) must happen outside the capture.
        with torch.cuda.stream(self._side_stream()):
            loss = self._eager(batch)
        torch.cuda.current_stream(self.ensemble.device).wait_stream(self._stream)
        self._warm = True
        return loss

    def _eager(self, batch) -> torch.Tensor:
        """One epoch launched op by op; ``batch`` may still be on the host (pinned)."""
        batch = tuple(t.to(self.ensemble.device, non_blocking=True) for t in batch)
        self._epoch_t.fill_(self.epoch)
        trace, d_out, shown = self._forward_stage(*batch)
        self._record_if_due()
        self._backward_stage(trace, d_out, shown)
        self.epoch += 1
        return self._hist[0, :, self.epoch - 1]

    def _side_stream(self):
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.ensemble.device)
        self._stream.wait_stream(torch.cuda.current_stream(self.ensemble.device))
        return self._stream

    def _replay(self, batch) -> torch.Tensor:
        if self._graphs is None:
            try:
                self._graphs = self._capture(batch)
            except RuntimeError as err:  # a library call that cannot be captured on this setup
                warnings.warn(f"CUDA graph capture failed ({err}); training continues without graphs",
                              RuntimeWarning, stacklevel=3)
                torch.cuda.synchronize(self.ensemble.device)
                self.cuda_graphs = False
                return self._eager(batch)
        fwd, bwd, static = self._graphs
        for dst, src in zip(static, batch):
            if dst is not src:
                dst.copy_(src, non_blocking=True)
        self._epoch_t.fill_(self.epoch)
        fwd.replay()
        self._record_if_due()
        bwd.replay()
        self.epoch += 1
        return self._hist[0, :, self.epoch - 1]

    def _capture(self, batch):
        """Record both stages as CUDA graphs reading from static batch buffers."""
        dev = self.ensemble.device
        static = tuple(torch.empty(t.shape, dtype=t.dtype, device=dev) for t in batch)
        fwd, bwd = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        stream = self._side_stream()
        with torch.cuda.graph(fwd, stream=stream, capture_error_mode="thread_local"):
            out = self._forward_stage(*static)
        with torch.cuda.graph(bwd, stream=stream, pool=fwd.pool(), capture_error_mode="thread_local"):
            self._backward_stage(*out)
        torch.cuda.current_stream(dev).wait_stream(stream)
        self._captured = out  # the intermediate buffers both graphs point at
        return fwd, bwd, static

    def _record_if_due(self) -> None:
        if self.epoch % self.config.rec_step == 0:
            self._record_dw(self.epoch // self.config.rec_step)

    def _record_dw(self, j: int) -> None:
        ens, rec = self.ensemble, self._record
        alive = self.active.cpu().numpy()
        if not alive.any():
            return
        dw = ens.dw[self.active]
        if self._spectra is not None:
            members, n_sv = np.flatnonzero(alive), rec.sv_dw.shape[-1]

            def deliver(rows: slice, values: np.ndarray) -> None:
                rec.sv_dw[members[rows], j] = values[:, :n_sv]

            self._spectra.submit(dw, deliver)
        else:
            sv = self.sv_tracker(dw, self.active) if self.sv_tracker is not None else torch.linalg.svdvals(dw)
            rec.sv_dw[alive, j] = sv[:, : rec.sv_dw.shape[-1]].cpu().numpy()
        if rec.eig_w is not None:
            rec.eig_w[alive, j] = leading_eigenvalues(ens.wrec[self.active], rec.eig_w.shape[-1]).cpu().numpy()
        if rec.weights is not None:
            rec.weights[alive, j] = ens.wrec[self.active].cpu().numpy()

    def _update(self, grads: dict[str, torch.Tensor]) -> None:
        cfg, ens = self.config, self.ensemble
        zero = torch.zeros((), dtype=ens.dtype, device=self.active.device)
        if cfg.optimizer == "adam":
            (b1, b2), t = cfg.betas, self._epoch_t.to(torch.float64) + 1
            bc1 = (1 - torch.pow(b1, t)).to(ens.dtype)
            root_bc2 = (1 - torch.pow(b2, t)).sqrt().to(ens.dtype)
        new = {}
        for name, grad in grads.items():
            p = getattr(ens, name)
            grad = torch.where(_per_member(self.active, grad), grad, zero)
            lr = _per_member(self._lr, p)
            if cfg.optimizer == "sgd":
                new[name] = p - lr * grad
                continue
            m, v = self.moments[name]
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v.sqrt() / root_bc2).add_(cfg.eps)
            new[name] = p - (lr / bc1) * m / denom
        finite = torch.stack([torch.isfinite(v.reshape(v.shape[0], -1)).all(dim=1) for v in new.values()]).all(dim=0)
        self._mark(finite)
        for name, value in new.items():
            p = getattr(ens, name)
            p.copy_(torch.where(_per_member(self.active, value), value, p))

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
        record = self.record  # waits for the device
        record.wall_time += time.perf_counter() - start
        if bar is not None:
            bar.close()
        return record

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        record = self.record
        return {
            "epoch": self.epoch,
            "params": {k: v.cpu() for k, v in self.ensemble.params().items()},
            "moments": {k: (m.cpu(), v.cpu()) for k, (m, v) in self.moments.items()},
            "active": self.active.cpu(),
            "rngs": self.stream.state() if self._prefetch is None else self._prefetch.state(),
            "sv_subspace": None if self.sv_tracker is None else self.sv_tracker.q.cpu(),
            "record": {k: v for k, v in vars(record).items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`, in place (captured graphs keep pointing at the same buffers)."""
        for k, v in state["params"].items():
            getattr(self.ensemble, k).copy_(v)
        for k, (m, v) in state["moments"].items():
            self.moments[k][0].copy_(m)
            self.moments[k][1].copy_(v)
        self.active.copy_(state["active"])
        if self._prefetch is None:
            self.stream.set_state(state["rngs"])
        else:
            self._prefetch.reset(state["rngs"])
        if self.sv_tracker is not None:
            self.sv_tracker.q = state["sv_subspace"].to(self.ensemble.device)
        self._record = TrainRecord(**state["record"])
        self._hist.copy_(torch.as_tensor(np.stack([self._record.loss, self._record.grad_norm])))
        self._diverged.copy_(torch.as_tensor(self._record.diverged_epoch))
        self.epoch = state["epoch"]

    @property
    def prefetching(self) -> bool:
        """Whether batches are made ahead by worker processes."""
        return self._prefetch is not None

    def close(self) -> None:
        """Stop the batch and spectra workers (started on accelerators only, unless asked for)."""
        if self._prefetch is not None:
            self._prefetch.close()
        if self._spectra is not None:
            self._spectra.close()


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
    trainer = Trainer(ensemble, task, config, data)
    try:
        return trainer.run(progress=progress)
    finally:
        trainer.close()
