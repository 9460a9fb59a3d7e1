"""Forward and hand-written backward passes of an ensemble of rate RNNs.

Dynamics (SPEC 1.1, docs/model.md), with r = phi(x):
    x[k+1] = (1 - dt) x[k] + dt (W r[k] + Win^T u[k] + b) + n[k],   z[k] = Wout^T phi(x[k+1])
or, reading the state (``readout_from="state"``, Schuessler et al. 2024), z[k] = Wout^T x[k+1];
where the optional state noise n[k] (already scaled) and initial-state noise are given by the
caller, and input noise is part of the inputs, so the backward pass is the same with or without.

Kernel layout is ``(E, K, B, C)``: ensemble first, then time, then trials. Autograd is avoided
on purpose: recording a graph for K steps of E networks costs more memory traffic than the
arithmetic. Instead the rates, inputs and a constant 1 are kept side by side in one
"augmented" buffer ``A[e, k] = [phi(x[k]), u[k], 1]`` so that

- each forward step is ONE batched matmul, ``x[k+1] = (1-dt) x[k] + A[:, k] @ dt [W^T; Win; b]``;
- each backward step is one batched matmul with W (plus a tiny one with Wout);
- all weight gradients (W, Win, b at once) are ONE large matmul over every (step, trial) pair,
  ``D^T A`` with D[e, k] = dL/dx[k+1], which runs near the machine's matmul peak.

phi'(x) is recovered from the stored rates (1 - r^2 for tanh, r > 0 for relu, 1 - exp(-r) for
softplus), so states are never stored, except x[1..K] for a readout from the state (its output
and Wout gradient need x itself, which the rates give back only imprecisely where tanh saturates).
A :class:`Workspace` keeps the large buffers from one epoch to the next: on a CPU each fresh
allocation of that size comes back from the OS as new pages that must be faulted in again
(measured in docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from randstruct.errors import UserInputError

NONLINEARITIES = ("tanh", "linear", "relu", "softplus")


def check_nonlinearity(nonlinearity: str) -> None:
    if nonlinearity not in NONLINEARITIES:
        raise UserInputError(f"unknown nonlinearity {nonlinearity!r}; allowed: {', '.join(NONLINEARITIES)}")


@dataclass
class Trace:
    """What the backward pass needs from the forward pass."""

    aug: torch.Tensor  # (E, K+1, B, width): [phi(x[k]), u[k], 1, zero padding]
    outputs: torch.Tensor  # (E, K, B, n_out)
    n_in: int
    states: torch.Tensor | None = None  # (E, K, B, N): x[1..K], kept for a readout from the state


class Workspace:
    """Buffers reused by successive calls with the same shapes (what a call returns aliases them)."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def empty(self, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._buffers[name] = like.new_empty(shape)
        return buf


def _empty(workspace: Workspace | None, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    return like.new_empty(shape) if workspace is None else workspace.empty(name, shape, like)


CACHE_BUDGET = 12 * 2**20  # bytes of weights that one CPU kernel call reads at every step


def member_chunks(n_net: int, n: int, n_in: int, itemsize: int, device) -> list[slice]:
    """Members per kernel call, as balanced slices of the ensemble axis.

    On a CPU the weights one call reads at every step (forward and backward factors) should stay
    in cache instead of being streamed from memory at every step (the gain is measured in
    docs/performance.md; results are bitwise equal). On an accelerator one call for all.
    """
    if torch.device(device).type != "cpu":
        return [slice(0, n_net)]
    per_member = (_width(n, n_in) + n) * n * itemsize
    count = -(-n_net // max(4, CACHE_BUDGET // per_member))
    bounds = [round(i * n_net / count) for i in range(count + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


ALIGN = 16  # pad the augmented width to whole 64-byte cache lines: odd row strides slow the matmuls


def _width(n: int, n_in: int) -> int:
    return -(-(n + n_in + 1) // ALIGN) * ALIGN


def _augmented_weights(wi, wrec, b, dt):
    """dt [W^T; Win; b; 0] -> (E, width, N), the right factor of every forward step."""
    n_net, n_in, n = wi.shape
    pad = wrec.new_zeros((n_net, _width(n, n_in) - n - n_in - 1, n))
    return torch.cat([wrec.transpose(1, 2), wi, b[:, None, :], pad], dim=1).mul_(dt)


def _rates_view(aug: torch.Tensor, n: int, first: int, last: int) -> torch.Tensor:
    """phi(x[first:last]) as an (E, (last-first) B, N) matrix view (no copy)."""
    e, _, b, _ = aug.shape
    return aug[:, first:last, :, :n].reshape(e, (last - first) * b, n)


def _phi(x: torch.Tensor, nonlinearity: str, out: torch.Tensor) -> None:
    if nonlinearity == "tanh":
        torch.tanh(x, out=out)
    elif nonlinearity == "relu":
        torch.clamp_min(x, 0.0, out=out)
    elif nonlinearity == "softplus":
        torch.logaddexp(x, x.new_zeros(()), out=out)  # log(1 + e^x) without overflow
    else:
        out.copy_(x)


READOUTS_FROM = ("rates", "state")


def forward(inputs, wi, wrec, wo, b, x0, dt: float, nonlinearity: str, keep_trace: bool = True,
            workspace: Workspace | None = None, x0_noise=None, rec_noise=None, readout_from: str = "rates",
            keep_states: bool = False):
    """Simulate on ``inputs`` (E, K, B, n_in); the outputs read phi(x) or (``readout_from="state"``) x.

    With ``keep_trace`` returns a :class:`Trace` (for training; its states x[1..K] kept when the
    output reads them or ``keep_states`` asks); otherwise only the outputs (E, K, B, n_out),
    holding two steps in memory (for evaluating large ensembles).
    ``x0_noise`` (E, 1, B, N) is added to the initial state of every trial and ``rec_noise``
    (E, K, B, N) step k to x[k+1], both already scaled.
    """
    n_net, n_steps, batch, n_in = inputs.shape
    n = wrec.shape[-1]
    m = _augmented_weights(wi, wrec, b, dt)
    width = _width(n, n_in)
    held = n_steps + 1 if keep_trace else 2  # evaluation cycles through two rows
    aug = _empty(workspace, "aug", (n_net, held, batch, width), inputs)
    aug[..., n + n_in] = 1
    aug[..., n + n_in + 1:] = 0
    from_state = readout_from == "state"
    keep_states = keep_trace and (from_state or keep_states)
    if keep_trace:
        aug[:, :n_steps, :, n:n + n_in] = inputs
        aug[:, n_steps, :, n:n + n_in] = 0
        states = _empty(workspace, "states", (n_net, n_steps, batch, n), inputs) if keep_states else None
    else:
        outputs = inputs.new_empty((n_net, n_steps, batch, wo.shape[-1]))
    x = x0[:, None, :].repeat(1, batch, 1)  # updated in place: never a view of x0 (batch 1)
    if x0_noise is not None:
        x.add_(x0_noise.reshape(n_net, batch, n))
    # every step's views made at once: indexing inside the loop is a visible cost for small ensembles
    rows, rates = aug.unbind(1), aug[..., :n].unbind(1)
    for k in range(n_steps + 1):
        rate = rates[k % held]
        if k:
            # a strided row is a fine matmul input (only strided outputs are slow on a CPU)
            x.baddbmm_(rows[(k - 1) % held], m, beta=1.0 - dt)
            if rec_noise is not None:
                x.add_(rec_noise[:, k - 1])
            if keep_states:
                states[:, k - 1].copy_(x)
        _phi(x, nonlinearity, rate)
        if not keep_trace:
            if k < n_steps:
                rows[k % held][..., n:n + n_in] = inputs[:, k]
            if k:
                torch.bmm(x if from_state else rate, wo, out=outputs[:, k - 1])
    if not keep_trace:
        return outputs
    read = states.view(n_net, n_steps * batch, n) if from_state else _rates_view(aug, n, 1, n_steps + 1)
    outputs = torch.bmm(read, wo)
    return Trace(aug, outputs.view(n_net, n_steps, batch, -1), n_in, states)


def masked_mse(outputs, targets, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member loss 1/2 sum M (z - zhat)^2 / sum M (SPEC 1.3), and dL_e/dz = M (z - zhat) / sum M.

    Weights M other than 0 and 1 weigh the squared errors (not the errors before squaring), so the
    recorded loss is the objective whose gradient is taken; for 0/1 masks both forms agree bitwise.
    """
    count = mask.sum(dim=(1, 2, 3)).clamp_min(1.0)  # (E,)
    # a select, not a product: a NaN target outside the mask must not reach the loss
    diff = torch.where(mask != 0, outputs - targets, 0.0)
    err = diff * mask
    loss = 0.5 * (err * diff).sum(dim=(1, 2, 3)) / count
    return loss, err.div_(count[:, None, None, None])


def masked_cross_entropy(outputs, targets, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member loss -sum M log softmax(z)[label] / sum M over scored steps, and dL_e/dz.

    The label of a step is the argmax of its one-hot ``targets`` (what a task with labels
    builds); a step is scored where ``mask`` (any channel) is nonzero, so the count is of steps,
    not of step-channel pairs. dL/dz = M (softmax(z) - onehot) / count: the only part of the
    backward pass that differs from the masked MSE.
    """
    weight = mask.amax(dim=-1, keepdim=True)  # (E, K, B, 1)
    count = weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
    labels = targets.argmax(dim=-1, keepdim=True)
    logp = torch.log_softmax(outputs, dim=-1)
    loss = -(logp.gather(-1, labels) * weight).sum(dim=(1, 2, 3)) / count
    grad = logp.exp_().scatter_add_(-1, labels, torch.full_like(weight, -1.0))
    return loss, grad.mul_(weight / count[:, None, None, None])


LOSSES = {"mse": masked_mse, "cross_entropy": masked_cross_entropy}


def decision_accuracy(outputs, targets, decision) -> torch.Tensor:
    """Per-member fraction of trials whose choice is right: the argmax over channels of the outputs
    summed over the trial's decision steps against the argmax of the targets summed the same way.
    Trials without decision steps are not counted; a member with none gets NaN."""
    chosen = (outputs * decision).sum(dim=1).argmax(dim=-1)  # (E, B)
    label = (targets * decision).sum(dim=1).argmax(dim=-1)
    has = decision.sum(dim=(1, 3)) > 0
    right = ((chosen == label) & has).sum(dim=1).to(outputs.dtype)
    return right / has.sum(dim=1).to(outputs.dtype)


def backward(trace: Trace, d_out, wrec, wo, dt: float, nonlinearity: str, need=None,
             workspace: Workspace | None = None, rate_coef: float = 0.0):
    """Gradients of sum_e L_e for the parameters named in ``need`` (default: all five).

    ``rate_coef`` c adds the gradient of (c / 2) sum_k>=1 |phi(x[k])|^2 to L_e (a penalty on the
    rates: c = 2 lambda / (K B N) for lambda times their mean square). A trace with states was
    read from the state: the readout term of dL/dx[k] then bypasses phi'(x[k]).
    """
    need = {"wi", "wrec", "wo", "b", "x0"} if need is None else set(need)
    aug = trace.aug
    n_net, n_steps, batch, n_out = d_out.shape
    n = wrec.shape[-1]
    dtw, wo_t = wrec * dt, wo.transpose(1, 2)
    dz = d_out.transpose(0, 1).contiguous()  # (K, E, B, n_out): contiguous per step
    deltas = _empty(workspace, "deltas", (n_net, n_steps, batch, n), d_out)
    back = d_out.new_empty((n_net, batch, n))  # what reaches x[k] through phi(x[k])
    squares = d_out.new_empty((n_net, batch, n))
    rates, delta_rows, dzs = aug[..., :n].unbind(1), deltas.unbind(1), dz.unbind(0)
    from_state = trace.states is not None

    def times_phi_prime(k):
        if rate_coef and k:
            back.add_(rates[k], alpha=rate_coef)
        if nonlinearity == "tanh":
            back.addcmul_(back, torch.mul(rates[k], rates[k], out=squares), value=-1.0)
        elif nonlinearity == "relu":
            back.mul_(rates[k] > 0)
        elif nonlinearity == "softplus":  # phi' = sigmoid(x) = 1 - exp(-r)
            back.mul_(torch.expm1(torch.neg(rates[k], out=squares), out=squares)).neg_()
        return back

    # dL/dx[K] only has the readout term of output K-1 (and the rate penalty).
    if from_state:
        back.zero_()
        torch.baddbmm(times_phi_prime(n_steps), dzs[n_steps - 1], wo_t, out=delta_rows[n_steps - 1])
    else:
        torch.bmm(dzs[n_steps - 1], wo_t, out=back)
        delta_rows[n_steps - 1].copy_(times_phi_prime(n_steps))
    last = 0 if "x0" in need else 1  # dL/dx[0] only matters for x0's gradient
    for k in range(n_steps - 1, last - 1, -1):
        # dL/dx[k] = (1-dt) dL/dx[k+1] + phi'(x[k]) (dt W^T dL/dx[k+1] + Wout dL/dz[k-1]),
        # the readout term outside phi'(x[k]) when it reads the state
        after = delta_rows[k]
        torch.bmm(after, dtw, out=back)
        if k and not from_state:  # x[0] feeds no output
            back.baddbmm_(dzs[k - 1], wo_t)
        times_phi_prime(k)
        if k and from_state:
            back.baddbmm_(dzs[k - 1], wo_t)
        if k:
            torch.add(back, after, alpha=1.0 - dt, out=delta_rows[k - 1])
        else:
            back.add_(after, alpha=1.0 - dt)

    grads = {}
    if "x0" in need:
        grads["x0"] = back.sum(dim=1)
    flat_d = deltas.view(n_net, n_steps * batch, n)
    if need & {"wrec", "wi", "b"}:
        full = torch.bmm(flat_d.transpose(1, 2), aug[:, :n_steps].reshape(n_net, n_steps * batch, -1)).mul_(dt)
        if "wrec" in need:
            grads["wrec"] = full[:, :, :n].contiguous()
        if "wi" in need:
            grads["wi"] = full[:, :, n:n + trace.n_in].transpose(1, 2).contiguous()
        if "b" in need:
            grads["b"] = full[:, :, n + trace.n_in].contiguous()
    if "wo" in need:
        flat_dz = d_out.reshape(n_net, n_steps * batch, -1)
        read = trace.states.view(n_net, n_steps * batch, n) if from_state else _rates_view(aug, n, 1, n_steps + 1)
        grads["wo"] = torch.bmm(read.transpose(1, 2), flat_dz)
    return grads
