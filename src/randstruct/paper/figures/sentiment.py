"""E6, the sentiment LSTM: Figs 5 and S6."""

from __future__ import annotations

from randstruct.paper.figures.common import letter, plt

SENTIMENT_BLOCKS = (("w_ih_l0", "U(1) = W_ih layer 1"), ("w_hh_l0", "W(1) = W_hh layer 1"),
                    ("w_ih_l1", "U(2) = W_ih layer 2"), ("w_hh_l1", "W(2) = W_hh layer 2"))
TRUNC_COLORS = {"dw": "#d62728", "w": "black", "w0": "0.55"}


def _sv_triplet(ax, ds, block: str):
    dim = "sv_in" if block == "w_ih_l0" else "sv"
    k = ds[dim].values
    ax.plot(k, ds[f"sv_initial_{block}"].values, "--", color=TRUNC_COLORS["w0"], label="W0")
    ax.plot(k, ds[f"sv_final_{block}"].values, color=TRUNC_COLORS["w"], label="W")
    ax.plot(k, ds[f"sv_delta_{block}"].values, color=TRUNC_COLORS["dw"], label="ΔW")
    ax.set(xlabel="rank", ylabel="singular value")
    ax.set_ylim(bottom=0)


def fig5(runs: dict):
    ds = runs["sentiment"].data
    n = int(ds.attrs["N"])
    fig, (ax_sv, ax_acc) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    _sv_triplet(ax_sv, ds, "w_hh_l1")
    ax_sv.set_xticks([0, n // 2, n])
    ax_sv.legend(frameon=False)
    ax_sv.set_title("singular values of W(2)")
    ranks, final = ds["rank"].values, float(ds.val_acc.values[-1])
    ax_acc.plot(ranks, ds.trunc_dw_acc.values, color=TRUNC_COLORS["dw"], label="truncate ΔW")
    ax_acc.plot(ranks, ds.trunc_w_acc.values, color=TRUNC_COLORS["w"], label="truncate W")
    ax_acc.axhline(final, ls="--", color="0.55", label=f"final ({final:.2f})")
    ax_acc.set(xlabel="rank r kept", ylabel="validation accuracy", xticks=[0, n // 2, n], ylim=(0.45, 1.0))
    ax_acc.legend(frameon=False, loc="lower right")
    letter((ax_sv, ax_acc))
    caption = f"""
Fig 5. Two-layer LSTM (N = {n}) on binary sentiment ({runs['sentiment'].source}). (a) Singular values of the
layer-2 recurrent weights (four gates stacked, 4N x N) for W0 (dashed), the trained W and ΔW = W − W0.
(b) Validation accuracy when all three 4N x N blocks are truncated to rank r: W0 + rank-r ΔW (red) or
rank-r W (black); dashed: final accuracy.
"""
    return fig, caption


def figS6(runs: dict):
    ds = runs["sentiment"].data
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), constrained_layout=True)
    epochs = ds.epoch.values
    for split, ls in (("train", "-"), ("val", "--")):
        axes[0, 0].plot(epochs, ds[f"{split}_loss"].values, ls=ls, color="k", label=split)
        axes[1, 0].plot(epochs, ds[f"{split}_acc"].values, ls=ls, color="k", label=split)
    axes[0, 0].set(xlabel="epoch", ylabel="loss")
    axes[1, 0].set(xlabel="epoch", ylabel="accuracy", ylim=(0.45, 1.0))
    axes[0, 0].legend(frameon=False)
    for ax, (block, title) in zip(axes[:, 1:].T.ravel(), SENTIMENT_BLOCKS):
        _sv_triplet(ax, ds, block)
        ax.set_title(title)
    axes[0, 1].legend(frameon=False)
    letter(axes[:, 0])
    letter(axes[:, 1:].T.ravel(), "c")  # in the order of SENTIMENT_BLOCKS
    caption = f"""
Fig S6. Training of the LSTM of Fig 5 ({runs['sentiment'].source}). (a) Training (solid) and validation (dashed)
loss and (b) accuracy over all epochs (the published panel showed 100 epochs). (c-f) Singular values of
the input and recurrent weights of both layers for W0 (dashed), W and ΔW.
"""
    return fig, caption
