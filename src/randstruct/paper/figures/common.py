"""What every figure shares: the style, saving (PNG, PDF and the caption), bands over seeds and
picking networks by g."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from randstruct.errors import UserInputError  # noqa: E402
from randstruct.runs import Run  # noqa: E402

THEORY_STYLE = dict(color="0.3", ls="--", lw=1.2)
plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7,
                     "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 150})


LETTER = "panel-letter"  # the gid of a drawn panel letter


def letter(axes, first: str = "a") -> None:
    """Panel letters on ``axes`` in order from ``first``, bold above each top-left corner."""
    for i, ax in enumerate(np.ravel(axes)):
        ax.text(-0.02, 1.02, chr(ord(first) + i), transform=ax.transAxes, fontweight="bold", fontsize=10,
                ha="right", va="bottom", gid=LETTER)


def caption_letters(caption: str) -> set[str]:
    """The panel letters a caption names: (a), (b, c), (c-f), (d-f, j)."""
    out = set()
    for group in re.findall(r"\(([a-l](?:\s*[-,]\s*[a-l])*)\)", caption):
        for part in group.split(","):
            lo, _, hi = part.strip().partition("-")
            out |= {chr(c) for c in range(ord(lo), ord(hi or lo) + 1)}
    return out


def drawn_letters(fig) -> set[str]:
    return {t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == LETTER}


def check_letters(fig, caption: str, name: str) -> None:
    """The panel letters a whole figure's caption names are the ones it draws (a caption that
    says "(c)" has a (c) to point at); a figure drawn from fewer runs letters only its panels."""
    named, drawn = caption_letters(caption), drawn_letters(fig)
    if named != drawn:
        raise RuntimeError(f"{name}: the caption names panels {sorted(named)} but the figure letters {sorted(drawn)}")


def resolve(names: list[str], known, of: str = "") -> list[str]:
    """Figure ``names`` in the order of ``known``; 'all' (or none) means every one; an unknown
    name is a one-line error (``of``: whose figures, for its message)."""
    if not names or "all" in names:
        return list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserInputError(f"unknown figure {unknown[0]!r}{f' of {of}' if of else ''}; "
                             f"allowed: {', '.join(known)}, all")
    return [f for f in known if f in names]


def save(fig, caption: str, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``name``.png, .pdf and the caption as .txt; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf", out / f"{name}.txt"]
    fig.savefig(paths[0], bbox_inches="tight", dpi=200)
    fig.savefig(paths[1], bbox_inches="tight")
    paths[2].write_text(caption.strip() + "\n")
    plt.close(fig)
    return paths


def band(ax, x, samples, color, label=None, ls="-", alpha=0.25):
    """Mean line with a +- population-sd band over the first axis of ``samples``."""
    samples = np.asarray(samples, dtype=float)
    mean, sd = np.nanmean(samples, axis=0), np.nanstd(samples, axis=0)
    ax.plot(x, mean, color=color, ls=ls, label=label, lw=1.4)
    ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=alpha, lw=0)


def select(run: Run, g: float):
    """Boolean mask of the networks with gain ``g``."""
    return np.isclose(run.data.g.values, g)


def gain_color(g: float, g_max: float = 2.1):
    return plt.cm.viridis(min(g / g_max, 1.0) * 0.9)


def member_near(run: Run, g: float, sample: int) -> int:
    """Index of the network with the gain closest to ``g`` and the ``sample``-th seed (clipped)."""
    ds = run.data
    g_near = ds.g.values[np.argmin(np.abs(ds.g.values - g))]
    idx = np.flatnonzero(np.isclose(ds.g.values, g_near))
    return int(idx[min(sample, idx.size - 1)])
