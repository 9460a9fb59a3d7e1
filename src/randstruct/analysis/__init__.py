"""Connectivity analyses of trained networks (SPEC 3.2, 10.6-10.8, 11.6).

Rank truncation, W0 shuffles, spectra, functional rank and convergence epoch. Every loss is an
ensemble evaluation: the (network, rank) and (network, shuffle) pairs become the members of one
:class:`~randstruct.engine.model.Ensemble` -- the network's final input/output weights, bias and initial
state with a modified recurrent matrix -- evaluated in memory-bounded chunks through
:meth:`Ensemble.loss`. Recurrent matrices are built in float64 from one SVD per network and
rounded once to the run's precision, so a full-rank truncation reproduces W exactly.

Evaluation sets (``eval_policy``):

- ``"fixed"`` (default): one set of ``eval_trials`` trials per network, drawn from
  ``member_rng(seed, g, "eval")`` and shared by every evaluation of that network, so truncation
  curves carry no batch noise. A documented deviation from the paper (SPEC 10.8).
- ``"fresh"``: the paper's policy, a new set for every evaluation, from
  ``member_rng(seed, g, "eval", code, index)`` with ``code`` from ``EVAL_CODES`` and ``index`` the
  rank or shuffle number. Keys never end in a bare 0 after the stream name: SeedSequence pads
  short entropy with zeros, so ``("eval", 0)`` would repeat the fixed set.

Shuffle k of variant v draws from ``member_rng(seed, g, "shuffle", SHUFFLE_CODES[v], k)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import xarray as xr

from randstruct import store
from randstruct.engine.model import Ensemble
from randstruct.runs import Run, load
from randstruct.engine.seeding import member_rng
from randstruct.engine.spectra import leading_eigenvalues
from randstruct.tasks import Batch, Task

EVAL_POLICIES = ("fixed", "fresh")
EVAL_CODES = {"final": 1, "trunc_dw": 2, "trunc_w": 3, "full": 4, "rowcol": 5, "resample": 6}
SHUFFLE_VARIANTS = ("full", "rowcol", "resample")
SHUFFLE_CODES = {"full": 1, "rowcol": 2, "resample": 3}
SHUFFLE_NAMES = {"full": "shuffle_loss", "rowcol": "shuffle_loss_rowcol", "resample": "shuffle_loss_resample"}
DEFAULT_CHUNK_BYTES = 1 << 28

DESCRIPTIONS = {
    "final_eval_loss": "loss of the trained network (final W, W_in, W_out) on the evaluation set",
    "trunc_loss_dw": "loss of W0 + best rank-r approximation of the final dW (SVD), with the final "
                     "W_in, W_out, b, x0; rank 0 is W0 with the trained vectors",
    "trunc_loss_w": "loss of the best rank-r approximation of the final W itself (rank 0: W = 0), with "
                    "the final W_in, W_out, b, x0",
    "trunc_resid_dw": "||dW - dW_r||_F = sqrt(sum_{k>r} s_k^2) for the final dW",
    "sv_explained": "fraction of sum_k s_k^2 of the final dW captured by the top r singular values",
    "shuffle_loss": "loss of P(W0) + dW, P a uniform permutation of all N^2 entries of W0 (SPEC 3.2.3)",
    "shuffle_loss_rowcol": "loss of W0[p][:, q] + dW, p and q independent uniform permutations of the "
                           "rows and columns: keeps the singular values of W0 and the multisets of its "
                           "rows, columns, row sums and column sums",
    "shuffle_loss_resample": "loss of W0' + dW, W0' a fresh draw g N(0, 1/N) with the network's g",
    "functional_rank": "smallest r with trunc_loss_dw[r] < threshold * trunc_loss_dw[0]; -1 if none "
                       "(the paper's 'not converged', SPEC 3.2)",
    "conv_epoch": "first epoch whose training-batch loss < threshold * training loss at epoch 0; -1 if "
                  "never (the paper stores 0, SPEC 3.2)",
    "norm_dw": "||W - W0||_F of the final weights",
    "norm_dw_last_rec": "||dW||_F from the singular values of the last recorded snapshot, one rec_step "
                        "before the end (the paper's Fig 2b value, SPEC 10.7)",
    "rel_shuffle_loss": "mean over shuffles of shuffle_loss / training loss at epoch 0 (initial network, "
                        "initial vectors, training batch; SPEC 10.6)",
    "eig_w0": "eigenvalues of W0, sorted by real part then imaginary part, descending",
    "eig_w": "eigenvalues of the final W, sorted by real part then imaginary part, descending",
    "eig_dw": "eigenvalues of the final dW, sorted by real part then imaginary part, descending",
    "sv_w0": "singular values of W0, descending",
    "sv_w": "singular values of the final W, descending",
    "sv_final_dw": "singular values of the final dW = W - W0, descending",
}
VARIABLES = tuple(DESCRIPTIONS)
_NEW_DIMS = ("rank", "shuffle", "eig")


# ------------------------------------------------------------------------------ building blocks
def eval_batch(task: Task, seed: int, g: float, trials: int, key: tuple[int, ...] = ()) -> Batch:
    """The evaluation set of network (seed, g): ``key=()`` is the fixed set, else a fresh one."""
    return task.sample(trials, member_rng(int(seed), float(g), "eval", *key))


def shuffle_w0(w0: np.ndarray, g: float, variant: str, rng: np.random.Generator) -> np.ndarray:
    """A control for W0 (see ``DESCRIPTIONS``): "full", "rowcol" or "resample"."""
    n = w0.shape[-1]
    if variant == "full":
        return w0.reshape(-1)[rng.permutation(n * n)].reshape(w0.shape)
    if variant == "rowcol":
        return w0[rng.permutation(n)][:, rng.permutation(n)]
    if variant == "resample":
        return g * rng.standard_normal((n, n)) / np.sqrt(n)
    raise ValueError(f"unknown shuffle variant {variant!r}; allowed: {', '.join(SHUFFLE_VARIANTS)}")


def _svd64(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched float64 SVD; refuses non-finite weights with the offending members named."""
    bad = (~torch.isfinite(m.reshape(m.shape[0], -1)).all(dim=1)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"cannot analyse non-finite weights (members {bad})")
    return torch.linalg.svd(m.double(), full_matrices=False)


def sv_stats(s: np.ndarray, ranks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(||dW - dW_r||_F, explained fraction) at ``ranks`` from descending singular values (..., n)."""
    s2 = np.asarray(s, dtype=np.float64) ** 2
    tail = np.flip(np.cumsum(np.flip(s2, -1), -1), -1)  # tail[..., r] = sum_{k >= r} s_k^2 (0-based)
    tail = np.concatenate([tail, np.zeros(s2.shape[:-1] + (1,))], -1)
    total = tail[..., :1]
    idx = np.asarray(ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(total > 0, 1.0 - tail[..., idx] / total, np.nan)
    return np.sqrt(tail[..., idx]), explained


def connectivity_spectra(w0: np.ndarray | torch.Tensor, w: np.ndarray | torch.Tensor,
                         n_sv: int | None = None) -> xr.Dataset:
    """Eigenvalues and singular values of W0, W and dW, (net, eig) and (net, sv), in float64.

    ``n_sv`` keeps only the largest singular values (to match a run that recorded only those).
    """
    w0_t = torch.as_tensor(w0).double()
    w_t = torch.as_tensor(w).double()
    mats = {"w0": w0_t, "w": w_t, "dw": w_t - w0_t}
    n = w_t.shape[-1]
    n_sv = n if n_sv is None else min(n_sv, n)
    out = {f"eig_{k}": (("net", "eig"), leading_eigenvalues(m).cpu().numpy()) for k, m in mats.items()}
    for k, m in mats.items():
        out["sv_final_dw" if k == "dw" else f"sv_{k}"] = (("net", "sv"), _svd64(m)[1][:, :n_sv].cpu().numpy())
    return xr.Dataset(out, coords={"eig": np.arange(1, n + 1), "sv": np.arange(1, n_sv + 1)})


def _first_below(values: np.ndarray, reference: np.ndarray, threshold: float, labels: np.ndarray) -> np.ndarray:
    below = values < threshold * reference[..., None]
    return np.where(below.any(-1), labels[below.argmax(-1)], -1).astype(np.int64)


def convergence_epoch(loss: np.ndarray | xr.DataArray, threshold: float = 0.05) -> np.ndarray | xr.DataArray:
    """First epoch with loss < threshold * loss at epoch 0 (last axis / dim ``epoch``); -1 if never."""
    if isinstance(loss, xr.DataArray):
        da = loss.transpose(..., "epoch")
        labels = da.epoch.values if "epoch" in da.coords else np.arange(da.sizes["epoch"])
        res = _first_below(da.values, da.values[..., 0], threshold, labels)
        kept = {k: v for k, v in da.coords.items() if "epoch" not in v.dims}
        return xr.DataArray(res, dims=da.dims[:-1], coords=kept)
    values = np.asarray(loss, dtype=np.float64)
    return _first_below(values, values[..., 0], threshold, np.arange(values.shape[-1]))


def functional_rank(trunc_loss: np.ndarray | xr.DataArray, threshold: float = 0.05) -> np.ndarray | xr.DataArray:
    """Smallest rank r with trunc_loss[r] < threshold * trunc_loss[rank 0]; -1 if none.

    A DataArray needs a ``rank`` dim holding rank 0; an array's last axis is ranks 0, 1, 2, ...
    """
    if isinstance(trunc_loss, xr.DataArray):
        da = trunc_loss.transpose(..., "rank")
        labels = da["rank"].values
        if 0 not in labels:
            raise ValueError("functional rank needs the rank-0 loss as reference")
        ref = da.sel(rank=0).values
        res = _first_below(da.values, ref, threshold, labels)
        kept = {k: v for k, v in da.coords.items() if "rank" not in v.dims}
        return xr.DataArray(res, dims=da.dims[:-1], coords=kept)
    values = np.asarray(trunc_loss, dtype=np.float64)
    return _first_below(values, values[..., 0], threshold, np.arange(values.shape[-1]))


# ------------------------------------------------------------------------------ ensemble evaluation
class _Evaluator:
    """Losses of many (network, recurrent matrix) members, as ensemble chunks of bounded memory."""

    def __init__(self, ens: Ensemble, task: Task, eval_trials: int, eval_policy: str, chunk_bytes: int):
        if eval_policy not in EVAL_POLICIES:
            raise ValueError(f"unknown eval_policy {eval_policy!r}; allowed: {', '.join(EVAL_POLICIES)}")
        if int(eval_trials) != eval_trials or eval_trials < 1:
            raise ValueError(f"eval_trials must be an integer >= 1, got {eval_trials}")
        if task.n_in != ens.n_in or task.n_out != ens.n_out:
            raise ValueError(f"task {task.name!r} does not fit networks with {ens.n_in} inputs / {ens.n_out} outputs")
        self.ens, self.task = ens, task
        # a deterministic task gives identical trials: one is enough
        self.trials = int(eval_trials) if task.stochastic else 1
        item = torch.finfo(ens.dtype).bits // 8
        n, k, b = ens.n, task.n_steps, self.trials
        # recurrent matrices (built, selected, augmented), the state step and the batch arrays twice
        per_member = item * (3 * n * n + b * (3 * n + ens.n_in + 1) + k * b * (2 * ens.n_in + 6 * ens.n_out))
        self.chunk = max(1, int(chunk_bytes // per_member))
        self.fixed = self._batches(np.arange(ens.size), [()] * ens.size) if eval_policy == "fixed" else None

    def _batches(self, nets: np.ndarray, keys: list[tuple[int, ...]]) -> tuple[torch.Tensor, ...]:
        """Evaluation sets of the members ``nets`` as (m, B, K, C) tensors, drawn once per member."""
        ens = self.ens
        parts = [self.task.draw(self.trials, member_rng(int(ens.seed[i]), float(ens.g[i]), "eval", *key))
                 for i, key in zip(nets, keys)]
        batch = self.task.build({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})
        shape = (len(nets), self.trials)
        return tuple(torch.as_tensor(a.reshape(shape + a.shape[1:]), dtype=ens.dtype, device=ens.device)
                     for a in (batch.inputs, batch.targets, batch.mask))

    def n_chunks(self, n_members: int) -> int:
        return -(-n_members // self.chunk)

    def losses(self, nets: np.ndarray, index: np.ndarray, code: str,
               weights: Callable[[slice], torch.Tensor], bar=None) -> np.ndarray:
        """Loss of member j = network ``nets[j]`` with recurrent matrix ``weights(slice)[j]``.

        ``index[j]`` numbers the member's fresh evaluation set (rank or shuffle) under "fresh".
        """
        out = np.empty(len(nets))
        for start in range(0, len(nets), self.chunk):
            sl = slice(start, min(start + self.chunk, len(nets)))
            idx = nets[sl]
            if self.fixed is None:
                arrays = self._batches(idx, [(EVAL_CODES[code], int(j)) for j in index[sl]])
            else:
                sel = torch.as_tensor(idx, device=self.ens.device)
                arrays = tuple(a.index_select(0, sel) for a in self.fixed)
            members = self.ens.select(idx).replace(wrec=weights(sl))
            out[sl] = members.loss(*arrays, self.task.dt).double().cpu().numpy()
            if bar is not None:
                bar.update(1)
        return out


@dataclass
class _Plan:
    """The members of one analysis: their networks, evaluation indices and recurrent matrices."""

    code: str
    nets: np.ndarray
    index: np.ndarray
    weights: Callable[[slice], torch.Tensor]


def _grid(n_net: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network-major (network, value) pairs."""
    return np.repeat(np.arange(n_net), len(values)), np.tile(values, n_net)


def _truncation_plan(ens: Ensemble, ranks: np.ndarray, of: str) -> _Plan:
    if of not in ("dw", "w"):
        raise ValueError(f"of must be 'dw' or 'w', got {of!r}")
    w64 = ens.wrec.double()
    base = ens.w0.double() if of == "dw" else torch.zeros_like(w64)
    u, s, vh = _svd64(w64 - base)
    nets, rank = _grid(ens.size, ranks)

    def weights(sl: slice) -> torch.Tensor:
        n_idx = torch.as_tensor(nets[sl], device=ens.device)
        r = torch.as_tensor(rank[sl], device=ens.device)
        top = int(r.max())
        keep = s[n_idx, :top] * (torch.arange(top, device=ens.device) < r[:, None])
        low = (u[n_idx, :, :top] * keep[:, None, :]) @ vh[n_idx, :top]
        return (base[n_idx] + low).to(ens.dtype)

    return _Plan("trunc_dw" if of == "dw" else "trunc_w", nets, rank, weights)


def _shuffle_plan(ens: Ensemble, shuffles: int, variant: str) -> _Plan:
    if variant not in SHUFFLE_VARIANTS:
        raise ValueError(f"unknown shuffle variant {variant!r}; allowed: {', '.join(SHUFFLE_VARIANTS)}")
    w0 = ens.w0.double().cpu().numpy()
    dw = ens.wrec.double() - ens.w0.double()
    nets, k = _grid(ens.size, np.arange(shuffles))

    def weights(sl: slice) -> torch.Tensor:
        mats = [shuffle_w0(w0[i], float(ens.g[i]), variant,
                           member_rng(int(ens.seed[i]), float(ens.g[i]), "shuffle", SHUFFLE_CODES[variant], int(j)))
                for i, j in zip(nets[sl], k[sl])]
        n_idx = torch.as_tensor(nets[sl], device=ens.device)
        return (torch.as_tensor(np.stack(mats), device=ens.device) + dw[n_idx]).to(ens.dtype)

    return _Plan(variant, nets, k, weights)


def _final_plan(ens: Ensemble) -> _Plan:
    nets = np.arange(ens.size)
    return _Plan("final", nets, np.zeros_like(nets), lambda sl: ens.wrec[sl])


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="chunk", desc="analyze", dynamic_ncols=True, disable=not enabled)


def _net_coords(ens: Ensemble) -> dict:
    return {"net": np.arange(ens.size), "g": ("net", np.asarray(ens.g, float)),
            "seed": ("net", np.asarray(ens.seed, np.int64))}


def _run_plans(ens: Ensemble, task: Task, plans: list[_Plan], eval_trials: int, eval_policy: str,
               chunk_bytes: int, progress: bool) -> list[np.ndarray]:
    ev = _Evaluator(ens, task, eval_trials, eval_policy, chunk_bytes)
    with _progress(sum(ev.n_chunks(len(p.nets)) for p in plans), progress) as bar:
        return [ev.losses(p.nets, p.index, p.code, p.weights, bar) for p in plans]


def _rank_values(ranks: int | Sequence[int], n: int) -> np.ndarray:
    if np.isscalar(ranks):
        if int(ranks) != ranks or ranks < 0:
            raise ValueError(f"ranks must be an integer >= 0, got {ranks}")
        return np.arange(min(int(ranks), n) + 1)
    values = np.asarray(ranks, dtype=np.int64)
    if values.ndim != 1 or values.size == 0 or values.min() < 0 or values.max() > n:
        raise ValueError(f"ranks must lie in 0..{n}, got {list(ranks)}")
    return values


def truncation_losses(ens: Ensemble, task: Task, ranks: int | Sequence[int] = 25, of: str = "dw",
                      eval_trials: int = 512, eval_policy: str = "fixed",
                      chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: bool = False) -> xr.DataArray:
    """Loss (net, rank) of rank-r truncations of dW (``of="dw"``) or of W (``of="w"``).

    ``ranks`` is R (ranks 0..min(R, N)) or an explicit list. ``ens`` holds the final networks.
    """
    r = _rank_values(ranks, ens.n)
    (loss,) = _run_plans(ens, task, [_truncation_plan(ens, r, of)], eval_trials, eval_policy, chunk_bytes, progress)
    return xr.DataArray(loss.reshape(ens.size, len(r)), dims=("net", "rank"), coords={**_net_coords(ens), "rank": r})


def shuffle_losses(ens: Ensemble, task: Task, shuffles: int = 10, variant: str = "full",
                   eval_trials: int = 512, eval_policy: str = "fixed",
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: bool = False) -> xr.DataArray:
    """Loss (net, shuffle) of the shuffled-W0 + final-dW controls of one ``variant``."""
    _check_count(shuffles, "shuffles")
    (loss,) = _run_plans(ens, task, [_shuffle_plan(ens, shuffles, variant)], eval_trials, eval_policy,
                         chunk_bytes, progress)
    return xr.DataArray(loss.reshape(ens.size, shuffles), dims=("net", "shuffle"),
                        coords={**_net_coords(ens), "shuffle": np.arange(shuffles)})


def final_losses(ens: Ensemble, task: Task, eval_trials: int = 512, eval_policy: str = "fixed") -> xr.DataArray:
    """Loss (net) of the networks as they are, on the same evaluation sets as the analyses."""
    (loss,) = _run_plans(ens, task, [_final_plan(ens)], eval_trials, eval_policy, DEFAULT_CHUNK_BYTES, False)
    return xr.DataArray(loss, dims="net", coords=_net_coords(ens))


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value}")


# ------------------------------------------------------------------------------ a whole run
def _params(run: Run, ranks: int, shuffles: int, eval_trials: int, eval_policy: str, threshold: float) -> dict:
    task = run.task()
    return {
        "ranks": int(min(ranks, run.data.sizes["unit"])), "shuffles": int(shuffles),
        "eval_trials": int(eval_trials if task.stochastic else 1), "eval_policy": eval_policy,
        "threshold": float(threshold),
        "eval_seeds": ("member_rng(seed, g, 'eval') shared by all evaluations" if eval_policy == "fixed" else
                       "member_rng(seed, g, 'eval', code, index) per evaluation, code: "
                       + json.dumps(EVAL_CODES)),
        "shuffle_seeds": "member_rng(seed, g, 'shuffle', code, k), code: " + json.dumps(SHUFFLE_CODES),
    }


def analyze(run: Run, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512, eval_policy: str = "fixed",
            threshold: float = 0.05, progress: bool = True, device: str | None = None,
            chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> xr.Dataset:
    """Every analysis variable of ``run`` (see ``DESCRIPTIONS``) as one Dataset; writes nothing."""
    _check_count(shuffles, "shuffles")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if int(ranks) != ranks or ranks < 0:
        raise ValueError(f"ranks must be an integer >= 0, got {ranks}")
    if device is None:
        device = run.config["spec"].get("device", "cpu")
        device = device if torch.cuda.is_available() or not device.startswith("cuda") else "cpu"
    ds, task = run.data, run.task()
    ens = run.ensemble("final", device=device)
    params = _params(run, ranks, shuffles, eval_trials, eval_policy, threshold)
    r = _rank_values(ranks, ens.n)
    plans = [_final_plan(ens), _truncation_plan(ens, r, "dw"), _truncation_plan(ens, r, "w")]
    plans += [_shuffle_plan(ens, shuffles, v) for v in SHUFFLE_VARIANTS]
    final, tdw, tw, *shuf = _run_plans(ens, task, plans, eval_trials, eval_policy, chunk_bytes, progress)

    e = ens.size
    spec = connectivity_spectra(ens.w0, ens.wrec, n_sv=ds.sizes["sv"])
    s_dw = _svd64(ens.wrec.double() - ens.w0.double())[1].cpu().numpy()
    resid, explained = sv_stats(s_dw, r)
    loss0 = ds.loss.isel(epoch=0).values.astype(np.float64)
    last_rec = ds.sv_dw.isel(rec=-1).values.astype(np.float64)
    out = xr.Dataset(
        {
            "final_eval_loss": ("net", final),
            "trunc_loss_dw": (("net", "rank"), tdw.reshape(e, -1)),
            "trunc_loss_w": (("net", "rank"), tw.reshape(e, -1)),
            "trunc_resid_dw": (("net", "rank"), resid),
            "sv_explained": (("net", "rank"), explained),
            **{SHUFFLE_NAMES[v]: (("net", "shuffle"), s.reshape(e, -1)) for v, s in zip(SHUFFLE_VARIANTS, shuf)},
            "conv_epoch": ("net", convergence_epoch(ds.loss, threshold).values),
            "norm_dw": ("net", np.sqrt((s_dw ** 2).sum(-1))),
            "norm_dw_last_rec": ("net", np.sqrt((last_rec ** 2).sum(-1))),
            **spec.data_vars,
        },
        coords={**_net_coords(ens), "rank": r, "shuffle": np.arange(shuffles), **spec.coords},
    )
    out["functional_rank"] = ("net", functional_rank(out.trunc_loss_dw, threshold).values)
    out["rel_shuffle_loss"] = ("net", out.shuffle_loss.mean("shuffle").values / loss0)
    notes = {"norm_dw_last_rec": f"last recorded epoch {int(ds.rec.values[-1])}"}
    if ds.sizes["sv"] < ens.n:
        top = f"only the top {ds.sizes['sv']} values (the run's sv_top)"
        notes.update({k: top for k in ("sv_w0", "sv_w", "sv_final_dw")})
        notes["norm_dw_last_rec"] += f"; from the top {ds.sizes['sv']} singular values only"
    key = json.dumps(params, sort_keys=True)
    for name in VARIABLES:
        attrs = {"description": DESCRIPTIONS[name], **params, "analysis": key}
        if name in notes:
            attrs["note"] = notes[name]
        out[name].attrs = attrs
    return out[list(VARIABLES)]


def stored_analysis(run_or_path: Run | str | Path, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512,
                    eval_policy: str = "fixed", threshold: float = 0.05) -> xr.Dataset | None:
    """The stored analysis variables if every one was computed with these parameters, else None."""
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    stored = store.open_results(run.path)
    key = json.dumps(_params(run, ranks, shuffles, eval_trials, eval_policy, threshold), sort_keys=True)
    if not all(name in stored and stored[name].attrs.get("analysis") == key for name in VARIABLES):
        return None
    out = stored[list(VARIABLES)]
    out.attrs = {}  # the run's own attributes stay with the run
    return out


def analyze_run(run_or_path: Run | str | Path, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512,
                eval_policy: str = "fixed", threshold: float = 0.05, force: bool = False,
                progress: bool = True, device: str | None = None,
                chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> xr.Dataset:
    """Compute :func:`analyze` and store it in the run's results; idempotent.

    If every variable is already stored with the same parameters (attribute ``analysis``) nothing
    is computed or written unless ``force``. Returns the analysis variables.
    """
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    done = None if force else stored_analysis(run, ranks, shuffles, eval_trials, eval_policy, threshold)
    if done is not None:
        return done
    out = analyze(run, ranks, shuffles, eval_trials, eval_policy, threshold, progress, device, chunk_bytes)
    stored = store.open_results(run.path)
    if any(dim in stored.dims and stored.sizes[dim] != out.sizes[dim] for dim in _NEW_DIMS):
        # zarr cannot resize a dimension in place: rewrite the whole store (atomically)
        stale = [v for v in stored.variables if v in VARIABLES or set(stored[v].dims) & set(_NEW_DIMS)]
        merged = stored.drop_vars(stale).assign({name: out[name] for name in VARIABLES})
        for var in merged.variables.values():
            var.encoding = {}
        store.write_results(run.path, merged)
    else:
        store.add_results(run.path, out)
    return out
