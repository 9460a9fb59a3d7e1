"""Store-level merges: shard Datasets concatenated along ``net`` in shard order.

Nothing is recomputed: arrays are copied as the shards wrote them, so the merged store holds the
same bytes a run trained in one process writes (the ``net`` coordinate is renumbered 0..E-1).
Every variable without a ``net`` axis (``rec`` epochs, ``rank``, ...) must agree across shards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from randstruct import store
from randstruct.executors.shards import Shard


def concat_shards(parts: list[xr.Dataset]) -> xr.Dataset:
    """Concatenate along ``net``; variable attributes from the first part (the caller sets the Dataset's)."""
    parts = [p.copy() for p in parts]
    for p in parts:
        p.attrs = {}  # the run's attributes differ per shard (wall time, host); the caller sets them
    merged = xr.concat(parts, dim="net", data_vars="minimal", coords="minimal", compat="equals",
                       join="exact", combine_attrs="override")
    merged = merged.assign_coords(net=np.arange(merged.sizes["net"]))
    for var in merged.variables.values():
        var.encoding = {}  # write_results chooses the chunks, exactly as for a run in one process
    return merged


def merge_training(run_dir: Path, shards: list[Shard], cluster_wall_s: float,
                   trained_net_epochs: int | None = None) -> xr.Dataset:
    """Merge the shards' training results into ``run_dir/results.zarr``; returns the merged Dataset.

    Attributes: the run's own (task, N, spec, ...), ``train_wall_time_s`` summed over shards (the
    compute time one process would have spent, roughly), ``cluster_wall_time_s`` (what the last
    command waited), ``cluster_network_epochs`` (the network-epochs that command trained: 0 when it
    reused every shard) and ``shards``: per shard its members, host, device, restarts and wall time.
    """
    parts = [store.open_results(s.path(run_dir)) for s in shards]
    infos = []
    for s, part in zip(shards, parts):
        info = json.loads(part.attrs["shard"])
        infos.append({**info, "wall_time_s": float(part.attrs["train_wall_time_s"])})
    attrs = {k: v for k, v in parts[0].attrs.items() if k != "shard"}
    attrs["train_wall_time_s"] = float(sum(i["wall_time_s"] for i in infos))
    attrs["cluster_wall_time_s"] = float(cluster_wall_s)
    if trained_net_epochs is not None:
        attrs["cluster_network_epochs"] = int(trained_net_epochs)
    attrs["shards"] = json.dumps(infos)
    merged = concat_shards(parts).assign_attrs(attrs)
    store.write_results(run_dir, merged)
    return merged


def merge_analysis(parts: list[xr.Dataset]) -> tuple[xr.Dataset, list[dict]]:
    """The shards' analysis Datasets as one (attributes per variable kept), and where each ran."""
    where = [json.loads(p.attrs["where"]) for p in parts]
    return concat_shards(parts), where
