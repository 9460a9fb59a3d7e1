"""``randstruct experiment`` and ``randstruct reproduce``: the paper's runs, figures and claims."""

from __future__ import annotations

import argparse
import sys

from randstruct.cli.common import add_cluster_options, executor_from_args, print_thread_hint
from randstruct.errors import UserInputError


def register(sub) -> None:
    x = sub.add_parser("experiment", help="train one of the paper's experiments (without NAME: list them)",
                       description="Train every run of one of the paper's experiments into OUT/NAME/, "
                                   "reusing completed runs and resuming interrupted ones.")
    x.add_argument("name", nargs="?", help="experiment name; omit to list them")
    x.add_argument("--scale", default="smoke", help="smoke (minutes on a laptop) or paper (exact protocol)")
    x.add_argument("--out", default="results", help="output folder; default results")
    x.add_argument("--device", default="cpu", help="cpu or cuda")
    x.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_cluster_options(x)

    rp = sub.add_parser("reproduce", help="train, analyse and draw the paper's figures, with a claims report",
                        description="Run (or reuse, or resume) every experiment the figures need, draw them as "
                                    "PNG and PDF under OUT/figures and check the paper's claims in OUT/claims.md "
                                    "and OUT/claims.json (both papers' claims when both ran into OUT). "
                                    "Exit code 1 if a claim fails.")
    rp.add_argument("figures", nargs="*", default=["all"],
                    help="fig1 ... figS6 (interplay2020), fig3 ... fig6 (oblique2024), or all (default)")
    rp.add_argument("--paper", default="interplay2020",
                    help="interplay2020 (Schuessler et al. NeurIPS 2020, the default) or oblique2024 "
                         "(Schuessler et al. eLife 2024, aligned and oblique dynamics)")
    rp.add_argument("--scale", default="smoke", help="smoke (minutes on a laptop) or paper (exact protocol)")
    rp.add_argument("--out", default="results", help="output folder; default results")
    rp.add_argument("--device", default="cpu", help="cpu or cuda")
    rp.add_argument("--no-progress", action="store_true", help="no progress bars")
    rp.add_argument("--sst", default=None, help="SST PTB-tree folder (train.txt, dev.txt, test.txt) for Figs 5/S6")
    rp.add_argument("--glove", default=None, help="GloVe text file (glove.6B.100d.txt) for Figs 5/S6")
    add_cluster_options(rp)
    x.set_defaults(handler=cmd_experiment)
    rp.set_defaults(handler=cmd_reproduce)


def cmd_experiment(a: argparse.Namespace) -> int:
    from randstruct.paper.experiments import EXPERIMENTS, experiment_specs, run_experiment

    if a.name is None:
        for e in EXPERIMENTS.values():
            print(f"{e.name:10s} {', '.join(e.figures):20s} {e.description}")
        return 0
    experiment_specs(a.name, a.scale, a.device)  # validate name, scale and device before any work
    with executor_from_args(a) as executor:
        runs = run_experiment(a.name, a.scale, a.out, a.device, progress=not a.no_progress, executor=executor)
    for label, run in runs.items():
        print(f"{a.name}/{label}: {run.path}")
    return 0


PAPERS = ("interplay2020", "oblique2024")


def cmd_reproduce(a: argparse.Namespace) -> int:
    if a.paper not in PAPERS:
        raise UserInputError(f"unknown paper {a.paper!r}; allowed: {', '.join(PAPERS)}")
    if a.paper == "oblique2024":
        from randstruct.paper.oblique2024.reproduce import resolve, reproduce

        if a.sst or a.glove:
            raise UserInputError("--sst and --glove belong to the interplay2020 paper's Figs 5/S6, not to oblique2024")
        resolve(a.figures)  # unknown figure names before a cluster starts
        with executor_from_args(a) as executor:
            result = reproduce(a.figures, a.scale, a.out, a.device, progress=not a.no_progress, executor=executor)
    else:
        from randstruct.paper.reproduce import reproduce

        with executor_from_args(a) as executor:
            result = reproduce(a.figures, a.scale, a.out, a.device, progress=not a.no_progress, sst=a.sst,
                               glove=a.glove, executor=executor)
    if a.scheduler is None:
        print_thread_hint(a.device)
    failed = [c for c in result["claims"] if not c.passed]
    for c in failed:
        print(f"{c.verdict} {c.id}: {c.statement}: measured {c.measured}, expected {c.expected}"
              + (f" ({c.missing})" if c.missing else ""), file=sys.stderr)
    return 1 if failed else 0
