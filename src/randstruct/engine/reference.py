"""A plain, one-network-at-a-time PyTorch implementation of the paper's RNN.

Written the way a typical user would (autograd through a Python loop over time, torch.optim),
straight from SPEC 1. It is the oracle the fast ensemble kernels are tested against and the
serial baseline the benchmarks compare with; it is not meant to be fast.
"""

from __future__ import annotations

import torch


PHI = {"tanh": torch.tanh, "linear": lambda x: x, "relu": torch.relu,
       "softplus": lambda x: torch.logaddexp(x, torch.zeros_like(x))}  # log(1 + e^x) without overflow


def _phi(x: torch.Tensor, nonlinearity: str) -> torch.Tensor:
    return PHI[nonlinearity](x)


def run(inputs, wi, wrec, wo, b, x0, dt: float, nonlinearity: str, x0_noise=None, rec_noise=None,
        return_rates: bool = False, readout_from: str = "rates"):
    """Outputs (B, K, N_out) of one network on batch-first ``inputs`` (B, K, N_in), read from the
    rates phi(x[k+1]) or (``readout_from="state"``) from x[k+1]; ``x0_noise`` (B, N) and
    ``rec_noise`` (B, K, N) are added to x[0] and to x[k+1], already scaled."""
    x = x0.expand(inputs.shape[0], -1)
    if x0_noise is not None:
        x = x + x0_noise
    outputs, rates = [], []
    for k in range(inputs.shape[1]):
        x = (1 - dt) * x + dt * (_phi(x, nonlinearity) @ wrec.T + inputs[:, k] @ wi + b)
        if rec_noise is not None:
            x = x + rec_noise[:, k]
        rates.append(_phi(x, nonlinearity))
        outputs.append((x if readout_from == "state" else rates[-1]) @ wo)
    if return_rates:
        return torch.stack(outputs, dim=1), torch.stack(rates, dim=1)
    return torch.stack(outputs, dim=1)


def loss(inputs, targets, mask, wi, wrec, wo, b, x0, dt: float, nonlinearity: str) -> torch.Tensor:
    """Masked MSE with the factor 1/2 (SPEC 1.3)."""
    z = run(inputs, wi, wrec, wo, b, x0, dt, nonlinearity)
    return 0.5 * (mask * (z - targets) ** 2).sum() / mask.sum()


def train(params: dict[str, torch.Tensor], trainable, batches, dt: float, nonlinearity: str,
          lr: float, optimizer: str = "adam") -> list[float]:
    """Train one network in place on an iterable of (inputs, targets, mask); returns the losses."""
    leaves = {k: v.detach().clone().requires_grad_(k in trainable) for k, v in params.items()}
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_cls([leaves[k] for k in trainable], lr=lr)
    losses = []
    for inputs, targets, mask in batches:
        opt.zero_grad()
        value = loss(inputs, targets, mask, leaves["wi"], leaves["wrec"], leaves["wo"], leaves["b"],
                     leaves["x0"], dt, nonlinearity)
        value.backward()
        opt.step()
        losses.append(value.item())
    for k in params:
        params[k] = leaves[k].detach()
    return losses
