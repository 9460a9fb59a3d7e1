"""Masked cross-entropy and decision accuracy: the hand-written backward pass (only dL/dz differs
from the MSE) against float64 autograd through an independent plain implementation, and the
accuracy against a per-trial loop."""

import numpy as np
import pytest
import torch

from randstruct.engine import kernels, reference
from randstruct.engine.model import Ensemble, to_kernel_layout
from randstruct.engine.train import TrainConfig, Trainer
from randstruct.tasks import get_task

F64 = torch.float64


def _problem(seed=0, e=3, b=5, k=8, n=7, n_in=2, n_out=3):
    gen = torch.Generator().manual_seed(seed)
    ens = Ensemble.init(n, [0.0, 0.8, 1.7], 1, n_in, n_out, dtype=F64)
    ens.b = torch.randn(e, n, generator=gen, dtype=F64) * 0.3
    u = torch.randn(e, b, k, n_in, generator=gen, dtype=F64)
    labels = torch.randint(0, n_out, (e, b, k), generator=gen)
    targets = torch.nn.functional.one_hot(labels, n_out).to(F64)
    scored = (torch.rand(e, b, k, 1, generator=gen, dtype=F64) > 0.5).to(F64)
    return ens, u, labels, targets, scored.expand(e, b, k, n_out).contiguous()


def _reference_ce(inputs, labels, scored, leaves, dt):
    """Mean over scored steps of -log softmax(z)[label], written from its definition."""
    z = reference.run(inputs, leaves["wi"], leaves["wrec"], leaves["wo"], leaves["b"], leaves["x0"], dt, "tanh")
    nll = torch.logsumexp(z, dim=-1) - z.gather(-1, labels[..., None])[..., 0]
    return (nll * scored).sum() / scored.sum()


@pytest.mark.parametrize("dt", [0.5, 1.0])
def test_cross_entropy_gradients_match_float64_autograd(dt):
    ens, u, labels, targets, mask = _problem()
    lay = [to_kernel_layout(a, ens.size, F64, "cpu") for a in (u, targets, mask)]
    trace = kernels.forward(lay[0], ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, dt, "tanh")
    loss, d_out = kernels.masked_cross_entropy(trace.outputs, lay[1], lay[2])
    grads = kernels.backward(trace, d_out, ens.wrec, ens.wo, dt, "tanh")
    for e in range(ens.size):
        leaves = {k: v[e].clone().requires_grad_() for k, v in ens.params().items()}
        ref = _reference_ce(u[e], labels[e], mask[e, ..., 0], leaves, dt)
        ref.backward()
        torch.testing.assert_close(loss[e], ref.detach(), rtol=1e-12, atol=1e-14)
        for name, leaf in leaves.items():
            torch.testing.assert_close(grads[name][e], leaf.grad, rtol=1e-10, atol=1e-13, msg=name)


def test_cross_entropy_dz_is_softmax_minus_onehot_on_scored_steps():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 4, 3, 5, generator=gen, dtype=F64).requires_grad_()
    labels = torch.randint(0, 5, (2, 4, 3), generator=gen)
    mask = (torch.rand(2, 4, 3, 1, generator=gen, dtype=F64) > 0.3).to(F64).expand(2, 4, 3, 5)
    targets = torch.nn.functional.one_hot(labels, 5).to(F64)
    loss, dz = kernels.masked_cross_entropy(z.detach().clone(), targets, mask)
    auto = torch.nn.functional.cross_entropy(z.reshape(-1, 5), labels.reshape(-1), reduction="none").view(2, 4, 3)
    per = (auto * mask[..., 0]).sum(dim=(1, 2)) / mask[..., 0].sum(dim=(1, 2))
    per.sum().backward()
    torch.testing.assert_close(loss, per.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(dz, z.grad, rtol=1e-12, atol=1e-14)


def test_decision_accuracy_against_a_per_trial_loop():
    gen = torch.Generator().manual_seed(2)
    e, k, b, c = 3, 6, 7, 3
    out = torch.randn(e, k, b, c, generator=gen, dtype=F64)
    labels = torch.randint(0, c, (e, b), generator=gen)
    targets = torch.nn.functional.one_hot(labels, c).to(F64)[:, None].expand(e, k, b, c)
    decision = (torch.rand(e, k, b, 1, generator=gen) > 0.6).to(F64)
    decision[0, :, 2] = 0  # a trial without decision steps is not counted
    acc = kernels.decision_accuracy(out, targets, decision).numpy()
    for m in range(e):
        right, counted = 0, 0
        for t in range(b):
            steps = [s for s in range(k) if decision[m, s, t, 0] > 0]
            if not steps:
                continue
            counted += 1
            right += int(np.argmax(sum(out[m, s, t].numpy() for s in steps)) == labels[m, t].item())
        assert acc[m] == pytest.approx(right / counted, abs=0)


def test_cross_entropy_refuses_a_task_without_labels():
    task = get_task("romo")
    ens = Ensemble.init(8, [0.5], [0], task.n_in, task.n_out)
    with pytest.raises(ValueError, match=r"^loss 'cross_entropy' needs a task with labels .*'romo'"):
        Trainer(ens, task, TrainConfig(epochs=1, loss="cross_entropy"))
    with pytest.raises(ValueError, match=r"^unknown loss 'l1'; allowed: mse, cross_entropy$"):
        TrainConfig(epochs=1, loss="l1")
