"""The ``dynamics`` analysis plug-in: fixed points of the three variants (W, W0 + dW_r, shuffled
W0 + dW) under each constant input, their coordinates on dW's singular vectors and readouts,
outlier eigenvalues of W over the recorded epochs, and the alignment of dW's singular vectors
with the theory's directions."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from randstruct import memory
from randstruct.analysis.base import Analysis
from randstruct.dynamics import alignment, coordinates, eigen
from randstruct.dynamics.jacobians import drive
from randstruct.dynamics.fixed_points import (CHUNK_BYTES, DEFAULTS, FIRST_ORDER_ITERS, LR, METHOD, check_options,
                                              find_fixed_points, iteration_bound)

from randstruct.errors import UserInputError

N_EIG = 10
DESCRIPTIONS = {
    "fp_count": "number of unique fixed points (all input conditions) of the network's variant",
    "fp_n_stable": "number of those with every Jacobian eigenvalue's real part < 0",
    "fp_xstar": "fixed point x* of the flow F(x) = -x + W phi(x) + W_in^T u + b (NaN: padding)",
    "fp_qstar": "q(x*) = |F(x*)|^2 / 2",
    "fp_dq": "last decrease of q in the search",
    "fp_n_iters": "search iterations of the state that found x* (first-order + Newton); -1: padding",
    "fp_is_stable": "1 if every eigenvalue of J(x*) = -I + W diag(phi'(x*)) has real part < 0, else 0 (NaN: padding)",
    "fp_cond_id": "index of the constant input (dimension cond) of the fixed point; -1: padding",
    "fp_eigval": "leading eigenvalues of J(x*), sorted by real part then imaginary part, descending",
    "fp_readout": "readout z = W_out^T phi(x*) (W_out^T x* for a readout from the state) with the final W_out",
    "fp_coord_left": "U^T x*: coordinates on the top left singular vectors of the final dW (what dW writes into)",
    "fp_coord_right": "V^T phi(x*): coordinates on the top right singular vectors of the final dW (what dW reads)",
    "fp_trunc_rank": "rank r of the truncated variant W0 + dW_r: the functional rank or the one asked for "
                     "(-1: none or not analysed, no search: that network's trunc counts are n/a)",
    "dyn_inputs": "constant inputs u under which fixed points were searched (the same for every network)",
    "eig_outliers": "eigenvalues of W outside the disc |lambda| <= g + margin, by real part descending (NaN: padding)",
    "eig_outlier_count": "number of eigenvalues of W outside the disc |lambda| <= g + margin",
    "eig_outlier_align": "fraction of an outlier eigenvector's norm in the span of the top dw_dir left singular "
                         "vectors of W - W0 at the same epoch",
    "align_left": "|cos| between dW's left singular vectors and the reference vectors (initial in/out vectors, "
                  "B m_i, B^T w_j with B = (I - W0)^-1); NaN where dW = 0",
    "align_right": "|cos| between dW's right singular vectors and the reference vectors (as align_left)",
}
VARIABLES = tuple(DESCRIPTIONS)


def parse_inputs(inputs, n_in: int) -> np.ndarray:
    """Constant inputs (C, N_in): None -> zero input only; else a sequence of length-N_in vectors."""
    if inputs is None:
        return np.zeros((1, n_in))
    arr = np.asarray(inputs, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != n_in or arr.shape[0] < 1 or not np.isfinite(arr).all():
        raise UserInputError(f"inputs must be one or more vectors of {n_in} finite numbers, "
                             f"got {np.asarray(inputs).tolist()}")
    return arr


@dataclass(frozen=True)
class DynamicsParams:
    """``inputs``: constant inputs (C, N_in), None for zero input; ``inits`` initial states per
    network and input, picked from ``trials`` task trials drawn with ``seed``; ``n_dirs`` singular
    directions of dW; ``margin`` of the outlier disc; the rest are the search's (FixedPointFinder's names)."""

    inputs: tuple | None = None
    inits: int = 256
    seed: int = 0
    trials: int = 32
    n_dirs: int = eigen.N_DIRS
    margin: float = eigen.MARGIN
    tol_q: float = DEFAULTS["tol_q"]
    tol_dq: float = DEFAULTS["tol_dq"]
    max_iters: int = DEFAULTS["max_iters"]
    tol_unique: float = DEFAULTS["tol_unique"]
    outlier_distance_scale: float = DEFAULTS["outlier_distance_scale"]
    first_order_iters: int = FIRST_ORDER_ITERS
    lr: float = LR
    trunc_rank: int | None = None  # the rank r of W0 + dW_r for every network; None: each one's functional rank

    def __post_init__(self) -> None:
        if self.trunc_rank is not None and (isinstance(self.trunc_rank, bool) or int(self.trunc_rank) != self.trunc_rank
                                            or self.trunc_rank < 0):
            raise UserInputError(f"trunc_rank must be an integer >= 0 or None, got {self.trunc_rank}")
        for name, low in (("inits", 1), ("trials", 1), ("n_dirs", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < low:
                raise UserInputError(f"{name} must be an integer >= {low}, got {value}")
        if not self.margin >= 0:
            raise UserInputError(f"margin must be >= 0, got {self.margin}")
        check_options(self.tol_q, self.tol_dq, self.max_iters, self.first_order_iters)
        if self.inputs is not None:
            object.__setattr__(self, "inputs", tuple(tuple(float(x) for x in np.atleast_1d(u)) for u in self.inputs))

    def search_options(self) -> dict:
        return {k: getattr(self, k) for k in ("tol_q", "tol_dq", "max_iters", "tol_unique", "outlier_distance_scale",
                                              "first_order_iters", "lr")}


class Dynamics(Analysis):
    """Fixed points of W, W0 + dW_r and shuffled W0 + dW; outlier eigenvalues; alignment of dW."""

    name = "dynamics"
    Params = DynamicsParams
    variables = DESCRIPTIONS
    shardable = False  # fixed points are padded to the largest count of the members analysed together

    def identity(self, params: DynamicsParams, task, data: xr.Dataset) -> dict:
        u = parse_inputs(params.inputs, data.sizes["channel_in"])
        opts = {k: float(v) for k, v in params.search_options().items()}
        opts["max_iters"] = float(iteration_bound(params.max_iters, params.first_order_iters))
        return {"inputs": u.tolist(), "inits": int(params.inits), "seed": int(params.seed),
                "trials": int(params.trials), "n_dirs": int(params.n_dirs), "margin": float(params.margin), **opts,
                "trunc_rank": "functional rank" if params.trunc_rank is None else int(params.trunc_rank),
                "method": METHOD,
                "init_seeds": "member_rng(seed, g, 'dynamics', seed_S): trials, then the picked (trial, step) pairs",
                "shuffle": "the analysis' first full shuffle, member_rng(seed, g, 'shuffle', 1, 0)"}

    def compute(self, ens, task, ds: xr.Dataset, params: DynamicsParams) -> xr.Dataset:
        """Every variable of ``DESCRIPTIONS``; the truncated variant is searched where the run's
        functional rank is stored (``randstruct analyze``), else it is NaN (not searched)."""
        from tqdm.auto import tqdm

        n_states = params.inits * len(parse_inputs(params.inputs, ens.n_in))
        memory.require(memory.dynamics_bytes(ens.size, ens.n, n_states, task.n_steps,
                                             params.trials if task.stochastic else 1, 8, CHUNK_BYTES),
                       str(ens.device), "this fixed-point search", "use fewer --inits or fewer --inputs")
        ens = ens.replace(**{k: v.double() for k, v in ens.params().items()}, w0=ens.w0.double())
        u_cond = parse_inputs(params.inputs, ens.n_in)
        x_init, _ = coordinates.initial_states(ens, task, params.inits, params.seed, params.trials)
        n_cond, e, n = len(u_cond), ens.size, ens.n
        x_all = x_init.repeat(1, n_cond, 1)
        cond_id = np.repeat(np.arange(n_cond), params.inits)[None].repeat(e, 0)
        u = torch.as_tensor(u_cond, dtype=torch.float64)[torch.as_tensor(cond_id[0])][None].expand(e, -1, -1)
        const = drive(ens.wi, ens.b, u.contiguous())
        if params.trunc_rank is not None:
            if params.trunc_rank > n:
                raise UserInputError(f"trunc_rank must be <= N = {n}, got {params.trunc_rank}")
            ranks = np.full(e, int(params.trunc_rank), np.int64)
        else:
            ranks = (ds.functional_rank.values.astype(np.int64) if "functional_rank" in ds
                     else np.full(e, -1, np.int64))
        u_dw, v_dw, _ = coordinates.dw_directions(ens, params.n_dirs)
        found = {}
        for variant in tqdm(coordinates.VARIANTS, desc="dynamics", unit="variant", disable=not self.progress):
            w = coordinates.variant_weights(ens, variant, ranks)
            found[variant] = find_fixed_points(w, const, x_all, cond_id, ens.nonlinearity, **params.search_options())
        out = _fixed_point_dataset(found, ens, u_dw, v_dw, ranks, u_cond)
        out = out.merge(spectra_over_training(ds, ens, params.n_dirs, params.margin))
        out = out.assign_coords({"net": ds.net.values, "g": ("net", ds.g.values), "seed": ("net", ds.seed.values),
                                 "unit": ds.unit.values, "channel_in": ds.channel_in.values,
                                 "channel_out": ds.channel_out.values})
        info = json.dumps({v: fp.info for v, fp in found.items()})
        for name in VARIABLES:
            out[name].attrs = {"search": info}
        return out[list(VARIABLES)]


def _fixed_point_dataset(found: dict, ens, u_dw, v_dw, ranks: np.ndarray, u_cond: np.ndarray) -> xr.Dataset:
    """The fixed points of every variant, padded with NaN (or -1) to the largest count."""
    e, n = ens.size, ens.n
    p = max(max(int(fp.count.max()) for fp in found.values()), 1)
    n_eig = min(N_EIG, n)

    def stack(name, shape, fill=np.nan, dtype=float):
        out = np.full((e, len(found), p) + shape, fill, dtype=dtype)
        for i, fp in enumerate(found.values()):
            val = getattr(fp, name)
            out[:, i, :val.shape[1]] = val[..., :shape[0]] if shape else val
        return out

    xstar = stack("xstar", (n,))
    left, right = coordinates.coordinates(xstar.reshape(e, -1, n), u_dw, v_dw, ens.nonlinearity)
    d = u_dw.shape[-1]
    return xr.Dataset({
        "fp_count": (("net", "variant"), np.stack([fp.count for fp in found.values()], 1)),
        "fp_n_stable": (("net", "variant"), np.stack([np.nansum(fp.is_stable, 1).astype(np.int64)
                                                      for fp in found.values()], 1)),
        "fp_xstar": (("net", "variant", "fp", "unit"), xstar),
        "fp_qstar": (("net", "variant", "fp"), stack("qstar", ())),
        "fp_dq": (("net", "variant", "fp"), stack("dq", ())),
        "fp_n_iters": (("net", "variant", "fp"), stack("n_iters", (), -1, np.int64)),
        "fp_is_stable": (("net", "variant", "fp"), stack("is_stable", ())),
        "fp_cond_id": (("net", "variant", "fp"), stack("cond_id", (), -1, np.int64)),
        "fp_eigval": (("net", "variant", "fp", "fp_eig"), stack("eigval_J_xstar", (n_eig,), np.nan + 0j, complex)),
        "fp_readout": (("net", "variant", "fp", "channel_out"),
                       coordinates.readouts(xstar.reshape(e, -1, n), ens.wo, ens.nonlinearity,
                                            ens.options.readout_from).reshape(e, len(found), p, -1)),
        "fp_coord_left": (("net", "variant", "fp", "dw_dir"), left.reshape(e, len(found), p, d)),
        "fp_coord_right": (("net", "variant", "fp", "dw_dir"), right.reshape(e, len(found), p, d)),
        "fp_trunc_rank": ("net", ranks),
        "dyn_inputs": (("net", "cond", "channel_in"), np.broadcast_to(u_cond, (e,) + u_cond.shape).copy()),
    }, coords={"variant": list(coordinates.VARIANTS), "fp": np.arange(p), "fp_eig": np.arange(1, n_eig + 1),
               "dw_dir": np.arange(1, d + 1), "cond": np.arange(len(u_cond))})


def spectra_over_training(ds: xr.Dataset, ens, n_dirs: int, margin: float) -> xr.Dataset:
    """Outliers of W and alignment of dW at the recorded epochs (if the run recorded weights) and at the end."""
    final = ens.wrec.double()[:, None]
    epochs = [int(ds.sizes["epoch"])]
    if "weights" in ds:
        final = torch.cat([torch.as_tensor(ds.weights.values, dtype=torch.float64), final], 1)
        epochs = [int(r) for r in ds.rec.values] + epochs
    eig, count, align = eigen.outliers(final, ens.w0, ens.g, margin, n_dirs)
    refs, names = alignment.reference_vectors(torch.as_tensor(ds.wi0.values), torch.as_tensor(ds.wo0.values), ens.w0)
    left, right = alignment.singular_alignment(final - ens.w0.double()[:, None], refs, n_dirs)
    return xr.Dataset({
        "eig_outliers": (("net", "dyn_epoch", "outlier"), eig),
        "eig_outlier_count": (("net", "dyn_epoch"), count.astype(np.int64)),
        "eig_outlier_align": (("net", "dyn_epoch", "outlier"), align),
        "align_left": (("net", "dyn_epoch", "dw_dir", "ref"), left),
        "align_right": (("net", "dyn_epoch", "dw_dir", "ref"), right),
    }, coords={"dyn_epoch": epochs, "outlier": np.arange(eig.shape[-1]), "ref": names})


def dynamics_run(run_or_path, inputs=None, inits: int = 256, seed: int = 0, trials: int = 32,
                 force: bool = False, progress: bool = True, **options) -> xr.Dataset:
    """The ``dynamics`` analysis of a run, computed and stored once per parameters (``options``:
    the other fields of :class:`DynamicsParams`)."""
    from randstruct.analysis.apply import run_analyses

    params = {"inputs": inputs, "inits": inits, "seed": seed, "trials": trials, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr v3 notes on string coordinates (variant, ref names)
        return run_analyses(run_or_path, ["dynamics"], {"dynamics": params}, force=force, progress=progress)
