"""Run directories: ``config.json`` + ``results.zarr`` (an xarray Dataset) + a resume checkpoint.

Layout of a run directory::

    config.json      every parameter and seed, package versions (enough to rerun)
    results.zarr/    labelled arrays, written once training completed (crc32 per array in its attributes)
    additions.zarr/  variables added later (analysis), rewritten whole and swapped in atomically
    checkpoint.pt    trainer state while a run is in progress, then its final state (to extend it)
    .randstruct.lock the writer's host, pid, purpose and start time while one writes (store/lock.py)

What the arrays are is the business of the layers above: runs/schema.py for a training run, the
analysis plug-ins for what they add.
"""


from randstruct.store.errors import DamagedRunError, RunError
from randstruct.store.lock import LOCK, RunLocked, lock_owner, run_lock
from randstruct.store.results import ADDITIONS, RESULTS, add_results, checksum, open_results, write_results
from randstruct.store.rundir import (CHECKPOINT, CONFIG, KINDS, SCHEMA, check_overwritable, clear_run_dir,
                                     is_complete, load_checkpoint, new_config, prepare_run_dir, read_config,
                                     save_checkpoint, versions, write_json_atomic)

__all__ = ["ADDITIONS", "CHECKPOINT", "CONFIG", "KINDS", "LOCK", "RESULTS", "SCHEMA", "DamagedRunError",
           "RunError", "RunLocked",
           "add_results", "check_overwritable", "checksum", "clear_run_dir", "is_complete", "load_checkpoint",
           "lock_owner", "new_config", "open_results", "prepare_run_dir", "read_config", "run_lock",
           "save_checkpoint", "versions", "write_json_atomic", "write_results"]
