"""One figure of any run, per g (mean over seeds, shaded +- sd): training loss and decision
accuracy, singular values of the final dW, rank truncation of dW and the W0 shuffles, in loss and,
where the task has labels, in accuracy. Drawn by ``randstruct plot``.

Panels that need ``randstruct analyze`` say so instead of being left out, so the layout does not
depend on what was computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from randstruct.analysis.grouping import mean_sd_by_g

N_SV = 10


def _band(ax, x, values, g, colors, label_fmt="g = {:g}") -> None:
    """Mean over the networks of each g, shaded +- sd (diverged networks' NaN ignored)."""
    gs, mean, sd, _ = mean_sd_by_g(g, values)
    for i, gv in enumerate(gs):
        ax.plot(x, mean[i], color=colors[i], label=label_fmt.format(gv))
        ax.fill_between(x, mean[i] - sd[i], mean[i] + sd[i], color=colors[i], alpha=0.2, lw=0)


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Running mean over ``width`` epochs (one batch of a few dozen trials is noisy)."""
    if width <= 1 or values.shape[-1] < width:
        return values
    kernel = np.ones(width) / width
    return np.stack([np.convolve(row, kernel, mode="valid") for row in values])


def _missing(ax, title: str, what: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def run_figure(ds: xr.Dataset, title: str = "", smooth: int = 20):
    """The figure (a matplotlib Figure) of a run's results Dataset."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    g = ds.g.values
    gs = mean_sd_by_g(g, g)[0]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(gs)))
    labels = "accuracy" in ds
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), constrained_layout=True)
    (a_loss, a_acc, a_sv), (a_trunc, a_trunc_acc, a_shuf) = axes
    loss = _smooth(ds.loss.values.astype(float), smooth)
    epochs = np.arange(loss.shape[1]) + (ds.sizes["epoch"] - loss.shape[1]) // 2
    _band(a_loss, epochs, loss, g, colors)
    a_loss.set(yscale="log", xlabel="epoch", ylabel=f"training loss ({ds.attrs.get('loss_kind', 'mse')})",
               title=f"training loss (running mean over {smooth} epochs)" if smooth > 1 else "training loss")
    a_loss.legend(fontsize=8)
    if labels:
        acc = _smooth(ds.accuracy.values.astype(float), smooth)
        _band(a_acc, epochs, acc, g, colors)
        a_acc.set(xlabel="epoch", ylabel="decision accuracy", ylim=(0, 1.02), title="training accuracy")
    else:
        _missing(a_acc, "training accuracy", "the task has no labels")
    dw = ds.w.values.astype(np.float64) - ds.w0.values.astype(np.float64)
    sv = np.linalg.svd(dw, compute_uv=False)[:, :N_SV]
    _band(a_sv, np.arange(1, sv.shape[1] + 1), sv, g, colors)
    a_sv.set(xlabel="index k", ylabel="singular value of dW", yscale="log", title="SVs of the final dW")
    if "trunc_loss_dw" in ds:
        ranks = ds["rank"].values
        _band(a_trunc, ranks, ds.trunc_loss_dw.values, g, colors)
        a_trunc.set(xlabel="rank r of dW kept", ylabel="evaluation loss", yscale="log", title="truncation of dW")
        if "trunc_accuracy_dw" in ds:
            _band(a_trunc_acc, ranks, ds.trunc_accuracy_dw.values, g, colors)
            a_trunc_acc.set(xlabel="rank r of dW kept", ylabel="decision accuracy", ylim=(0, 1.02),
                            title="truncation of dW, accuracy")
        else:
            _missing(a_trunc_acc, "truncation, accuracy", "the task has no labels")
        _shuffle_panel(a_shuf, ds, gs, colors, labels)
    else:
        for ax, name in ((a_trunc, "truncation of dW"), (a_trunc_acc, "truncation, accuracy"),
                         (a_shuf, "W0 shuffles")):
            _missing(ax, name, "run 'randstruct analyze' first")
    if title:
        fig.suptitle(title)
    return fig


def _shuffle_panel(ax, ds, gs, colors, labels: bool) -> None:
    """Final network vs W0 shuffled (entries, rows/columns, redrawn) + the trained dW, per g."""
    metric = "accuracy" if labels else "loss"
    names = [(f"final_eval_{metric}", "trained"), (f"shuffle_{metric}", "shuffled W0"),
             (f"shuffle_{metric}_rowcol", "rows/cols"), (f"shuffle_{metric}_resample", "redrawn W0")]
    width = 0.8 / len(names)
    g = ds.g.values
    for j, (name, label) in enumerate(names):
        var = ds[name].values
        values = var if var.ndim == 1 else var.mean(axis=1)
        _, mean, sd, _ = mean_sd_by_g(g, values)
        ax.bar(np.arange(len(gs)) + (j - (len(names) - 1) / 2) * width, mean, width, yerr=sd,
               label=label, color=(0.2 + 0.2 * j,) * 3)
    ax.set_xticks(np.arange(len(gs)), [f"g = {x:g}" for x in gs])
    ax.set(ylabel=f"evaluation {metric}", title=f"W0 shuffles + trained dW ({metric})")
    if labels:
        ax.set_ylim(0, 1.02)
    else:
        ax.set_yscale("log")
    ax.legend(fontsize=8)


def save_run_figure(run, path: str | Path, smooth: int = 20) -> Path:
    """Draw :func:`run_figure` of a loaded run and write it (format from the suffix)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    spec = run.spec
    fig = run_figure(run.data, f"{spec.task}, N = {spec.n}, {run.data.sizes['net']} networks", smooth)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
