"""Regularization (docs/model.md): lambda times a mean of squares, the convention of Yang et al.
2019 and PsychRNN, per member. ``l2_w`` on the recurrent matrix W, ``l2_dw`` on W - W0 (Yang et
al.'s ``l2_weight_init``), ``l2_rates`` on the rates phi(x[k]), k = 1..K, over trials, steps and
units. The values are recorded apart from the task loss; the gradients join the task's."""

from __future__ import annotations

import torch

from randstruct.engine.config import TrainConfig
from randstruct.engine.kernels import Trace


def weight_penalty(w: torch.Tensor, w0: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(value (E,), dP/dW (E, N, N) or None when neither weight penalty is on)."""
    count = w.shape[-1] * w.shape[-2]
    value, grad = w.new_zeros(w.shape[0]), None
    for lam, m in ((config.l2_w, w), (config.l2_dw, w - w0 if config.l2_dw else None)):
        if lam:
            value = value + lam * m.square().sum(dim=(1, 2)) / count
            grad = m * (2 * lam / count) if grad is None else grad.add_(m, alpha=2 * lam / count)
    return value, grad


def rate_penalty(trace: Trace, n: int, lam: float) -> torch.Tensor:
    """lambda mean(phi(x[k])^2) over k = 1..K, trials and units, per member (E,)."""
    rates = trace.aug[:, 1:, :, :n]
    return lam * rates.square().sum(dim=(1, 2, 3)) / rates[0].numel()


def rate_coef(lam: float, n_steps: int, batch: int, n: int) -> float:
    """The kernels' ``rate_coef`` for :func:`rate_penalty`: its gradient is 2 lambda r / (K B N)."""
    return 2 * lam / (n_steps * batch * n)
