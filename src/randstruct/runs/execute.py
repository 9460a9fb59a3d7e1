"""A training run end to end: specification -> run directory -> :class:`Run` handle.

``execute`` validates everything before it touches the output folder, writes ``config.json``
first, checkpoints every ``checkpoint_every`` epochs (so an interruption loses at most that
chunk; ``resume=True`` continues from the checkpoint) and writes the results store last.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import xarray as xr

from randstruct import store
from randstruct.engine.device import check_device
from randstruct.engine.model import Ensemble
from randstruct.engine.train import Trainer, check_training
from randstruct.runs.handle import Run, load
from randstruct.runs.lifecycle import finish_run, start_run
from randstruct.runs.schema import build_dataset
from randstruct.runs.spec import KIND, WHERE, RunSpec, TrainJob, check_memory


def prepare_run(out: Path, spec: RunSpec, overwrite: bool, resume: bool) -> dict | None:
    """The one start of a run folder (the caller holds its lock): checked, cleared with
    ``overwrite``, ``config.json`` written for a new run; returns the checkpoint to resume from."""
    checkpoint = start_run(out, KIND, spec.to_dict(), overwrite, resume, WHERE)
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
    finish_run(out, ds, trainer.state_dict())
    return ds


def check_trainable(spec: RunSpec) -> Ensemble:
    """The initial networks, once everything the trainer would refuse has been checked (the task's
    trials included), so that a refused run leaves nothing on disk."""
    ensemble = spec.make_ensemble()
    check_training(ensemble, spec.make_task(), spec.train, probe=True)
    return ensemble


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
    return build_dataset(arrays, initial.g, initial.seed, rec.rec_epochs, attrs)


