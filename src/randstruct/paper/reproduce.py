"""One command from nothing to every figure and a checked claims report.

``reproduce(figures, scale, out)`` trains (or reuses, or resumes) the experiments the figures
need under ``OUT/runs``, analyses them, draws ``OUT/figures/<fig>.{png,pdf,txt}`` and writes
``OUT/claims.md`` and ``OUT/claims.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import xarray as xr

from randstruct import analysis, store
from randstruct.errors import UserInputError
from randstruct.paper import claims, figures
from randstruct.paper.experiments import experiment_specs, run_experiment
from randstruct.executors import InProcess
from randstruct.runs import TrainJob, load
from randstruct.paper.sentiment.demo import run_demo
from randstruct.paper.sentiment.train import SentimentConfig, train
from randstruct.paper.sentiment.truncation import analyze as analyze_sentiment

FIGURES = {  # figure -> (experiment, drawing function)
    "fig1": ("nonlinear", figures.fig1),
    "fig2": ("nonlinear", figures.fig2),
    "figS2": ("nonlinear", figures.figS2),
    "figS1": ("size", figures.figS1),
    "fig3": ("linear", figures.fig3),
    "fig4": ("linear", figures.fig4),
    "figS3": ("linear", figures.figS3),
    "figS4": ("diverge", figures.figS4),
    "figS5": ("cosine", figures.figS5),
    "fig5": ("sentiment", figures.fig5),
    "figS6": ("sentiment", figures.figS6),
}
ANALYSED = {"nonlinear": {}, "size": {}, "linear": {"ranks": 5, "shuffles": 10, "eval_trials": 1}}
PAPER_SAMPLES = {"fig2": 5, "figS1": 3}  # min_num_samples_for_avg of the published figures
SMOKE_SAMPLES = 2  # smoke runs have 2-3 seeds; Adam's loss spikes can leave one short at the end


def min_samples(figure: str, scale: str, runs: dict) -> int:
    """Qualifying networks a g point needs to be drawn (and to count in the claims): the paper's
    number at paper scale (at most the seeds there are), 2 at smoke scale."""
    seeds = min(len(r.spec.seeds) for r in runs.values())
    return min(PAPER_SAMPLES[figure], seeds) if scale == "paper" else min(SMOKE_SAMPLES, seeds)


def resolve(names: list[str]) -> list[str]:
    """Figure names in canonical order; 'all' means every figure."""
    return figures.common.resolve(names, FIGURES)


@dataclass
class SentimentRun:
    data: xr.Dataset
    source: str


def sentiment_run(scale: str, out: Path, device: str, sst: str | None, glove: str | None,
                  progress: bool) -> SentimentRun:
    """Smoke: the bundled synthetic demo. Paper: SPEC 8 on the real SST trees and GloVe vectors."""
    root = out / "sentiment"
    if scale == "smoke" and sst is None:
        if not (root / "demo.json").is_file():
            run_demo(root, device=device, overwrite=root.exists(), progress=progress)
        return SentimentRun(store.open_results(root / "run"), "synthetic demo corpus")
    if sst is None or glove is None:
        raise UserInputError("fig5/figS6 at the paper scale need the real data: pass --sst DIR (trainDevTestTrees_PTB "
                             "from the Stanford Sentiment Treebank) and --glove FILE (glove.6B.100d.txt)")
    run_dir = root / "sst"
    if not store.is_complete(run_dir) or "trunc_dw_acc" not in store.open_results(run_dir):
        if not store.is_complete(run_dir):
            resume = (run_dir / store.CONFIG).is_file()
            train(sst, glove, run_dir, SentimentConfig(device=device), resume=resume, progress=progress)
        analyze_sentiment(run_dir, device=device, progress=progress)
    return SentimentRun(store.open_results(run_dir), "Stanford Sentiment Treebank, GloVe 6B-100d")


def _claims_for(experiment: str, scale: str, runs: dict) -> list[claims.Claim]:
    if experiment == "sentiment":
        return claims.sentiment_claims(runs["sentiment"].data)
    if experiment == "nonlinear":
        return claims.nonlinear_claims(runs, min_samples("fig2", scale, runs))
    if experiment == "size":
        return claims.size_claims(runs, min_samples("figS1", scale, runs))
    return {"linear": claims.linear_claims, "diverge": claims.diverge_claims,
            "cosine": claims.cosine_claims}[experiment](runs)


def train_on_cluster(experiments: list[str], scale: str, out: Path, device: str, progress: bool,
                     log: Callable[[str], None], executor) -> None:
    """Every run the figures need to the executor at once (a Dask one sends every shard of every
    run), then every analysis; the figure loop afterwards finds them all stored."""
    from randstruct.paper.experiments import plan_experiment

    names = [n for n in experiments if n != "sentiment"]
    done, todo = {}, []
    for name in names:
        reused, pending = plan_experiment(name, scale, out / "runs", device, log)
        done[name] = reused
        todo += [(name, label, spec, path, resume) for label, spec, path, resume in pending]
    if todo:
        jobs = [TrainJob(spec, path, resume=resume, label=f"{n}/{label}") for n, label, spec, path, resume in todo]
        for (name, label, *_), run in zip(todo, executor.train(jobs, progress=progress)):
            done[name][label] = run
    items = [(run, analysis.requests(["connectivity"], {"connectivity": ANALYSED[name]}))
             for name in names if name in ANALYSED for run in done[name].values()]
    analysis.run_analyses_many(items, progress=progress, device=device, executor=executor)


def reproduce(names: list[str], scale: str, out: str | Path, device: str = "cpu", progress: bool = True,
              log: Callable[[str], None] = print, sst: str | None = None, glove: str | None = None,
              executor=None) -> dict:
    """Run everything the figures need; returns {'figures': paths, 'claims': [...], 'timings': {...}}
    ('claims': those checked by this call; OUT/claims.md also keeps those of figures not rerun).

    With an ``executor`` (randstruct.executors) all training and analysis goes to it first, every
    run at once (a Dask executor: every shard; the sentiment LSTM stays in this process);
    ``timings`` then cover drawing only. Without, each experiment is trained here in turn.
    """
    wanted = resolve(names)
    experiments = list(dict.fromkeys(FIGURES[f][0] for f in wanted))
    for name in experiments:  # validate scale, device and data before any work
        if name != "sentiment":
            experiment_specs(name, scale, device)
        elif scale == "paper" and (sst is None or glove is None):
            sentiment_run(scale, Path(out), device, sst, glove, progress)
    out = Path(out)
    if executor is not None and not isinstance(executor, InProcess):
        train_on_cluster(experiments, scale, out, device, progress, log, executor)
    timings, paths, all_claims = {}, {}, []
    for name in experiments:
        start = time.perf_counter()
        if name == "sentiment":
            runs = {"sentiment": sentiment_run(scale, out / "runs", device, sst, glove, progress)}
        else:
            runs = run_experiment(name, scale, out / "runs", device, progress=progress, log=log)
        if name in ANALYSED:
            for label, run in runs.items():
                log(f"{name}/{label}: analysing")
                analysis.analyze_run(run, progress=progress, device=device, **ANALYSED[name])
            runs = {label: load(run.path) for label, run in runs.items()}  # now with the analysis
        for fig_name in (f for f in wanted if FIGURES[f][0] == name):
            draw = FIGURES[fig_name][1]
            options = {"min_samples": min_samples(fig_name, scale, runs)} if fig_name in PAPER_SAMPLES else {}
            fig, caption = draw(runs, **options)
            figures.check_letters(fig, caption, fig_name)
            paths[fig_name] = figures.save(fig, caption, out / "figures", fig_name)
            log(f"{fig_name}: {paths[fig_name][0]}")
        all_claims += _claims_for(name, scale, runs)
        timings[name] = time.perf_counter() - start
        log(f"{name}: done in {timings[name]:.0f} s")
    report = claims.merge_claims(all_claims, out)  # the figures not rerun keep their claims and dates
    md, _ = claims.write_report(report, out, title=f"Claims ({scale} scale)")
    log(f"claims: {claims.summary_line(report)} -> {md}")
    checked = {c.id for c in all_claims}
    return {"figures": paths, "claims": [c for c in report if c.id in checked], "timings": timings}
