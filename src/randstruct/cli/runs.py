"""``randstruct info`` and ``randstruct analyze``: what is in a run, and its connectivity analysis."""

from __future__ import annotations

import argparse
import time

from randstruct.cli.common import UsageError, add_cluster_options, executor_from_args, parse_task_params


def register(sub) -> None:
    i = sub.add_parser("info", help="summary table of a run, per g (mean and sd over seeds)")
    i.add_argument("run", help="run directory")

    an = sub.add_parser("analyze", help="analyses of a run (default: rank truncation, W0 shuffles, spectra, "
                                        "functional rank, convergence)",
                        description="Add analyses to a run's store: each (analysis, parameters) is computed once "
                                    "(--force recomputes) and stored beside the run's results (docs/analyses.md).")
    an.add_argument("run", help="run directory")
    an.add_argument("--analysis", default=None, metavar="NAME[,NAME...]",
                    help="analyses by name (connectivity, dynamics, ...), package.module:ClassName or entry point; "
                         "default: connectivity")
    an.add_argument("--param", action="append", default=[], metavar="ANALYSIS.NAME=VALUE",
                    help="a parameter of one of the analyses (repeatable), e.g. dynamics.inits=64; the options "
                         "below set those of connectivity")
    an.add_argument("--ranks", type=int, default=None, help="truncation ranks 0..R; default 25")
    an.add_argument("--shuffles", type=int, default=None, help="shuffles of W0 per variant; default 10")
    an.add_argument("--eval-trials", type=int, default=None, help="trials per evaluation set; default 512")
    an.add_argument("--eval-policy", default=None,
                    help="fixed: one seeded evaluation set per network for every rank (smooth curves); "
                         "fresh: a new set per rank and shuffle, as the paper did")
    an.add_argument("--threshold", type=float, default=None,
                    help="functional rank / convergence threshold; default 0.05")
    an.add_argument("--eval-noise", action="store_const", const=True, default=None,
                    help="evaluate with the run's training noise (docs/model.md); default: without noise")
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


CONNECTIVITY_FLAGS = {"ranks": "--ranks", "shuffles": "--shuffles", "eval_trials": "--eval-trials",
                      "eval_policy": "--eval-policy", "threshold": "--threshold", "eval_noise": "--eval-noise"}


def analysis_params(a: argparse.Namespace, names: list[str]) -> dict:
    """{analysis: {parameter: value}} from --param and the connectivity flags."""
    params: dict[str, dict] = {}
    for item, value in parse_task_params(a.param).items():
        name, dot, field = item.partition(".")
        if not dot or not name or not field:
            raise UsageError(f"invalid --param {item!r}: expected ANALYSIS.NAME=VALUE, e.g. dynamics.inits=64")
        params.setdefault(name, {})[field] = value
    given = {k: getattr(a, k) for k in CONNECTIVITY_FLAGS if getattr(a, k) is not None}
    if given and "connectivity" not in names:
        raise UsageError(f"{CONNECTIVITY_FLAGS[next(iter(given))]} sets a parameter of the connectivity analysis, "
                         "which --analysis does not name; name it too")
    if given:
        params["connectivity"] = {**given, **params.get("connectivity", {})}
    return params


def cmd_analyze(a: argparse.Namespace) -> int:
    from randstruct.analysis import DEFAULT, run_analyses
    from randstruct.analysis.summary import format_table, summarize
    from randstruct.runs import load

    names = list(DEFAULT) if a.analysis is None else [n.strip() for n in a.analysis.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--analysis needs at least one name, got {a.analysis!r}")
    params = analysis_params(a, names)
    run = load(a.run)
    start = time.perf_counter()
    with executor_from_args(a) as executor:
        run_analyses(run, names, params, force=a.force, progress=not a.no_progress, device=a.device,
                     executor=executor)
    run = load(a.run)
    print(format_table(run, summarize(run)))
    print(f"analyses stored in {run.path / 'additions.zarr'} ({time.perf_counter() - start:.1f} s): {', '.join(names)}")
    return 0
