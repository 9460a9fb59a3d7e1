"""``randstruct plot``: the figure of one run (training curves, SVs of dW, truncation, shuffles per g)."""

from __future__ import annotations

import argparse
from pathlib import Path

from randstruct.cli.common import UsageError, check_writable


def register(sub) -> None:
    p = sub.add_parser("plot", help="figure of a run: loss/accuracy curves, SVs of dW, truncation and shuffles per g",
                       description="Draw one figure of a run per g (mean ± sd over seeds); the truncation and "
                                   "shuffle panels need 'randstruct analyze' first.")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", default=None, help="image file (.png, .pdf, .svg); default RUN/figure.png")
    p.add_argument("--smooth", type=int, default=20, help="running mean of the training curves in epochs; default 20")
    p.set_defaults(handler=cmd_plot)


FORMATS = (".png", ".pdf", ".svg")


def cmd_plot(a: argparse.Namespace) -> int:
    from randstruct.analysis.plots import save_run_figure
    from randstruct.analysis.regime_plots import has_regimes, save_regime_figure
    from randstruct.runs import load

    out = Path(a.out) if a.out else Path(a.run) / "figure.png"
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out must end in one of {', '.join(FORMATS)}, got {str(out)!r}")
    if a.smooth < 1:
        raise UsageError(f"--smooth must be >= 1, got {a.smooth}")
    run = load(a.run)
    check_writable(out, "--out")
    print(f"figure -> {save_run_figure(run, out, a.smooth)}")
    if has_regimes(run.data):
        regimes = out.with_name(out.stem + "-regimes" + out.suffix)
        save_regime_figure(run, regimes)
        print(f"regimes figure -> {regimes}")
    return 0
