"""``randstruct reproduce --paper oblique2024``: the 20 runs of the "neuro" sweep trained (or
reused, or resumed) under ``OUT/runs/oblique2024``, analysed (alignment, similarity, noise), the
figures drawn as ``OUT/figures/oblique2024-<fig>.{png,pdf,txt}`` and the claims checked into
``OUT/claims.md`` beside the 2020 paper's (ids ``O24.*``)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from randstruct import analysis
from randstruct.engine.device import check_device
from randstruct.paper import claims as claims_report
from randstruct.paper.experiments import plan_runs, train_planned
from randstruct.paper.figures.common import check_letters, save
from randstruct.paper.figures.common import resolve as resolve_figures
from randstruct.paper.oblique2024 import claims, figures
from randstruct.paper.oblique2024.experiments import neuro
from randstruct.paper.oblique2024.results import table
from randstruct.runs import Run, load

PAPER = "oblique2024"
FIGURES = {"fig3": figures.fig3, "fig4": figures.fig4, "fig5": figures.fig5, "fig6": figures.fig6}
GRACE = 10.0  # the authors' t_pc_min
PULSE_DELAY = 5.0  # their dt_pert_loss: the response counted from 5 tau after the perturbation


def resolve(names: list[str]) -> list[str]:
    """Figure names in the paper's order; 'all' (or none) means every one."""
    return resolve_figures(names, FIGURES, PAPER)


def analysis_params(n: int) -> dict:
    """The measures of the paper, on the state, after its grace time, without noise (the noise
    analysis with it): pulses of norm sqrt(N) (one unit of state per neuron), 32 trials."""
    return {"alignment": {"grace": GRACE, "eval_trials": 32, "pulse_size": math.sqrt(n), "pulse_delay": PULSE_DELAY,
                          "n_random": 10, "pulse_trials": 16},
            "similarity": {"grace": GRACE, "trials": 32},
            "noise": {"grace": GRACE, "conditions": 4, "repeats": 16}}


ANALYSES = ("alignment", "similarity", "noise")


def train_and_analyse(scale: str, out: str | Path, device: str = "cpu", progress: bool = True,
                      log: Callable[[str], None] = print, executor=None) -> dict[str, Run]:
    """Every run of the sweep under ``out/runs/oblique2024``, trained or reused, with its analyses
    stored; {label: Run} (``results.table`` turns them into one labelled Dataset)."""
    specs = neuro(scale, device)
    out = Path(out)
    runs, todo = plan_runs(specs, out / "runs" / PAPER, f"the {PAPER} sweep at scale {scale!r}", log)
    runs.update(train_planned(todo, PAPER, executor, progress, log))
    items = [(runs[label], analysis.requests(ANALYSES, analysis_params(spec.n))) for label, spec in specs.items()]
    analysis.run_analyses_many(items, progress=progress, device=device, executor=executor)
    return {label: load(runs[label].path) for label in specs}


def reproduce(names: list[str], scale: str, out: str | Path, device: str = "cpu", progress: bool = True,
              log: Callable[[str], None] = print, executor=None) -> dict:
    """Train, analyse, draw and check; returns {'figures': paths, 'claims': [...], 'timings': {...}}
    ('claims': those checked by this call; OUT/claims.md keeps the others)."""
    wanted = resolve(names)
    neuro(scale, device)  # validate the scale before any work
    check_device(device)
    out = Path(out)
    start = time.perf_counter()
    runs = train_and_analyse(scale, out, device, progress, log, executor)
    t = table(runs)
    timings = {"train and analyse": time.perf_counter() - start}
    paths = {}
    for name in wanted:
        start = time.perf_counter()
        fig, caption = FIGURES[name](runs, t)
        check_letters(fig, caption, name)
        paths[name] = save(fig, caption, out / "figures", f"{PAPER}-{name}")
        timings[name] = time.perf_counter() - start
        log(f"{PAPER} {name}: {paths[name][0]}")
    checked = claims.oblique_claims(t, scale)
    report = claims_report.merge_claims(checked, out)
    md, _ = claims_report.write_report(report, out, title=f"Claims ({scale} scale)")
    log(f"claims: {claims_report.summary_line(report)} -> {md}")
    ids = {c.id for c in checked}
    return {"figures": paths, "claims": [c for c in report if c.id in ids], "timings": timings}
