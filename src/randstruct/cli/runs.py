"""``randstruct info`` and ``randstruct analyze``: what is in a run, and its connectivity analysis."""

from __future__ import annotations

import argparse
import time

from randstruct.cli.common import add_cluster_options, cluster_kwargs


def register(sub) -> None:
    i = sub.add_parser("info", help="summary table of a run, per g (mean and sd over seeds)")
    i.add_argument("run", help="run directory")

    an = sub.add_parser("analyze", help="rank truncation, W0 shuffles, spectra, functional rank, convergence",
                        description="Add the connectivity analysis to a run's store (idempotent; --force recomputes).")
    an.add_argument("run", help="run directory")
    an.add_argument("--ranks", type=int, default=25, help="truncation ranks 0..R; default 25")
    an.add_argument("--shuffles", type=int, default=10, help="shuffles of W0 per variant; default 10")
    an.add_argument("--eval-trials", type=int, default=512, help="trials per evaluation set; default 512")
    an.add_argument("--eval-policy", default="fixed",
                    help="fixed: one seeded evaluation set per network for every rank (smooth curves); "
                         "fresh: a new set per rank and shuffle, as the paper did")
    an.add_argument("--threshold", type=float, default=0.05, help="functional rank / convergence threshold")
    an.add_argument("--force", action="store_true", help="recompute even if the analysis is stored")
    an.add_argument("--device", default=None, help="cpu or cuda; default: the run's device")
    an.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_cluster_options(an)
    i.set_defaults(handler=cmd_info)
    an.set_defaults(handler=cmd_analyze)


def cmd_info(a: argparse.Namespace) -> int:
    from randstruct.runs import load
    from randstruct.analysis.summary import format_table, summarize

    run = load(a.run)
    print(format_table(run, summarize(run)))
    if "fp_count" in run.data:
        from randstruct.dynamics.summary import format_dynamics

        print("\ndynamics (randstruct dynamics):")
        print(format_dynamics(run.data))
    return 0


def cmd_analyze(a: argparse.Namespace) -> int:
    from randstruct.analysis import analyze_run
    from randstruct.runs import load
    from randstruct.analysis.summary import format_table, summarize

    cluster = cluster_kwargs(a)
    run = load(a.run)
    start = time.perf_counter()
    analyze_run(run, ranks=a.ranks, shuffles=a.shuffles, eval_trials=a.eval_trials, eval_policy=a.eval_policy,
                threshold=a.threshold, force=a.force, progress=not a.no_progress, device=a.device, **cluster)
    run = load(a.run)
    print(format_table(run, summarize(run)))
    print(f"analysis stored in {run.path / 'additions.zarr'} ({time.perf_counter() - start:.1f} s)")
    return 0
