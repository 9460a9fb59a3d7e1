"""The ``alignment`` (aligned or oblique, Schuessler et al. 2024) and ``regime`` (rich or lazy)
analysis plug-ins, per member on its evaluation trials (docs/regimes.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from randstruct.analysis import activity, measures
from randstruct.analysis.base import Analysis
from randstruct.analysis.evaluation import check_count, check_flag, check_time, net_coords
from randstruct.engine.seeding import member_rng
from randstruct.errors import UserInputError

LEVEL = 0.9  # D_x,90 and D_fit,90
TRAIN = 0.75  # D_fit,90: ridge fitted on the first 3/4 of each member's trials, R^2 on the rest
ALPHAS = torch.logspace(-3, 6, 20, dtype=torch.float64)  # its penalties (Schuessler et al. 2024's grid)


def _check_common(p) -> None:
    check_count(p.eval_trials, "eval_trials")
    check_time(p.grace, "grace")
    check_flag(p.eval_noise, "eval_noise")


@dataclass(frozen=True)
class AlignmentParams:
    """``eval_trials`` of each member's fixed evaluation set; ``grace``: the initial transient
    (units of tau) left out; ``eval_noise``: with the training noise; pulses of norm
    ``pulse_size`` on the state, after the grace time, along the readout, the ``n_pcs`` leading
    components and ``n_random`` random directions, on the first ``pulse_trials`` trials, the output's
    response measured from ``pulse_delay`` (tau) after the pulse to the trial's end (0: at once;
    later, only what the dynamics keep of the pulse); D_fit,90 is sought among the ``fit_pcs``
leading components (the authors' 30)."""

    eval_trials: int = 64
    grace: float = 10.0
    eval_noise: bool = False
    pulse_size: float = 1.0
    n_pcs: int = 3
    n_random: int = 10
    pulse_trials: int = 16
    pulse_delay: float = 0.0
    fit_pcs: int = 30

    def __post_init__(self) -> None:
        _check_common(self)
        for name in ("n_pcs", "n_random", "pulse_trials", "fit_pcs"):
            check_count(getattr(self, name), name)
        if not (np.isfinite(self.pulse_size) and self.pulse_size > 0):
            raise UserInputError(f"pulse_size must be > 0, got {self.pulse_size}")
        check_time(self.pulse_delay, "pulse_delay")


class Alignment(Analysis):
    """Aligned or oblique: how much of the activity's variance the output reads."""

    name = "alignment"
    Params = AlignmentParams
    variables = {
        "align_rho": "generalized correlation ||W_out^T X^T||_F / sqrt(||W_out^T W_out||_F ||X^T X||_F) of the "
                     "readout and the activity X (samples x units, after the grace time), every row of both centered "
                     "over the units (Schuessler et al. 2024)",
        "align_norm_wo": "||W_out||_F",
        "align_norm_activity": "root mean square over samples of |X|, after the grace time",
        "align_dim_x90": "D_x,90: number of principal components for 90 % of the activity's variance",
        "align_dim_fit90": "D_fit,90: fewest leading principal components (of the fit_pcs first) from which a "
                           "ridge regression fitted on 3/4 of the trials predicts the outputs of the other 1/4 "
                           "with R^2 >= 0.9; -1 if none",
        "align_var_explained": "cumulative fraction of the activity's variance in the leading pc components",
        "align_fit_r2": "held-out R^2 of the outputs from the leading pc components (NaN beyond fit_pcs)",
        "align_pulse_readout": "RMS change of the output from pulse_delay after a state pulse of size pulse_size "
                               "along a readout column (mean over columns), per unit pulse size, noiseless",
        "align_pulse_pc": "as align_pulse_readout, along the leading principal components of the activity",
        "align_pulse_random": "as align_pulse_readout, mean over n_random random unit directions "
                              "(member_rng(seed, g, 'alignment', 1))",
    }

    def identity(self, params, task, data) -> dict:
        return {**super().identity(params, task, data),
                "trials": "each member's fixed evaluation set, member_rng(seed, g, 'eval')",
                "activity": activity.WHAT}

    def compute(self, ens, task, data, params: AlignmentParams) -> xr.Dataset:
        batches = activity.member_batches(ens, task, params.eval_trials)
        act = activity.simulate(ens, task, batches, params.grace, params.eval_noise)
        x, n = act.x, ens.n
        wo = ens.wo.double().cpu()
        u, s, vh = measures.pca(x)
        var = measures.explained(s, n)
        trials = len(batches[0].inputs)
        r2 = measures.heldout_fit_r2(u * s[..., None, :], act.z, max(1, int(TRAIN * trials)) * (x.shape[-2] // trials),
                                     params.fit_pcs, n, ALPHAS)
        pulses = self._pulses(ens, task, params, wo, vh, batches)
        return xr.Dataset({
            "align_rho": ("net", measures.gen_corr(wo.transpose(1, 2), x).numpy()),
            "align_norm_wo": ("net", torch.linalg.matrix_norm(wo).numpy()),
            "align_norm_activity": ("net", x.pow(2).sum(-1).mean(-1).sqrt().numpy()),
            "align_dim_x90": ("net", measures.first_reaching(var, LEVEL).numpy()),
            "align_dim_fit90": ("net", measures.first_reaching(r2, LEVEL).numpy()),
            "align_var_explained": (("net", "pc"), var.numpy()),
            "align_fit_r2": (("net", "pc"), r2.numpy()),
            **pulses,
        }, coords={**net_coords(ens), "pc": np.arange(1, n + 1), "pulse_pc": np.arange(1, params.n_pcs + 1)})

    def _pulses(self, ens, task, params: AlignmentParams, wo: torch.Tensor, vh: torch.Tensor, batches) -> dict:
        """Output responses to state pulses, every (member, direction) one member of a larger ensemble."""
        e, n = ens.size, ens.n
        n_pcs = min(params.n_pcs, vh.shape[-2])
        rand = np.stack([member_rng(int(sd), float(g), "alignment", 1).standard_normal((params.n_random, n))
                         for g, sd in zip(ens.g, ens.seed)])
        dirs = torch.cat([torch.zeros(e, 1, n, dtype=torch.float64),  # the unperturbed reference
                          wo.transpose(1, 2), vh[:, :n_pcs],
                          torch.as_tensor(rand)], 1)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        n_dir = dirs.shape[1]
        skip = activity.grace_steps(task, params.grace)
        late = skip + int(np.floor(params.pulse_delay / task.dt + 1e-9))
        if late >= task.n_steps:
            raise UserInputError(f"grace {params.grace:g} + pulse_delay {params.pulse_delay:g} leave no step of task "
                                 f"{task.name!r} (duration {task.n_steps * task.dt:g}); pass smaller ones")
        idx = np.repeat(np.arange(e), n_dir)
        many = ens.select(idx)
        # the pulse enters as one extra input channel of weight d, on for one step: x gains size * d
        d = dirs.reshape(e * n_dir, 1, n).to(ens.dtype).to(ens.device)
        many = many.replace(wi=torch.cat([many.wi, d], 1))
        u = np.stack([batches[i].inputs[:params.pulse_trials] for i in idx])
        pulse = np.zeros(u.shape[:-1] + (1,), u.dtype)
        pulse[:, :, skip] = params.pulse_size / task.dt
        z = torch.as_tensor(many.simulate(np.concatenate([u, pulse], -1), task.dt)).double().cpu()
        z = z.reshape(e, n_dir, *z.shape[1:])[:, :, :, late:]
        rms = (z[:, 1:] - z[:, :1]).pow(2).mean((2, 3, 4)).sqrt() / params.pulse_size
        k = wo.shape[-1]
        pc = torch.full((e, params.n_pcs), float("nan"), dtype=torch.float64)
        pc[:, :n_pcs] = rms[:, k:k + n_pcs]
        return {"align_pulse_readout": ("net", rms[:, :k].mean(1).numpy()),
                "align_pulse_pc": (("net", "pulse_pc"), pc.numpy()),
                "align_pulse_random": ("net", rms[:, k + n_pcs:].mean(1).numpy())}


@dataclass(frozen=True)
class RegimeParams:
    """``eval_trials``, ``grace`` and ``eval_noise`` as for ``alignment``."""

    eval_trials: int = 64
    grace: float = 10.0
    eval_noise: bool = False

    def __post_init__(self) -> None:
        _check_common(self)


class Regime(Analysis):
    """Rich or lazy: how far learning moved the weights and the representation."""

    name = "regime"
    Params = RegimeParams
    variables = {
        "regime_rel_dw": "||W - W0||_F / ||W0||_F (NaN where W0 = 0)",
        "regime_rel_dwi": "||W_in - W_in0||_F / ||W_in0||_F",
        "regime_rel_dwo": "||W_out - W_out0||_F / ||W_out0||_F",
        "regime_dw_pr_rank": "participation ratio (sum s^2)^2 / sum s^4 of the singular values of W - W0",
        "regime_cka_init": "linear CKA of the initial and the final network's activity on the same trials (after the "
                           "grace time): 1 = the representation did not change (lazy)",
        "regime_kta": "alignment of the final activity's kernel with the targets: linear CKA of the activity and the "
                      "masked targets on the same samples",
        "regime_kta_init": "as regime_kta for the initial network",
    }

    def identity(self, params, task, data) -> dict:
        return {**super().identity(params, task, data),
                "trials": "each member's fixed evaluation set, member_rng(seed, g, 'eval')",
                "initial": "W0, W_in0, W_out0 with the final bias and initial state", "activity": activity.WHAT}

    def compute(self, ens, task, data, params: RegimeParams) -> xr.Dataset:
        batches = activity.member_batches(ens, task, params.eval_trials)
        final = activity.simulate(ens, task, batches, params.grace, params.eval_noise)
        init = activity.simulate(activity.initial_network(ens, data), task, batches, params.grace, params.eval_noise)
        w0 = ens.w0.double().cpu()
        dw = ens.w.double().cpu() - w0

        def rel(new, old) -> np.ndarray:
            num = np.linalg.norm((np.asarray(new, np.float64) - old).reshape(len(old), -1), axis=1)
            den = np.linalg.norm(np.asarray(old, np.float64).reshape(len(old), -1), axis=1)
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)

        target = final.y * final.m
        return xr.Dataset({
            "regime_rel_dw": ("net", rel(ens.w.double().cpu().numpy(), w0.numpy())),
            "regime_rel_dwi": ("net", rel(ens.wi.double().cpu().numpy(), data.wi0.values.astype(np.float64))),
            "regime_rel_dwo": ("net", rel(ens.wo.double().cpu().numpy(), data.wo0.values.astype(np.float64))),
            "regime_dw_pr_rank": ("net", measures.participation_ratio(torch.linalg.svdvals(dw)).numpy()),
            "regime_cka_init": ("net", measures.linear_cka(init.x, final.x).numpy()),
            "regime_kta": ("net", measures.linear_cka(final.x, target).numpy()),
            "regime_kta_init": ("net", measures.linear_cka(init.x, target).numpy()),
        }, coords=net_coords(ens))
