"""The standard analysis plug-in, ``connectivity``: rank truncation of dW and of W, W0 shuffles,
spectra of W0, W and dW, functional rank and convergence epoch, in one pass over the evaluation
sets (the variables of ``DESCRIPTIONS``, and of ``ACCURACY_DESCRIPTIONS`` where the task has labels)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import xarray as xr

from randstruct import memory
from randstruct.analysis.base import Analysis
from randstruct.analysis.connectivity import (SHUFFLE_CODES, SHUFFLE_VARIANTS, connectivity_spectra,
                                              convergence_epoch, functional_rank, sv_stats, svd64)
from randstruct.analysis.evaluation import (EVAL_CODES, EVAL_POLICIES, check_count, check_flag, check_index,
                                            final_plan, net_coords, rank_values, run_plans, shuffle_plan,
                                            truncation_plan)
from randstruct.errors import UserInputError

SHUFFLE_NAMES = {"full": "shuffle_loss", "rowcol": "shuffle_loss_rowcol", "resample": "shuffle_loss_resample"}

DESCRIPTIONS = {
    "final_eval_loss": "loss of the trained network (final W, W_in, W_out) on the evaluation set",
    "trunc_loss_dw": "loss of W0 + best rank-r approximation of the final dW (SVD), with the final "
                     "W_in, W_out, b, x0; rank 0 is W0 with the trained vectors",
    "trunc_loss_w": "loss of the best rank-r approximation of the final W itself (rank 0: W = 0), with "
                    "the final W_in, W_out, b, x0",
    "trunc_resid_dw": "||dW - dW_r||_F = sqrt(sum_{k>r} s_k^2) for the final dW",
    "sv_explained": "fraction of sum_k s_k^2 of the final dW captured by the top r singular values",
    "shuffle_loss": "loss of P(W0) + dW, P a uniform permutation of all N^2 entries of W0 (SPEC 3.2.3); under "
                    "Dale's law or sparsity of the present magnitudes within each sign (docs/model.md)",
    "shuffle_loss_rowcol": "loss of W0[p][:, q] + dW, p and q independent uniform permutations of the "
                           "rows and columns: keeps the singular values of W0 and the multisets of its "
                           "rows, columns, row sums and column sums (under Dale's law columns within each sign)",
    "shuffle_loss_resample": "loss of W0' + dW, W0' a fresh draw g N(0, 1/N) with the network's g (under "
                             "Dale's law or sparsity a fresh W0 of that kind on the same mask)",
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


@dataclass(frozen=True)
class ConnectivityParams:
    """``ranks``: truncation ranks 0..R; ``shuffles``: controls per shuffle variant; ``eval_trials``
    and ``eval_policy``: the evaluation sets (module docstring of randstruct.analysis);
    ``threshold``: of the functional rank and the convergence epoch; ``eval_noise``: evaluate with the
    run's training noise (docs/model.md; one draw per network, ``member_rng(seed, g, 'sim_noise', 0)``,
    shared by every evaluation) instead of without noise."""

    ranks: int = 25
    shuffles: int = 10
    eval_trials: int = 512
    eval_policy: str = "fixed"
    threshold: float = 0.05
    eval_noise: bool = False

    def __post_init__(self) -> None:
        check_count(self.shuffles, "shuffles")
        check_count(self.eval_trials, "eval_trials")
        if self.eval_policy not in EVAL_POLICIES:
            raise UserInputError(f"unknown eval_policy {self.eval_policy!r}; allowed: {', '.join(EVAL_POLICIES)}")
        if not 0 < self.threshold < 1:
            raise UserInputError(f"threshold must be in (0, 1), got {self.threshold}")
        check_index(self.ranks, "ranks")
        check_flag(self.eval_noise, "eval_noise")


class Connectivity(Analysis):
    """Rank truncation of dW and W, W0 shuffles, spectra, functional rank and convergence epoch."""

    name = "connectivity"
    Params = ConnectivityParams
    variables = DESCRIPTIONS

    def variables_for(self, task) -> dict[str, str]:
        return {**DESCRIPTIONS, **(ACCURACY_DESCRIPTIONS if task.has_labels else {})}

    def identity(self, params: ConnectivityParams, task, data: xr.Dataset) -> dict:
        return {
            "ranks": int(min(params.ranks, data.sizes["unit"])), "shuffles": int(params.shuffles),
            "eval_trials": int(params.eval_trials if task.stochastic else 1), "eval_policy": params.eval_policy,
            "threshold": float(params.threshold),
            "eval_seeds": ("member_rng(seed, g, 'eval') shared by all evaluations" if params.eval_policy == "fixed"
                           else "member_rng(seed, g, 'eval', code, index) per evaluation, code: "
                           + json.dumps(EVAL_CODES)),
            "shuffle_seeds": "member_rng(seed, g, 'shuffle', code, k), code: " + json.dumps(SHUFFLE_CODES),
            # only when on, so that analyses stored before the option keep their identity
            **({"eval_noise": "the training noise, member_rng(seed, g, 'sim_noise', 0)"} if params.eval_noise else {}),
        }

    def compute(self, ens, task, ds: xr.Dataset, params: ConnectivityParams) -> xr.Dataset:
        """Every variable of ``DESCRIPTIONS`` (and the accuracy ones where ``task`` has labels)."""
        trials = params.eval_trials if task.stochastic else 1
        memory.require(memory.analysis_bytes(ens.size, ens.n, task.n_in, task.n_out, task.n_steps, task.has_labels,
                                             ens.wrec.element_size(), trials, params.eval_policy == "fixed",
                                             min(params.ranks, ens.n), params.shuffles, self.chunk_bytes),
                       str(ens.device), "this analysis", "use fewer --eval-trials, --shuffles or --ranks")
        r = rank_values(params.ranks, ens.n)
        plans = [final_plan(ens), truncation_plan(ens, r, "dw"), truncation_plan(ens, r, "w")]
        plans += [shuffle_plan(ens, params.shuffles, v) for v in SHUFFLE_VARIANTS]
        loss_kind = ds.attrs.get("loss_kind", "mse")
        results = run_plans(ens, task, plans, params.eval_trials, params.eval_policy, self.chunk_bytes,
                            self.progress, loss_kind, params.eval_noise)
        (final, final_acc), (tdw, tdw_acc), (tw, tw_acc), *shuffled = results
        shuf = [value for value, _ in shuffled]
        e, threshold = ens.size, params.threshold
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
            coords={**net_coords(ens), "rank": r, "shuffle": np.arange(params.shuffles), **spec.coords},
        )
        out["functional_rank"] = ("net", functional_rank(out.trunc_loss_dw, threshold).values)
        out["rel_shuffle_loss"] = ("net", out.shuffle_loss.mean("shuffle").values / loss0)
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
        for name in self.variables_for(task):
            out[name].attrs = {**({"loss": loss_kind} if "loss" in name else {}),
                               **({"note": notes[name]} if name in notes else {})}
        return out[list(self.variables_for(task))]


