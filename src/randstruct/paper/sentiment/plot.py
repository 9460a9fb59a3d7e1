"""Fig 5 style figure of an analysed sentiment run (SPEC 8.4).

Uses matplotlib's object API (``Figure``, rendered by Agg for PNG and PDF) so that plotting
never switches the global backend of a caller's session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

DW_COLOR, W_COLOR, W0_COLOR = "tab:red", "black", "0.55"


def recovery_rank(acc: np.ndarray, ranks: np.ndarray, target: float, tol: float = 0.02) -> int | None:
    """Smallest rank from which on the truncated accuracy stays within ``tol`` of ``target``."""
    ok = np.asarray(acc) >= target - tol
    if not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    return int(ranks[0] if bad.size == 0 else ranks[bad[-1] + 1])


def summary(ds: xr.Dataset, tol: float = 0.02) -> dict:
    """Final validation accuracy and the ranks at which dW and W truncation recover it."""
    ranks = ds["rank"].values
    final = float(ds.val_acc.values[-1])
    return {"final_val_acc": final, "tol": tol,
            "rank_dw": recovery_rank(ds.trunc_dw_acc.values, ranks, final, tol),
            "rank_w": recovery_rank(ds.trunc_w_acc.values, ranks, final, tol),
            "acc_dw_rank0": float(ds.trunc_dw_acc.values[0])}


def fig5(ds: xr.Dataset, stem: str | Path, title: str | None = None) -> list[Path]:
    """(a) SVs of W0, W, dW of W_hh_l1; (b) validation accuracy vs kept rank. Writes PNG and PDF."""
    from matplotlib.figure import Figure

    n = int(ds.attrs["N"])
    sv = np.arange(1, n + 1)
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    ax_sv, ax_acc = fig.subplots(1, 2)
    ax_sv.plot(sv, ds.sv_initial_w_hh_l1.values, "--", color=W0_COLOR, label="$W_0$")
    ax_sv.plot(sv, ds.sv_final_w_hh_l1.values, color=W_COLOR, label="$W$")
    ax_sv.plot(sv, ds.sv_delta_w_hh_l1.values, color=DW_COLOR, label=r"$\Delta W$")
    ax_sv.set(xlabel="rank", ylabel="singular value", xticks=[0, n // 2, n], xlim=(0, n + 1),
              title="(a) SVs of layer-2 recurrent $W^{(2)}$")
    ax_sv.set_ylim(bottom=0)
    ax_sv.legend(frameon=False)

    ranks = ds["rank"].values
    final = float(ds.val_acc.values[-1])
    dw, w = ds.trunc_dw_acc.values, ds.trunc_w_acc.values
    ax_acc.plot(ranks, dw, color=DW_COLOR, label=r"truncate $\Delta W$")
    ax_acc.plot(ranks, w, color=W_COLOR, label="truncate $W$")
    ax_acc.axhline(final, ls="--", color=W0_COLOR, label=f"final ({final:.2f})")
    low = min(0.45, float(np.nanmin([dw.min(), w.min()])) - 0.02)
    high = max(0.89, float(np.nanmax([dw.max(), w.max(), final])) + 0.02)
    ax_acc.set(xlabel="rank $r$ kept", ylabel="validation accuracy", xticks=[0, n // 2, n], xlim=(0, n),
               ylim=(low, high), yticks=[0.5, 0.8] if high < 0.95 else [0.5, 0.75, 1.0],
               title="(b) accuracy after truncation")
    ax_acc.legend(frameon=False, loc="lower right")
    if title:
        fig.suptitle(title)
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150)
    return paths


def figS6(ds: xr.Dataset, stem: str | Path, title: str | None = None) -> list[Path]:
    """(a) loss and (b) accuracy over epochs, train and validation; (c-f) SVs of W0, W and dW of
    U1 = W_ih_l0, W1 = W_hh_l0, U2 = W_ih_l1, W2 = W_hh_l1, y-limits shared within a layer's row."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 8.4), layout="constrained")
    axes = fig.subplots(3, 2)
    epoch = ds["epoch"].values
    for ax, what, label in ((axes[0, 0], "loss", "(a) loss"), (axes[0, 1], "acc", "(b) accuracy")):
        ax.plot(epoch, ds[f"train_{what}"].values, color=W0_COLOR, label="train")
        ax.plot(epoch, ds[f"val_{what}"].values, color=W_COLOR, label="validation")
        ax.set(xlabel="epoch", ylabel=label.split(" ")[1], title=label)
        ax.legend(frameon=False)
    high = max(0.89, float(ds.train_acc.max()) + 0.02)
    axes[0, 1].set_ylim(0.45, high)
    panels = (("w_ih_l0", "(c) $U^{(1)}$"), ("w_hh_l0", "(d) $W^{(1)}$"),
              ("w_ih_l1", "(e) $U^{(2)}$"), ("w_hh_l1", "(f) $W^{(2)}$"))
    for ax, (name, label) in zip(axes[1:].ravel(), panels):
        for stage, style, color, text in (("initial", "--", W0_COLOR, "$W_0$"), ("final", "-", W_COLOR, "$W$"),
                                          ("delta", "-", DW_COLOR, r"$\Delta W$")):
            values = ds[f"sv_{stage}_{name}"].values
            ax.plot(np.arange(1, len(values) + 1), values, style, color=color, label=text)
        ax.set(xlabel="rank", ylabel="singular value", title=label, xlim=(0, len(values) + 1))
    for row in axes[1:]:
        top = max(ax.get_ylim()[1] for ax in row)
        for ax in row:
            ax.set_ylim(0, top)
    axes[1, 0].legend(frameon=False)
    if title:
        fig.suptitle(title)
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150)
    return paths
