"""Sharded ensembles on Dask distributed: one run's (g x seed) grid cut into shards of members,
each trained (and analysed) as its own ensemble on a worker, merged in member order into the run's
one ``results.zarr``, bitwise the same as training it in one process.

Nothing here imports Dask at module level except :mod:`~randstruct.distributed.execute` and what it
reaches; the in-process path (no ``scheduler``, no ``client``) never imports this package.
Layout of a sharded run directory::

    config.json             the run's spec, as for a run trained in one process
    results.zarr/           the merged store (written once every shard is done)
    shards/layout.json      the cut: shard size and member ranges (fixed for the run's life)
    shards/<k>/             shard k while it is unfinished: config.json, checkpoint.pt,
                            results.zarr, starts.json (removed once merged)
    shards/<k>.lease        which worker process is writing shard k (see faults.py)
"""
