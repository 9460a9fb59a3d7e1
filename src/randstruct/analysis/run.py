"""The analysis of a whole run: every variable of ``DESCRIPTIONS`` computed at once and stored,
labelled, in the run's ``results.zarr`` (idempotent: parameters are recorded per variable)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from randstruct import store
from randstruct.analysis.connectivity import (SHUFFLE_CODES, SHUFFLE_VARIANTS, connectivity_spectra,
                                              convergence_epoch, functional_rank, sv_stats, svd64)
from randstruct.analysis.evaluation import (DEFAULT_CHUNK_BYTES, EVAL_CODES, check_count, final_plan,
                                            rank_values, run_plans, shuffle_plan, truncation_plan, net_coords)
from randstruct.engine.device import check_device
from randstruct.runs import Run, load

SHUFFLE_NAMES = {"full": "shuffle_loss", "rowcol": "shuffle_loss_rowcol", "resample": "shuffle_loss_resample"}

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
# where the task has labels (Task.has_labels): the same evaluations scored by decision accuracy
ACCURACY_DESCRIPTIONS = {
    "final_eval_accuracy": "decision accuracy of the trained network on the evaluation set (argmax of the "
                           "outputs summed over each trial's decision steps vs the label)",
    "trunc_accuracy_dw": "decision accuracy of W0 + best rank-r approximation of the final dW (as trunc_loss_dw)",
    "trunc_accuracy_w": "decision accuracy of the best rank-r approximation of the final W (as trunc_loss_w)",
    "shuffle_accuracy": "decision accuracy of P(W0) + dW (as shuffle_loss)",
    "shuffle_accuracy_rowcol": "decision accuracy of W0[p][:, q] + dW (as shuffle_loss_rowcol)",
    "shuffle_accuracy_resample": "decision accuracy of W0' + dW (as shuffle_loss_resample)",
    "functional_rank_accuracy": "smallest r with trunc_accuracy_dw[r] >= (1 - threshold) * final_eval_accuracy; "
                                "-1 if none",
}
SHUFFLE_ACCURACY = {"full": "shuffle_accuracy", "rowcol": "shuffle_accuracy_rowcol",
                    "resample": "shuffle_accuracy_resample"}


def variables(task) -> tuple[str, ...]:
    """The analysis variables of a run on ``task``: accuracy ones too where it has labels."""
    return VARIABLES + (tuple(ACCURACY_DESCRIPTIONS) if task.has_labels else ())


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
    check_count(shuffles, "shuffles")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if int(ranks) != ranks or ranks < 0:
        raise ValueError(f"ranks must be an integer >= 0, got {ranks}")
    if device is not None:
        check_device(device)
    if device is None:
        device = run.config["spec"].get("device", "cpu")
        device = device if torch.cuda.is_available() or not device.startswith("cuda") else "cpu"
    ds, task = run.data, run.task()
    ens = run.ensemble("final", device=device)
    params = _params(run, ranks, shuffles, eval_trials, eval_policy, threshold)
    r = rank_values(ranks, ens.n)
    plans = [final_plan(ens), truncation_plan(ens, r, "dw"), truncation_plan(ens, r, "w")]
    plans += [shuffle_plan(ens, shuffles, v) for v in SHUFFLE_VARIANTS]
    loss_kind = run.spec.train.loss
    results = run_plans(ens, task, plans, eval_trials, eval_policy, chunk_bytes, progress, loss_kind)
    (final, final_acc), (tdw, tdw_acc), (tw, tw_acc), *shuffled = results
    shuf = [value for value, _ in shuffled]

    e = ens.size
    spec = connectivity_spectra(ens.w0, ens.wrec, n_sv=ds.sizes["sv"])
    s_dw = svd64(ens.wrec.double() - ens.w0.double())[1].cpu().numpy()
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
        coords={**net_coords(ens), "rank": r, "shuffle": np.arange(shuffles), **spec.coords},
    )
    out["functional_rank"] = ("net", functional_rank(out.trunc_loss_dw, threshold).values)
    out["rel_shuffle_loss"] = ("net", out.shuffle_loss.mean("shuffle").values / loss0)
    names = variables(task)
    if task.has_labels:
        out["final_eval_accuracy"] = ("net", final_acc)
        out["trunc_accuracy_dw"] = (("net", "rank"), tdw_acc.reshape(e, -1))
        out["trunc_accuracy_w"] = (("net", "rank"), tw_acc.reshape(e, -1))
        for v, (_, acc) in zip(SHUFFLE_VARIANTS, shuffled):
            out[SHUFFLE_ACCURACY[v]] = (("net", "shuffle"), acc.reshape(e, -1))
        enough = out.trunc_accuracy_dw >= (1 - threshold) * out.final_eval_accuracy
        first = enough.argmax("rank")
        out["functional_rank_accuracy"] = ("net", np.where(enough.any("rank"), out["rank"].values[first.values], -1))
    notes = {"norm_dw_last_rec": f"last recorded epoch {int(ds.rec.values[-1])}"}
    if ds.sizes["sv"] < ens.n:
        top = f"only the top {ds.sizes['sv']} values (the run's sv_top)"
        notes.update({k: top for k in ("sv_w0", "sv_w", "sv_final_dw")})
        notes["norm_dw_last_rec"] += f"; from the top {ds.sizes['sv']} singular values only"
    key = json.dumps(params, sort_keys=True)
    for name in names:
        attrs = {"description": {**DESCRIPTIONS, **ACCURACY_DESCRIPTIONS}[name], **params, "analysis": key,
                 **({"loss": loss_kind} if "loss" in name else {})}
        if name in notes:
            attrs["note"] = notes[name]
        out[name].attrs = attrs
    return out[list(names)]


def stored_analysis(run_or_path: Run | str | Path, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512,
                    eval_policy: str = "fixed", threshold: float = 0.05) -> xr.Dataset | None:
    """The stored analysis variables if every one was computed with these parameters, else None."""
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    stored = store.open_results(run.path)
    key = json.dumps(_params(run, ranks, shuffles, eval_trials, eval_policy, threshold), sort_keys=True)
    names = variables(run.task())
    if not all(name in stored and stored[name].attrs.get("analysis") == key for name in names):
        return None
    out = stored[list(names)]
    out.attrs = {}  # the run's own attributes stay with the run
    return out


def analyze_run(run_or_path: Run | str | Path, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512,
                eval_policy: str = "fixed", threshold: float = 0.05, force: bool = False,
                progress: bool = True, device: str | None = None,
                chunk_bytes: int = DEFAULT_CHUNK_BYTES, *, scheduler: str | None = None, client=None,
                shard_size: int | None = None, threads: int | None = None) -> xr.Dataset:
    """Compute :func:`analyze` and store it in the run's results; idempotent.

    If every variable is already stored with the same parameters (attribute ``analysis``) nothing
    is computed or written unless ``force``. Returns the analysis variables. With ``scheduler`` or
    ``client`` the run's shards are analysed on a Dask cluster and merged (the same arrays).
    """
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    if scheduler is not None or client is not None:
        from randstruct.distributed.execute import analyze_run as analyze_sharded

        params = {"ranks": ranks, "shuffles": shuffles, "eval_trials": eval_trials, "eval_policy": eval_policy,
                  "threshold": threshold, "device": device, "chunk_bytes": chunk_bytes}
        return analyze_sharded(run, params, force, progress, scheduler, client, shard_size, threads)
    done = None if force else stored_analysis(run, ranks, shuffles, eval_trials, eval_policy, threshold)
    if done is not None:
        return done
    with store.run_lock(run.path, "analyze"):
        out = analyze(run, ranks, shuffles, eval_trials, eval_policy, threshold, progress, device, chunk_bytes)
        return store_analysis(run, out)


def store_analysis(run: Run, out: xr.Dataset) -> xr.Dataset:
    """Write the variables ``out`` into ``run``'s results (hold its lock); returns ``out``.

    They go to the run's additions store, swapped in whole (store.add_results): an interruption
    leaves the previous analysis readable and never touches the training arrays. Stored variables
    of the same names, or on a dimension whose size changed, are replaced."""
    store.add_results(run.path, out)
    return out
