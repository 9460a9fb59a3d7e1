"""The dynamics of a whole run: fixed points of the three variants (W, W0 + dW_r, shuffled
W0 + dW) under each constant input, their coordinates on dW's singular vectors and readouts,
outlier eigenvalues of W over the recorded epochs, and the alignment of dW's singular vectors
with the theory's directions; stored, labelled, in the run's ``results.zarr`` (idempotent:
the parameters are recorded in every variable's attributes)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from randstruct import store
from randstruct.analysis.run import store_analysis
from randstruct.dynamics import alignment, coordinates, eigen
from randstruct.dynamics.fixed_points import DEFAULTS, FIRST_ORDER_ITERS, LR, METHOD, find_fixed_points
from randstruct.runs import Run, load

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
    "fp_readout": "readout z = W_out^T phi(x*) with the final W_out",
    "fp_coord_left": "U^T x*: coordinates on the top left singular vectors of the final dW (what dW writes into)",
    "fp_coord_right": "V^T phi(x*): coordinates on the top right singular vectors of the final dW (what dW reads)",
    "fp_trunc_rank": "rank r of the truncated variant W0 + dW_r: the functional rank (-1: none, no search)",
    "dyn_inputs": "constant inputs u under which fixed points were searched",
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
        raise ValueError(f"inputs must be one or more vectors of {n_in} finite numbers, got {np.asarray(inputs).tolist()}")
    return arr


def params(run: Run, inputs: np.ndarray, inits: int, seed: int, trials: int, search_options: dict,
           n_dirs: int, margin: float) -> dict:
    return {"inputs": inputs.tolist(), "inits": int(inits), "seed": int(seed), "trials": int(trials),
            "n_dirs": int(n_dirs), "margin": float(margin), **{k: float(v) for k, v in search_options.items()},
            "method": METHOD,
            "init_seeds": "member_rng(seed, g, 'dynamics', seed_S): trials, then the picked (trial, step) pairs",
            "shuffle": "the analysis' first full shuffle, member_rng(seed, g, 'shuffle', 1, 0)"}


def _search_options(tol_q, tol_dq, max_iters, tol_unique, outlier_distance_scale, first_order_iters, lr) -> dict:
    return {"tol_q": tol_q, "tol_dq": tol_dq, "max_iters": max_iters, "tol_unique": tol_unique,
            "outlier_distance_scale": outlier_distance_scale, "first_order_iters": first_order_iters, "lr": lr}


def dynamics(run: Run, inputs=None, inits: int = 256, seed: int = 0, trials: int = 32, n_dirs: int = eigen.N_DIRS,
             margin: float = eigen.MARGIN, tol_q: float = DEFAULTS["tol_q"], tol_dq: float = DEFAULTS["tol_dq"],
             max_iters: int = DEFAULTS["max_iters"], tol_unique: float = DEFAULTS["tol_unique"],
             outlier_distance_scale: float = DEFAULTS["outlier_distance_scale"],
             first_order_iters: int = FIRST_ORDER_ITERS, lr: float = LR, progress: bool = True) -> xr.Dataset:
    """Every variable of ``DESCRIPTIONS`` for ``run``, as one Dataset; writes nothing."""
    from tqdm.auto import tqdm

    ds = run.data
    if "functional_rank" not in ds:
        raise store.RunError(f"{run.path} has no analysis (the truncated variant needs the functional rank): "
                             f"run 'randstruct analyze {run.path}' first")
    if isinstance(n_dirs, bool) or int(n_dirs) != n_dirs or n_dirs < 1:
        raise ValueError(f"n_dirs must be an integer >= 1, got {n_dirs}")
    ens = run.ensemble("final", dtype=torch.float64)
    task = run.task()
    u_cond = parse_inputs(inputs, ens.n_in)
    opts = _search_options(tol_q, tol_dq, max_iters, tol_unique, outlier_distance_scale, first_order_iters, lr)
    x_init, _ = coordinates.initial_states(ens, task, inits, seed, trials)
    n_cond, e, n = len(u_cond), ens.size, ens.n
    x_all = x_init.repeat(1, n_cond, 1)
    cond_id = np.repeat(np.arange(n_cond), inits)[None].repeat(e, 0)
    u = torch.as_tensor(u_cond, dtype=torch.float64)[torch.as_tensor(cond_id[0])][None].expand(e, -1, -1)
    const = torch.baddbmm(ens.b[:, None, :], u.contiguous(), ens.wi)
    ranks = ds.functional_rank.values.astype(np.int64)
    u_dw, v_dw, _ = coordinates.dw_directions(ens, n_dirs)
    found = {}
    for variant in tqdm(coordinates.VARIANTS, desc="dynamics", unit="variant", disable=not progress):
        w = coordinates.variant_weights(ens, variant, ranks)
        found[variant] = find_fixed_points(w, const, x_all, cond_id, ens.nonlinearity, **opts)
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
    out = xr.Dataset({
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
                       coordinates.readouts(xstar.reshape(e, -1, n), ens.wo, ens.nonlinearity).reshape(e, len(found), p, -1)),
        "fp_coord_left": (("net", "variant", "fp", "dw_dir"), left.reshape(e, len(found), p, d)),
        "fp_coord_right": (("net", "variant", "fp", "dw_dir"), right.reshape(e, len(found), p, d)),
        "fp_trunc_rank": ("net", ranks),
        "dyn_inputs": (("cond", "channel_in"), u_cond),
    })
    out = out.merge(spectra_over_training(run, ens, n_dirs, margin))
    out = out.assign_coords({"net": ds.net.values, "g": ("net", ds.g.values), "seed": ("net", ds.seed.values),
                             "variant": list(coordinates.VARIANTS), "fp": np.arange(p), "fp_eig": np.arange(1, n_eig + 1),
                             "dw_dir": np.arange(1, d + 1), "cond": np.arange(n_cond),
                             "unit": ds.unit.values, "channel_in": ds.channel_in.values,
                             "channel_out": ds.channel_out.values})
    key = json.dumps(params(run, u_cond, inits, seed, trials, opts, n_dirs, margin), sort_keys=True)
    info = json.dumps({v: fp.info for v, fp in found.items()})
    for name in VARIABLES:
        out[name].attrs = {"description": DESCRIPTIONS[name], "dynamics": key, "search": info}
    return out[list(VARIABLES)]


def spectra_over_training(run: Run, ens, n_dirs: int, margin: float) -> xr.Dataset:
    """Outliers of W and alignment of dW at the recorded epochs (if the run recorded weights) and at the end."""
    ds = run.data
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


def has_weights(run: Run) -> bool:
    return "weights" in run.data


def stored_dynamics(run: Run, key: str) -> xr.Dataset | None:
    stored = store.open_results(run.path)
    if not all(name in stored and stored[name].attrs.get("dynamics") == key for name in VARIABLES):
        return None
    out = stored[list(VARIABLES)]
    out.attrs = {}
    return out


def dynamics_run(run_or_path: Run | str | Path, inputs=None, inits: int = 256, seed: int = 0, trials: int = 32,
                 force: bool = False, progress: bool = True, **options) -> xr.Dataset:
    """Compute :func:`dynamics` and store it in the run's results; idempotent (nothing is computed
    or written when every variable is stored with the same parameters, unless ``force``)."""
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    if "functional_rank" not in run.data:
        raise store.RunError(f"{run.path} has no analysis (the truncated variant needs the functional rank): "
                             f"run 'randstruct analyze {run.path}' first")
    u_cond = parse_inputs(inputs, run.data.sizes["channel_in"])
    if isinstance(inits, bool) or int(inits) != inits or inits < 1:
        raise ValueError(f"inits must be an integer >= 1, got {inits}")
    search_keys = ("tol_q", "tol_dq", "max_iters", "tol_unique", "outlier_distance_scale", "first_order_iters", "lr")
    defaults = {**DEFAULTS, "first_order_iters": FIRST_ORDER_ITERS, "lr": LR}
    opts = {k: options.get(k, defaults[k]) for k in search_keys}
    key = json.dumps(params(run, u_cond, inits, seed, trials, opts, options.get("n_dirs", eigen.N_DIRS),
                            options.get("margin", eigen.MARGIN)), sort_keys=True)
    done = None if force else stored_dynamics(run, key)
    if done is not None:
        return done
    with store.run_lock(run.path, "dynamics"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr v3 notes on string coordinates (variant, ref names)
        out = dynamics(run, u_cond, inits, seed, trials, progress=progress, **options)
        return store_analysis(run, out)
