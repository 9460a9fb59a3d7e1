"""One command from nothing to every figure and a checked claims report.

``reproduce(figures, scale, out)`` trains (or reuses, or resumes) the experiments the figures
need under ``OUT/runs``, analyses them, draws ``OUT/figures/<fig>.{png,pdf,txt}`` and writes
``OUT/claims.md`` and ``OUT/claims.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from . import analysis, claims, figures
from .experiments import experiment_specs, run_experiment

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
}
ANALYSED = {"nonlinear": {}, "size": {}, "linear": {"ranks": 5, "shuffles": 10, "eval_trials": 1}}
PAPER_SAMPLES = {"fig2": 5, "figS1": 3}  # min_num_samples_for_avg of the published figures


def resolve(names: list[str]) -> list[str]:
    """Figure names in canonical order; 'all' means every figure."""
    if not names or "all" in names:
        return list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure {unknown[0]!r}; allowed: {', '.join(FIGURES)}, all")
    return [f for f in FIGURES if f in names]


def _claims_for(experiment: str, runs: dict) -> list[claims.Claim]:
    seeds = min(len(r.spec.seeds) for r in runs.values())
    if experiment == "nonlinear":
        return claims.nonlinear_claims(runs, min(PAPER_SAMPLES["fig2"], seeds))
    if experiment == "size":
        return claims.size_claims(runs, min(PAPER_SAMPLES["figS1"], seeds))
    return {"linear": claims.linear_claims, "diverge": claims.diverge_claims,
            "cosine": claims.cosine_claims}[experiment](runs)


def reproduce(names: list[str], scale: str, out: str | Path, device: str = "cpu", progress: bool = True,
              log: Callable[[str], None] = print) -> dict:
    """Run everything the figures need; returns {'figures': paths, 'claims': [...], 'timings': {...}}."""
    wanted = resolve(names)
    experiments = list(dict.fromkeys(FIGURES[f][0] for f in wanted))
    for name in experiments:  # validate scale and device before any work
        experiment_specs(name, scale, device)
    out = Path(out)
    timings, paths, all_claims = {}, {}, []
    for name in experiments:
        start = time.perf_counter()
        runs = run_experiment(name, scale, out / "runs", device, progress=progress, log=log)
        if name in ANALYSED:
            for label, run in runs.items():
                log(f"{name}/{label}: analysing")
                analysis.analyze_run(run, progress=progress, device=device, **ANALYSED[name])
            runs = run_experiment(name, scale, out / "runs", device, progress=False, log=lambda _: None)
        for fig_name in (f for f in wanted if FIGURES[f][0] == name):
            draw = FIGURES[fig_name][1]
            fig, caption = draw(runs)
            paths[fig_name] = figures.save(fig, caption, out / "figures", fig_name)
            log(f"{fig_name}: {paths[fig_name][0]}")
        all_claims += _claims_for(name, runs)
        timings[name] = time.perf_counter() - start
        log(f"{name}: done in {timings[name]:.0f} s")
    md, _ = claims.write_report(all_claims, out, title=f"Claims ({scale} scale)")
    log(f"claims: {sum(c.passed for c in all_claims)}/{len(all_claims)} hold -> {md}")
    return {"figures": paths, "claims": all_claims, "timings": timings}
