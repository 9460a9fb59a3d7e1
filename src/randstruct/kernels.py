"""Forward and hand-written backward passes of an ensemble of rate RNNs.

Dynamics (SPEC 1.1), with r = phi(x):
    x[k+1] = (1 - dt) x[k] + dt (W r[k] + Win^T u[k] + b),   z[k] = Wout^T phi(x[k+1])

Kernel layout is ``(E, K, B, C)``: ensemble first, then time, then trials. Autograd is avoided
on purpose: recording a graph for K steps of E networks costs more memory traffic than the
arithmetic. Instead the rates, inputs and a constant 1 are kept side by side in one
"augmented" buffer ``A[e, k] = [phi(x[k]), u[k], 1]`` so that

- each forward step is ONE batched matmul, ``x[k+1] = (1-dt) x[k] + A[:, k] @ dt [W^T; Win; b]``;
- each backward step is one batched matmul with W (plus a tiny one with Wout);
- all weight gradients (W, Win, b at once) are ONE large matmul over every (step, trial) pair,
  ``D^T A`` with D[e, k] = dL/dx[k+1], which runs near the machine's matmul peak.

phi'(x) is recovered from the stored rates (1 - r^2 for tanh), so states are never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NONLINEARITIES = ("tanh", "linear")


@dataclass
class Trace:
    """What the backward pass needs from the forward pass."""

    aug: torch.Tensor  # (E, K+1, B, N + n_in + 1): [phi(x[k]), u[k], 1]
    outputs: torch.Tensor  # (E, K, B, n_out)


def _augmented_weights(wi, wrec, b, dt):
    """dt [W^T; Win; b] -> (E, N + n_in + 1, N), the right factor of every forward step."""
    return torch.cat([wrec.transpose(1, 2), wi, b[:, None, :]], dim=1).mul_(dt)


def _rates_view(aug: torch.Tensor, n: int, first: int, last: int) -> torch.Tensor:
    """phi(x[first:last]) as an (E, (last-first) B, N) matrix view (no copy)."""
    e, _, b, _ = aug.shape
    return aug[:, first:last, :, :n].reshape(e, (last - first) * b, n)


def forward(inputs, wi, wrec, wo, b, x0, dt: float, nonlinearity: str, keep_trace: bool = True):
    """Simulate on ``inputs`` (E, K, B, n_in).

    With ``keep_trace`` returns a :class:`Trace` (for training); otherwise only the outputs
    (E, K, B, n_out), holding a single state in memory (for evaluating large ensembles).
    """
    n_net, n_steps, batch, n_in = inputs.shape
    n = wrec.shape[-1]
    tanh = nonlinearity == "tanh"
    m = _augmented_weights(wi, wrec, b, dt)
    x = x0[:, None, :].expand(n_net, batch, n).contiguous()
    if keep_trace:
        aug = inputs.new_empty((n_net, n_steps + 1, batch, n + n_in + 1))
        aug[:, :n_steps, :, n:n + n_in] = inputs
        aug[:, n_steps, :, n:n + n_in] = 0
        aug[..., -1] = 1
        for k in range(n_steps + 1):
            if k:
                x = torch.baddbmm(x, aug[:, k - 1], m, beta=1.0 - dt)
            if tanh:
                torch.tanh(x, out=aug[:, k, :, :n])
            else:
                aug[:, k, :, :n] = x
        outputs = torch.bmm(_rates_view(aug, n, 1, n_steps + 1), wo)
        return Trace(aug, outputs.view(n_net, n_steps, batch, -1))
    outputs = inputs.new_empty((n_net, n_steps, batch, wo.shape[-1]))
    step = inputs.new_empty((n_net, batch, n + n_in + 1))
    step[..., -1] = 1
    for k in range(n_steps):
        if tanh:
            torch.tanh(x, out=step[..., :n])
        else:
            step[..., :n] = x
        step[..., n:n + n_in] = inputs[:, k]
        x = torch.baddbmm(x, step, m, beta=1.0 - dt)
        torch.bmm(torch.tanh(x) if tanh else x, wo, out=outputs[:, k])
    return outputs


def masked_mse(outputs, targets, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member loss 1/2 sum M (z - zhat)^2 / sum M (SPEC 1.3), and dL_e/dz."""
    count = mask.sum(dim=(1, 2, 3)).clamp_min(1.0)  # (E,)
    err = (outputs - targets) * mask
    loss = 0.5 * (err * err).sum(dim=(1, 2, 3)) / count
    return loss, err.div_(count[:, None, None, None])


def backward(trace: Trace, d_out, wrec, wo, dt: float, nonlinearity: str, need=None):
    """Gradients of sum_e L_e for the parameters named in ``need`` (default: all five)."""
    need = {"wi", "wrec", "wo", "b", "x0"} if need is None else set(need)
    aug = trace.aug
    n_net, n_steps, batch, _ = d_out.shape
    n = wrec.shape[-1]
    tanh = nonlinearity == "tanh"
    wdt = wrec * dt
    wo_t = wo.transpose(1, 2)
    deltas = d_out.new_empty((n_net, n_steps, batch, n))

    def through_step(delta, k, seed_k):
        """phi'(x[k]) * (delta @ dt W + readout seed): the part of dL/dx[k] coming via x[k+1]."""
        back = torch.bmm(d_out[:, seed_k], wo_t) if seed_k is not None else None
        back = torch.bmm(delta, wdt) if back is None else torch.baddbmm(back, delta, wdt)
        if tanh:
            r = aug[:, k, :, :n]
            back.mul_(1.0 - r * r)
        return back

    # delta for x[K] only has the readout term of output K-1.
    last = torch.bmm(d_out[:, n_steps - 1], wo_t)
    if tanh:
        r = aug[:, n_steps, :, :n]
        last.mul_(1.0 - r * r)
    deltas[:, n_steps - 1] = last
    for k in range(n_steps - 1, 0, -1):
        # dL/dx[k] = (1-dt) dL/dx[k+1] + phi'(x[k]) (dt W^T dL/dx[k+1] + Wout dL/dz[k-1])
        back = through_step(deltas[:, k], k, k - 1)
        torch.add(back, deltas[:, k], alpha=1.0 - dt, out=deltas[:, k - 1])

    grads = {}
    flat_d = deltas.view(n_net, n_steps * batch, n)
    if need & {"wrec", "wi", "b"}:
        full = torch.bmm(flat_d.transpose(1, 2), aug[:, :n_steps].reshape(n_net, n_steps * batch, -1)).mul_(dt)
        if "wrec" in need:
            grads["wrec"] = full[:, :, :n].contiguous()
        if "wi" in need:
            grads["wi"] = full[:, :, n:-1].transpose(1, 2).contiguous()
        if "b" in need:
            grads["b"] = full[:, :, -1].contiguous()
    if "wo" in need:
        flat_dz = d_out.reshape(n_net, n_steps * batch, -1)
        grads["wo"] = torch.bmm(_rates_view(aug, n, 1, n_steps + 1).transpose(1, 2), flat_dz)
    if "x0" in need:
        back = through_step(deltas[:, 0], 0, None)
        grads["x0"] = back.add_(deltas[:, 0], alpha=1.0 - dt).sum(dim=1)
    return grads
