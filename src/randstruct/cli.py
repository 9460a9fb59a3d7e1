"""Command-line interface: a thin layer over :mod:`randstruct.runs` and friends.

Every error a user can cause is reported as one line ``randstruct: error: ...`` with exit code 2,
before anything on disk is touched.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import __version__
from .model import PARAMS
from .store import RunError
from .tasks import TASKS
from .sentiment import cli as sentiment_cli
from .train import LR_RULES, OPTIMIZERS, TrainConfig


class UsageError(Exception):
    """Bad command-line input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message}")


def parse_floats(text: str, option: str) -> list[float]:
    """'0,0.9,1.8' or an inclusive range 'start:stop:step' such as '0:2.1:0.3'."""
    example = "expected comma-separated numbers like 0,0.9,1.8 or a range start:stop:step like 0:2.1:0.3"
    try:
        if ":" in text:
            start, stop, step = (float(p) for p in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            values = np.arange(start, stop + step / 2, step)
            return [round(float(v), 12) for v in values]
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise UsageError(f"invalid {option} value {text!r}: {example}") from None
    if not all(np.isfinite(values)):
        raise UsageError(f"invalid {option} value {text!r}: numbers must be finite")
    return values


def parse_task_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --task-param {item!r}: expected NAME=VALUE, e.g. T=100")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="randstruct", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"randstruct {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a (g x seed) grid of networks as one ensemble",
                       description="Train every (g, seed) network on one task as a single ensemble "
                                   "computation and write a run directory.")
    t.add_argument("--task", required=True, help=f"one of: {', '.join(sorted(TASKS))}")
    t.add_argument("--N", type=int, required=True, help="number of recurrent units (>= 2)")
    t.add_argument("--g", required=True, help="gains of W0: 0,0.9,1.8 or start:stop:step")
    t.add_argument("--seeds", type=int, default=1, help="networks per g (samples); default 1")
    t.add_argument("--first-seed", type=int, default=0, help="seed of the first sample; default 0")
    t.add_argument("--epochs", type=int, required=True, help="number of updates (one fresh batch each)")
    t.add_argument("--out", required=True, help="run directory to create")
    t.add_argument("--batch", type=int, default=None,
                   help="trials per update; default 32, or 1 for deterministic tasks")
    t.add_argument("--optimizer", default="adam", help=f"{' or '.join(OPTIMIZERS)}; default adam")
    t.add_argument("--lr-rule", default="over_n",
                   help="; ".join(f"{k}: {v}" for k, v in LR_RULES.items()) + "; default over_n")
    t.add_argument("--lr0", type=float, default=0.05, help="base learning rate; default 0.05")
    t.add_argument("--train", default="wi,wrec,wo", help=f"trained parameters among {','.join(PARAMS)}")
    t.add_argument("--nonlinearity", default="tanh", help="tanh or linear; default tanh")
    t.add_argument("--dt", type=float, default=None, help="Euler step in units of tau; default: the task's")
    t.add_argument("--task-param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a task parameter (repeatable), e.g. T=100")
    t.add_argument("--rec-step", type=int, default=None,
                   help="record the SVs of W - W0 every this many epochs; default epochs/200")
    t.add_argument("--sv-top", type=int, default=None, help="keep only the largest SVs")
    t.add_argument("--record-weights", action="store_true", help="also store W at recorded epochs")
    t.add_argument("--dtype", default="float32", help="float32 or float64")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--checkpoint-every", type=int, default=None,
                   help="epochs between checkpoints; default epochs/20")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

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

    x = sub.add_parser("experiment", help="train one of the paper's experiments (without NAME: list them)",
                       description="Train every run of one of the paper's experiments into OUT/NAME/, "
                                   "reusing completed runs and resuming interrupted ones.")
    x.add_argument("name", nargs="?", help="experiment name; omit to list them")
    x.add_argument("--scale", default="smoke", help="smoke (minutes on a laptop) or paper (exact protocol)")
    x.add_argument("--out", default="results", help="output folder; default results")
    x.add_argument("--device", default="cpu", help="cpu or cuda")
    x.add_argument("--no-progress", action="store_true", help="no progress bars")

    rp = sub.add_parser("reproduce", help="train, analyse and draw the paper's figures, with a claims report",
                        description="Run (or reuse, or resume) every experiment the figures need, draw them as "
                                    "PNG and PDF under OUT/figures and check the paper's claims in OUT/claims.md "
                                    "and OUT/claims.json. Exit code 1 if a claim fails.")
    rp.add_argument("figures", nargs="*", default=["all"], help="fig1 ... figS5, or all (default)")
    rp.add_argument("--scale", default="smoke", help="smoke (minutes on a laptop) or paper (exact protocol)")
    rp.add_argument("--out", default="results", help="output folder; default results")
    rp.add_argument("--device", default="cpu", help="cpu or cuda")
    rp.add_argument("--no-progress", action="store_true", help="no progress bars")
    rp.add_argument("--sst", default=None, help="SST PTB-tree folder (train.txt, dev.txt, test.txt) for Figs 5/S6")
    rp.add_argument("--glove", default=None, help="GloVe text file (glove.6B.100d.txt) for Figs 5/S6")

    bn = sub.add_parser("bench", help="training throughput: ensemble vs serial reference vs matmul peak",
                        description="Measure, in one invocation, network-epochs/s of the serial reference "
                                    "(one network at a time, autograd) and of the ensemble trainer on flip-flop "
                                    "(batch 32, 100 steps), the recurrent GFLOP/s against the batched-matmul rate "
                                    "at the same shape, the share of task generation, and peak memory.")
    bn.add_argument("--quick", action="store_true", help="N = 256 with E in {1, 8, 40} only")
    bn.add_argument("--epochs", type=int, default=None,
                    help="epochs per timed repeat; default 4 on a CPU, 100 on a GPU")
    bn.add_argument("--repeats", type=int, default=3, help="timed repeats (min/median/max); default 3")
    bn.add_argument("--device", default="cpu", help="cpu or cuda")
    bn.add_argument("--json", default=None, help="also write the rows to this JSON file")

    th = sub.add_parser("theory", help="linear theory tools")
    th_sub = th.add_subparsers(dest="theory_command", required=True, parser_class=_Parser)
    chk = th_sub.add_parser("check", help="Monte-Carlo check of the trace identities and first-order slopes",
                            description="Draw W0 at finite N and compare the random-matrix quantities the "
                                        "theory relies on with their N -> infinity limits.")
    chk.add_argument("--N", type=int, default=1000, help="network size; default 1000")
    chk.add_argument("--g", default="0,0.3,0.6,0.9", help="gains (< 1); default 0,0.3,0.6,0.9")
    chk.add_argument("--seeds", type=int, default=8, help="draws per g; default 8")
    chk.add_argument("--zhat", type=float, default=0.5, help="target; default 0.5")
    sentiment_cli.add_parser(sub)
    return p


def _spec_from_args(a: argparse.Namespace):
    from .runs import RunSpec

    if a.task not in TASKS:
        raise UsageError(f"unknown task {a.task!r}; allowed: {', '.join(sorted(TASKS))}")
    if a.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {a.seeds}")
    if a.first_seed < 0:
        raise UsageError(f"--first-seed must be >= 0, got {a.first_seed}")
    task_params = parse_task_params(a.task_param)
    if a.dt is not None:
        if not 0 < a.dt <= 1:
            raise UsageError(f"--dt must be in (0, 1], got {a.dt}")
        task_params["dt"] = a.dt
    trainable = tuple(x for x in a.train.split(",") if x)
    task = TASKS[a.task](**task_params)
    batch = a.batch if a.batch is not None else (32 if task.stochastic else 1)
    rec_step = a.rec_step if a.rec_step is not None else max(1, a.epochs // 200)
    config = TrainConfig(epochs=a.epochs, batch_size=batch, optimizer=a.optimizer, lr_rule=a.lr_rule,
                         lr0=a.lr0, trainable=trainable, rec_step=rec_step, sv_top=a.sv_top,
                         record_weights=a.record_weights)
    seeds = tuple(range(a.first_seed, a.first_seed + a.seeds))
    return RunSpec(task=a.task, n=a.N, g=tuple(parse_floats(a.g, "--g")), seeds=seeds, train=config,
                   task_params=task_params, nonlinearity=a.nonlinearity, dtype=a.dtype, device=a.device)


def cmd_train(a: argparse.Namespace) -> int:
    from .runs import execute

    spec = _spec_from_args(a)
    if a.checkpoint_every is not None and a.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be >= 1, got {a.checkpoint_every}")
    run = execute(spec, a.out, overwrite=a.overwrite, resume=a.resume, progress=not a.no_progress,
                  checkpoint_every=a.checkpoint_every)
    wall = run.data.attrs["train_wall_time_s"]
    n_net = run.data.sizes["net"]
    print(f"trained {n_net} networks x {spec.train.epochs} epochs in {wall:.1f} s "
          f"({n_net * spec.train.epochs / max(wall, 1e-9):,.1f} network-epochs/s) -> {a.out}")
    print(f"next: randstruct info {a.out}")
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    from .runs import load
    from .summary import format_table, summarize

    run = load(a.run)
    print(format_table(run, summarize(run)))
    return 0


def cmd_analyze(a: argparse.Namespace) -> int:
    from .analysis import analyze_run
    from .runs import load
    from .summary import format_table, summarize

    run = load(a.run)
    start = time.perf_counter()
    analyze_run(run, ranks=a.ranks, shuffles=a.shuffles, eval_trials=a.eval_trials, eval_policy=a.eval_policy,
                threshold=a.threshold, force=a.force, progress=not a.no_progress, device=a.device)
    run = load(a.run)
    print(format_table(run, summarize(run)))
    print(f"analysis stored in {run.path / 'results.zarr'} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_experiment(a: argparse.Namespace) -> int:
    from .experiments import EXPERIMENTS, experiment_specs, run_experiment

    if a.name is None:
        for e in EXPERIMENTS.values():
            print(f"{e.name:10s} {', '.join(e.figures):20s} {e.description}")
        return 0
    experiment_specs(a.name, a.scale, a.device)  # validate name, scale and device before any work
    runs = run_experiment(a.name, a.scale, a.out, a.device, progress=not a.no_progress)
    for label, run in runs.items():
        print(f"{a.name}/{label}: {run.path}")
    return 0


def cmd_theory(a: argparse.Namespace) -> int:
    from .theory import monte_carlo_check

    if a.N < 2:
        raise UsageError(f"--N must be >= 2, got {a.N}")
    if a.seeds < 2:
        raise UsageError(f"--seeds must be >= 2 (standard errors need two draws), got {a.seeds}")
    gs = parse_floats(a.g, "--g")
    rows = monte_carlo_check(a.N, gs, a.seeds, a.zhat)
    print(f"N = {a.N}, {a.seeds} draws per g; z = (mean - theory) / SE; |z| > 3 flags a finite-N deviation")
    print(f"{'quantity':>22s} {'g':>5s} {'theory':>12s} {'mean':>12s} {'SE':>10s} {'z':>7s}")
    for r in rows:
        flag = "  <-" if abs(r["z"]) > 3 else ""
        print(f"{r['quantity']:>22s} {r['g']:5.2f} {r['theory']:12.5g} {r['mean']:12.5g} {r['se']:10.3g} "
              f"{r['z']:7.2f}{flag}")
    return 0


def cmd_reproduce(a: argparse.Namespace) -> int:
    from .reproduce import reproduce

    result = reproduce(a.figures, a.scale, a.out, a.device, progress=not a.no_progress, sst=a.sst, glove=a.glove)
    failed = [c for c in result["claims"] if not c.passed]
    for c in failed:
        print(f"FAIL {c.id}: {c.statement}: measured {c.measured}, expected {c.expected}", file=sys.stderr)
    return 1 if failed else 0


def cmd_bench(a: argparse.Namespace) -> int:
    import platform

    import torch

    from . import bench
    from .runs import check_device

    if a.epochs is None:
        a.epochs = 100 if a.device.startswith("cuda") else 4
    if a.epochs < 1 or a.repeats < 1:
        raise UsageError(f"--epochs and --repeats must be >= 1, got {a.epochs} and {a.repeats}")
    check_device(a.device)
    sizes = ((256, (1, 8, 40)),) if a.quick else bench.DEFAULT_SIZES
    machine = torch.cuda.get_device_name() if a.device.startswith("cuda") else (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"flip-flop, batch {bench.BATCH}; {machine}; torch {torch.__version__}")
    print("\n".join(bench.format_table([]).splitlines()[:2]))
    rows = bench.run_suite(sizes, a.epochs, a.repeats, a.device)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine, "torch": torch.__version__, "rows": rows}, f, indent=2)
    return 0


COMMANDS = {"analyze": cmd_analyze, "reproduce": cmd_reproduce, "bench": cmd_bench, "train": cmd_train, "info": cmd_info, "experiment": cmd_experiment, "theory": cmd_theory,
            "sentiment": sentiment_cli.run}


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, RunError, ValueError) as err:
        print(f"randstruct: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("randstruct: interrupted; continue with the same command plus --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
