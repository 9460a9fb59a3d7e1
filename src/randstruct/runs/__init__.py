"""Runs: what a run is (``spec``), the one lifecycle of a run directory (``lifecycle``), what a
training run stores (``schema``), training one end to end (``execute``) and the handle of a
completed one (``handle``: :class:`Run`, :func:`load`). Where the work runs is the caller's
executor (randstruct.executors); nothing here imports one."""

from randstruct.runs.execute import check_trainable, execute, prepare_run, results_dataset, train_into
from randstruct.runs.handle import Run, load
from randstruct.runs.lifecycle import finish_run, start_run
from randstruct.runs.spec import (DTYPES, KIND, WHERE, RunSpec, TrainJob, check_memory, memory_estimate)

__all__ = ["DTYPES", "KIND", "WHERE", "Run", "RunSpec", "TrainJob", "check_trainable", "check_memory", "execute",
           "finish_run", "load", "memory_estimate", "prepare_run", "results_dataset", "start_run", "train_into"]
