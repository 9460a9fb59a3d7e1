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
Errors follow randstruct's policy: one line, exit 2 for the user's input, 1 for a bug.
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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=10, help="SLURM jobs (nodes) to request; default 10")
    p.add_argument("--cores", type=int, default=32, help="cores per job = worker processes per job; default 32")
    p.add_argument("--memory", default="64GB", help="memory per job; default 64GB")
    p.add_argument("--walltime", default="04:00:00", help="walltime per job; default 04:00:00")
    p.add_argument("--queue", default=None, help="SLURM partition")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument("--interface", default=None, help="network interface the nodes reach this host on (e.g. ib0)")
    p.add_argument("--out", default="results", help="output folder on a shared filesystem; default results")
    p.add_argument("--sst", default=None, help="folder of the SST trees (train.txt, dev.txt, test.txt) for fig5/figS6")
    p.add_argument("--glove", default=None, help="glove.6B.100d.txt for fig5/figS6")
    p.add_argument("--dry-run", action="store_true", help="print the job script, submit nothing")
    a = p.parse_args(argv)
    if not a.dry_run and (a.sst is None or a.glove is None):  # refused before any job is submitted
        from randstruct.errors import UserInputError

        raise UserInputError("the paper-scale sentiment figures (fig5, figS6) need the real data: pass --sst DIR "
                             "(trainDevTestTrees_PTB from the Stanford Sentiment Treebank) and --glove FILE "
                             "(glove.6B.100d.txt)")
    cluster = make_cluster(a.cores, a.memory, a.walltime, a.queue, a.account, a.interface)
    try:
        if a.dry_run:
            print(cluster.job_script())
            return 0
        from distributed import Client

        from randstruct.executors.cluster import DaskExecutor
        from randstruct.paper.reproduce import reproduce

        cluster.scale(jobs=a.jobs)
        with Client(cluster) as client, DaskExecutor(client=client, threads=1) as executor:
            result = reproduce(["all"], "paper", a.out, sst=a.sst, glove=a.glove, executor=executor)
        return 1 if any(not c.passed for c in result["claims"]) else 0
    finally:
        cluster.close()


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:
        print("slurm.py: interrupted; run the same command again: finished shards are reused", file=sys.stderr)
        code = 130
    except Exception as err:
        from randstruct.errors import report

        code = report(err, "slurm.py", f"argv {sys.argv}")
    raise SystemExit(code)
