"""``randstruct sentiment demo``: the whole SST pipeline on a generated corpus, no download.

The corpus and the vectors are written in the published formats (PTB trees, GloVe text), so the
demo runs exactly the code paths a real run uses: loaders, training, truncation, Fig 5 plot.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from randstruct import store
from randstruct.paper.sentiment.corpus import write_corpus
from randstruct.paper.sentiment.plot import fig5, summary
from randstruct.paper.sentiment.train import SentimentConfig, train
from randstruct.paper.sentiment.truncation import analyze, rank_grid


@dataclass
class DemoResult:
    run_dir: Path
    data: xr.Dataset
    figures: list[Path]
    wall_time_s: float


def run_demo(out: str | Path, n: int = 128, epochs: int = 30, lr0: float = 0.01, rank_step: int = 1,
             seed: int = 0, device: str = "cpu", overwrite: bool = False, progress: bool = True,
             corpus_size: tuple[int, int] = (3000, 500)) -> DemoResult:
    """Write ``out/data`` (corpus), ``out/run`` (run directory), ``out/fig5_demo.{png,pdf}``."""
    start = time.perf_counter()
    out = Path(out)
    config = SentimentConfig(n=n, epochs=epochs, lr0=lr0, seed=seed, device=device)
    rank_grid(n, rank_step)
    if out.exists() and not out.is_dir():
        raise store.RunError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise store.RunError(f"output folder {out} already exists; pass --overwrite to replace it")
        shutil.rmtree(out)
    sst_dir, glove = write_corpus(out / "data", n_train=corpus_size[0], n_dev=corpus_size[1],
                                  n_test=corpus_size[1], seed=seed)
    run_dir = train(sst_dir, glove, out / "run", config, progress=progress)
    ds = analyze(run_dir, rank_step=rank_step, device=device, progress=progress)
    s = summary(ds)
    title = (f"synthetic SST-style demo: N = {n}, {epochs} epochs, final val. acc. {s['final_val_acc']:.2f}")
    figures = fig5(ds, out / "fig5_demo", title=title)
    wall = time.perf_counter() - start
    store.write_json_atomic(out / "demo.json", {**s, "wall_time_s": round(wall, 1), "N": n, "epochs": epochs,
                                                "lr0": lr0, "rank_step": rank_step, "seed": seed})
    return DemoResult(run_dir, ds, figures, wall)
