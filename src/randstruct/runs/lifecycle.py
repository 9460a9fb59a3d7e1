"""The one lifecycle of a run directory, whatever it holds (an RNN ensemble, a shard of one, the
sentiment LSTM): started under the caller's lock (checked, cleared with ``overwrite``,
``config.json`` written for a new run, the checkpoint handed back on ``resume``), checkpointed
by the trainer, finished by writing the results store (keeping the final state where the run can be
extended, else dropping the checkpoint). Analyses are
added beside the results later (``store.add_results``)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from randstruct import store


def start_run(out: Path, kind: str, spec: dict, overwrite: bool, resume: bool, where: tuple[str, ...] = ()) -> dict | None:
    """Prepare ``out`` for a run of ``kind`` with ``spec`` (the caller holds its lock); returns the
    checkpoint to resume from, or None. ``where``: spec keys that say where the run is computed,
    ignored when a resumed run's config is compared."""
    checkpoint = store.prepare_run_dir(out, kind, spec, overwrite, resume, where)
    if overwrite:
        store.clear_run_dir(out)
    if checkpoint is None and not resume:
        out.mkdir(parents=True, exist_ok=True)
        store.write_json_atomic(out / store.CONFIG, store.new_config(kind, spec))
    return checkpoint


def finish_run(out: Path, results: xr.Dataset, final_state: dict | None = None) -> None:
    """Write the results store (atomically), then keep ``final_state`` as the checkpoint (a run
    that can be extended) or drop the checkpoint the results replace."""
    store.write_results(out, results)
    if final_state is not None:
        store.save_checkpoint(out, final_state)
    else:
        (out / store.CHECKPOINT).unlink(missing_ok=True)
