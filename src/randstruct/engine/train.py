"""Training an ensemble (SPEC 1.4): one fresh batch per member, one full-BPTT forward/backward
pass, one optimizer step per epoch.

Members are independent: the loss is a sum of per-member losses, the optimizers are element-wise
and every learning rate is per member, so an ensemble follows the same trajectories as its members
trained one by one. The protocol is :class:`~randstruct.engine.config.TrainConfig`; the update is
:mod:`~randstruct.engine.optim`, the history :mod:`~randstruct.engine.recording`, CUDA-graph
replay :mod:`~randstruct.engine.graphs`.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import torch

from randstruct.engine import constraints, kernels, penalties
from randstruct.engine.batches import BatchStream, Prefetcher, can_start_workers, probe_task
from randstruct.engine.config import LR_RULES, OPTIMIZERS, SV_METHODS, TrainConfig
from randstruct.engine.graphs import EpochGraphs
from randstruct.engine.model import Ensemble
from randstruct.engine.noise import NoiseSource
from randstruct.engine.optim import EnsembleOptimizer, per_member
from randstruct.engine.progress import TrainingBar
from randstruct.engine.recording import TrainRecord, Recorder
from randstruct.errors import UserInputError
from randstruct.tasks import Batch, Task

__all__ = ["LR_RULES", "OPTIMIZERS", "SV_METHODS", "TrainConfig", "TrainRecord", "Trainer", "train"]


def check_training(ensemble: Ensemble, task: Task, config: TrainConfig, data: Batch | None = None,
                   probe: bool = False) -> None:
    """What the trainer refuses, checked without training: networks and task that do not fit, a
    loss the task cannot give and (``probe``) trials the task cannot make or that break its contract."""
    if task.n_in != ensemble.n_in or task.n_out != ensemble.n_out:
        raise UserInputError(
            f"task {task.name!r} has {task.n_in} inputs / {task.n_out} outputs but the networks have "
            f"{ensemble.n_in} / {ensemble.n_out}")
    if config.loss == "cross_entropy" and not task.has_labels:
        raise UserInputError(f"loss 'cross_entropy' needs a task with labels (one class per step); task "
                             f"{task.name!r} has none: use loss 'mse'")
    if probe:
        probe_task(task, data)


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
    Batches are also made ahead on a CPU for a task with ``slow_batches`` (NeuroGym's trials).
    """

    def __init__(self, ensemble: Ensemble, task: Task, config: TrainConfig, data: Batch | None = None,
                 cuda_graphs: bool | None = None, prefetch: bool | None = None, host_spectra: bool | None = None):
        check_training(ensemble, task, config)
        self.ensemble, self.task, self.config = ensemble, task, config
        self._loss = kernels.LOSSES[config.loss]
        self.dt = task.dt
        dev = ensemble.device
        on_cuda = torch.device(dev).type == "cuda"
        lr = config.learning_rates(ensemble.n, ensemble.g)
        self.recorder = Recorder(ensemble, config, lr, on_cuda if host_spectra is None else host_spectra,
                                 accuracy=task.has_labels, penalty=config.regularized)
        self.optimizer = EnsembleOptimizer(ensemble, config, torch.as_tensor(lr, dtype=ensemble.dtype, device=dev))
        noise = NoiseSource(ensemble.options, task.dt, ensemble.n, ensemble.dtype != torch.float64) \
            if ensemble.options.noisy else None
        self.stream = BatchStream(task, ensemble, config.batch_size, data, noise)
        self.active = torch.ones(ensemble.size, dtype=torch.bool, device=dev)
        self.epoch = 0
        if cuda_graphs is None:
            cuda_graphs = os.environ.get("RANDSTRUCT_CUDA_GRAPHS", "1") != "0"
        self._graphs = EpochGraphs(self) if cuda_graphs and on_cuda else None
        use_prefetch = (on_cuda or task.slow_batches) if prefetch is None else prefetch
        # a daemonic process (a Dask worker) may not start workers: batches made here are the same batches
        use_prefetch = use_prefetch and can_start_workers() and not self.stream.fixed
        self._prefetch = Prefetcher(self.stream) if use_prefetch else None
        self._chunks = kernels.member_chunks(ensemble.size, ensemble.n, ensemble.n_in,
                                             ensemble.wrec.element_size(), dev)
        # CUDA's caching allocator already reuses the big per-epoch buffers; a CPU needs workspaces.
        self._workspaces = [None if on_cuda else kernels.Workspace() for _ in self._chunks]

    @property
    def record(self) -> TrainRecord:
        """The training history so far (copied from the device)."""
        return self.recorder.record(self.epoch)

    @property
    def cuda_graphs(self) -> bool:
        """Whether epochs are replayed as CUDA graphs."""
        return self._graphs is not None

    def stop_graphs(self) -> None:
        self._graphs = None

    # ------------------------------------------------------------------ one epoch
    def forward_stage(self, *batch):
        """Loss and dL/dz of every member (and the decision accuracy of a task with labels, and the
        penalty of a regularized run); marks members whose loss is not finite. ``batch``: the
        arrays named by the stream's :meth:`~BatchStream.names`."""
        ens, rec, cfg = self.ensemble, self.recorder, self.config
        arrays = dict(zip(self.stream.names(), batch))
        inputs, targets, mask, decision = (arrays.get(k) for k in ("inputs", "targets", "mask", "decision"))
        x0_noise, rec_noise = arrays.get("x0_noise"), arrays.get("rec_noise")
        shown = self.active.clone()
        w = ens.w  # ens.wrec itself without Dale's law or sparsity
        traces = [kernels.forward(inputs[c], ens.wi[c], w[c], ens.wo[c], ens.b[c], ens.x0[c], self.dt,
                                  ens.nonlinearity, workspace=ws,
                                  x0_noise=None if x0_noise is None else x0_noise[c],
                                  rec_noise=None if rec_noise is None else rec_noise[c],
                                  readout_from=ens.options.readout_from)
                  for c, ws in zip(self._chunks, self._workspaces)]
        outputs = traces[0].outputs if len(traces) == 1 else torch.cat([t.outputs for t in traces])
        loss, d_out = self._loss(outputs, targets, mask)
        if decision is not None:
            rec.write(2, torch.where(shown, kernels.decision_accuracy(outputs, targets, decision), float("nan")))
        finite, penalty_grad = torch.isfinite(loss), None
        if cfg.regularized:
            penalty, penalty_grad = penalties.weight_penalty(w, ens.w0, cfg)
            if cfg.l2_rates:
                penalty = penalty + torch.cat([penalties.rate_penalty(t, ens.n, cfg.l2_rates) for t in traces])
            rec.write(rec.penalty_row, torch.where(shown, penalty, float("nan")))
            finite = finite & torch.isfinite(penalty)
        rec.mark(self.active, finite)
        d_out.mul_(per_member(self.active.to(d_out.dtype), d_out)).nan_to_num_(0.0)
        rec.write(0, torch.where(shown, loss, float("nan")))
        return traces, d_out, shown, w, penalty_grad

    def backward_stage(self, traces, d_out, shown, w, penalty_grad):
        """Gradients, their norm, and the optimizer update of every member still finite."""
        ens, rec = self.ensemble, self.recorder
        grads = self.gradients(traces, d_out, w, penalty_grad)
        sq = sum(g.reshape(g.shape[0], -1).square().sum(dim=1) for g in grads.values())
        rec.write(1, torch.where(shown, sq.sqrt(), float("nan")))
        new = self.optimizer.proposal(grads, self.active, rec.epoch_t)
        finite = torch.stack([torch.isfinite(v.reshape(v.shape[0], -1)).all(dim=1) for v in new.values()]).all(dim=0)
        rec.mark(self.active, finite)
        for name, value in new.items():
            p = getattr(ens, name)
            p.copy_(torch.where(per_member(self.active, value), value, p))

    def gradients(self, traces, d_out, w, penalty_grad) -> dict[str, torch.Tensor]:
        """Gradients of task loss plus penalty for the trained parameters (``wrec``: the trained
        parameter, through the Dale signs and the mask)."""
        ens, cfg = self.ensemble, self.config
        coef = penalties.rate_coef(cfg.l2_rates, d_out.shape[1], d_out.shape[2], ens.n)
        parts = [kernels.backward(t, d_out[c], w[c], ens.wo[c], self.dt, ens.nonlinearity, cfg.trainable,
                                  workspace=ws, rate_coef=coef)
                 for t, c, ws in zip(traces, self._chunks, self._workspaces)]
        grads = parts[0] if len(parts) == 1 else {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        if "wrec" in grads:
            if penalty_grad is not None:
                grads["wrec"] = grads["wrec"] + penalty_grad
            grads["wrec"] = constraints.chain(grads["wrec"], ens.wrec, ens.sign, ens.mask)
        return grads

    def snapshot_if_due(self) -> None:
        self.recorder.snapshot_if_due(self.epoch, self.ensemble, self.active)

    def eager_epoch(self, batch) -> None:
        """One epoch launched op by op; ``batch`` may still be on the host (pinned)."""
        batch = tuple(t.to(self.ensemble.device, non_blocking=True) for t in batch)
        self.recorder.epoch_t.fill_(self.epoch)
        out = self.forward_stage(*batch)
        self.snapshot_if_due()
        self.backward_stage(*out)
        self.epoch += 1

    def step(self) -> torch.Tensor:
        """One update of every active member; returns the per-member loss before it."""
        batch = self._prefetch.next() if self._prefetch is not None else self.stream.next()
        if self._graphs is not None:
            self._graphs.step(batch)
        else:
            self.eager_epoch(batch)
        return self.recorder.hist[0, :, self.epoch - 1]

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
        bar = TrainingBar(self, until) if progress else None
        start = self._running_since = time.perf_counter()
        with torch.no_grad():
            while self.epoch < until:
                loss = self.step()
                if bar is not None:
                    bar.update(loss)
                if on_chunk is not None and chunk and self.epoch % chunk == 0 and self.epoch < until:
                    on_chunk(self)
        record = self.record  # waits for the device
        record.wall_time += time.perf_counter() - start
        self._running_since = None
        if bar is not None:
            bar.close()
        return record

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        state = {
            "epoch": self.epoch,
            "params": {k: v.cpu() for k, v in self.ensemble.params().items()},
            "moments": self.optimizer.state(),
            "active": self.active.cpu(),
            "rngs": self.stream.state() if self._prefetch is None else self._prefetch.state(),
            **self.recorder.state(self.epoch),
        }
        if getattr(self, "_running_since", None) is not None:  # a checkpoint mid-run: the time so far
            state["record"]["wall_time"] += time.perf_counter() - self._running_since
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`, in place (captured graphs keep pointing at the same buffers)."""
        for k, v in state["params"].items():
            getattr(self.ensemble, k).copy_(v)
        self.optimizer.load_state(state["moments"])
        self.active.copy_(state["active"])
        if self._prefetch is None:
            self.stream.set_state(state["rngs"])
        else:
            self._prefetch.reset(state["rngs"])
        self.recorder.load_state(state)
        self.epoch = state["epoch"]

    @property
    def prefetching(self) -> bool:
        """Whether batches are made ahead by worker processes."""
        return self._prefetch is not None

    def close(self) -> None:
        """Stop the batch and spectra workers (started on accelerators only, unless asked for)."""
        if self._prefetch is not None:
            self._prefetch.close()
        self.recorder.close()



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
