"""A paper-scale reproduction on a SLURM cluster through dask-jobqueue.

    pip install 'randstruct[slurm]'
    python examples/slurm.py --jobs 10 --cores 32 --queue normal --account myproject --out /shared/results \
        --sst /shared/trainDevTestTrees_PTB/trees --glove /shared/glove.6B.100d.txt

Run it on a login node (or inside a small job of its own). It starts a Dask scheduler here,
submits ``--jobs`` worker jobs of ``--cores`` single-threaded worker processes each (one shard per
core: small ensembles run best on one thread), sends every shard of every run to them at once,
merges, analyses the same way and draws the figures here. ``--out`` must be on a filesystem every
node mounts. Interrupted? Run the same command again: finished shards are reused and unfinished
ones resume from their checkpoints. ``--dry-run`` prints the job script and submits nothing.
Figs 5 and S6 need the Stanford Sentiment Treebank and GloVe (``--sst``, ``--glove``; the LSTM
trains here, not on the cluster); without them name the other figures, e.g. ``--figures fig1 fig2``.
"""

from __future__ import annotations

import argparse
import sys


def make_cluster(cores: int, memory: str, walltime: str, queue: str | None = None, account: str | None = None,
                 interface: str | None = None, host: str | None = None):
    """A SLURMCluster whose every job runs ``cores`` worker processes of one thread each."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        cores=cores, processes=cores, memory=memory, walltime=walltime, queue=queue, account=account,
        interface=interface, scheduler_options={"host": host} if host else {},
        job_script_prologue=["export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"],  # torch threads are set per task
        job_name="randstruct",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="slurm.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=10, help="SLURM jobs (nodes) to request; default 10")
    p.add_argument("--cores", type=int, default=32, help="cores per job = worker processes per job; default 32")
    p.add_argument("--memory", default="64GB", help="memory per job; default 64GB")
    p.add_argument("--walltime", default="04:00:00", help="walltime per job; default 04:00:00")
    p.add_argument("--queue", default=None, help="SLURM partition")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument("--interface", default=None, help="network interface the nodes reach this host on (e.g. ib0)")
    p.add_argument("--out", default="results", help="output folder on a shared filesystem; default results")
    p.add_argument("--figures", nargs="+", default=["all"], metavar="FIG",
                   help="figures to reproduce (fig1 ... figS6, all); default all")
    p.add_argument("--sst", default=None, help="SST PTB-tree folder (train.txt, dev.txt, test.txt) for Figs 5/S6")
    p.add_argument("--glove", default=None, help="GloVe text file (glove.6B.100d.txt) for Figs 5/S6")
    p.add_argument("--dry-run", action="store_true", help="print the job script, submit nothing")
    a = p.parse_args(argv)
    from randstruct.paper.reproduce import FIGURES, resolve

    try:
        figures = resolve(a.figures)
    except ValueError as err:
        p.error(str(err))
    if {"fig5", "figS6"} & set(figures) and (a.sst is None or a.glove is None) and not a.dry_run:
        others = " ".join(f for f in FIGURES if f not in ("fig5", "figS6"))
        p.error("Figs 5 and S6 at the paper scale need the real data: pass --sst DIR (trainDevTestTrees_PTB) and "
                f"--glove FILE (glove.6B.100d.txt), or leave them out: --figures {others}")
    cluster = make_cluster(a.cores, a.memory, a.walltime, a.queue, a.account, a.interface)
    try:
        if a.dry_run:
            print(cluster.job_script())
            return 0
        from distributed import Client

        from randstruct.executors.cluster import DaskExecutor
        from randstruct.paper.reproduce import reproduce
        from randstruct.store import RunError

        cluster.scale(jobs=a.jobs)
        with Client(cluster) as client, DaskExecutor(client=client, threads=1) as executor:
            try:
                result = reproduce(figures, "paper", a.out, executor=executor, sst=a.sst, glove=a.glove)
            except (RunError, ValueError) as err:
                print(f"{p.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
                return 2
        return 1 if any(not c.passed for c in result["claims"]) else 0
    finally:
        cluster.close()


if __name__ == "__main__":
    raise SystemExit(main())
