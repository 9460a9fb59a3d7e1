"""The hand-written BPTT kernels against float64 autograd through the plain reference model."""

import numpy as np
import pytest
import torch

from randstruct.engine import kernels, reference
from randstruct.engine.model import Ensemble, to_kernel_layout
from randstruct.tasks import get_task

F64 = torch.float64


def _random_problem(nonlinearity, n=7, n_in=2, n_out=3, e=3, b=4, k=9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ens = Ensemble.init(n, [0.0, 0.8, 1.7], 1, n_in, n_out, nonlinearity=nonlinearity, dtype=F64)
    ens.b = torch.randn(e, n, generator=gen, dtype=F64) * 0.3
    ens.x0 = torch.randn(e, n, generator=gen, dtype=F64) * 0.5
    u = torch.randn(e, b, k, n_in, generator=gen, dtype=F64)
    target = torch.randn(e, b, k, n_out, generator=gen, dtype=F64)
    mask = (torch.rand(e, b, k, n_out, generator=gen, dtype=F64) > 0.4).to(F64)
    return ens, u, target, mask


def _kernel_grads(ens, u, target, mask, dt):
    lay = [to_kernel_layout(a, ens.size, F64, "cpu") for a in (u, target, mask)]
    trace = kernels.forward(lay[0], ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, dt, ens.nonlinearity)
    loss, d_out = kernels.masked_mse(trace.outputs, lay[1], lay[2])
    return loss, kernels.backward(trace, d_out, ens.wrec, ens.wo, dt, ens.nonlinearity)


@pytest.mark.parametrize("nonlinearity", ["tanh", "linear"])
@pytest.mark.parametrize("dt", [0.5, 0.1, 1.0])
def test_gradients_match_float64_autograd(nonlinearity, dt):
    ens, u, target, mask = _random_problem(nonlinearity)
    loss, grads = _kernel_grads(ens, u, target, mask, dt)
    for e in range(ens.size):
        leaves = {k: v[e].clone().requires_grad_() for k, v in ens.params().items()}
        ref = reference.loss(u[e], target[e], mask[e], leaves["wi"], leaves["wrec"], leaves["wo"],
                             leaves["b"], leaves["x0"], dt, nonlinearity)
        ref.backward()
        torch.testing.assert_close(loss[e], ref.detach(), rtol=1e-12, atol=1e-14)
        for name, leaf in leaves.items():
            torch.testing.assert_close(grads[name][e], leaf.grad, rtol=1e-10, atol=1e-13, msg=name)


def test_float32_gradients_stay_close_to_float64_autograd():
    """Worst relative error 5.8e-6 with torch.tanh. Cheaper tanh formulas fail here: 2 sigmoid(2x) - 1
    (3.8e-5) and sign(x) (1 - 2 sigmoid(-2|x|)) (5.5e-5) lose the relative precision of small rates."""
    task = get_task("flipflop")
    ens = Ensemble.init(96, [0.0, 0.9, 1.8], 1, task.n_in, task.n_out, dtype=F64)
    batch = task.sample(16, 7)
    u, y, m = (torch.as_tensor(a, dtype=F64) for a in (batch.inputs, batch.targets, batch.mask))
    f32 = {k: v.float() for k, v in ens.params().items()}
    lay = [to_kernel_layout(a, 3, torch.float32, "cpu") for a in (u, y, m)]
    trace = kernels.forward(lay[0], f32["wi"], f32["wrec"], f32["wo"], f32["b"], f32["x0"], task.dt, "tanh")
    _, d_out = kernels.masked_mse(trace.outputs, lay[1], lay[2])
    grads = kernels.backward(trace, d_out, f32["wrec"], f32["wo"], task.dt, "tanh")
    for e in range(3):
        leaves = {k: v[e].clone().requires_grad_() for k, v in ens.params().items()}
        reference.loss(u, y, m, leaves["wi"], leaves["wrec"], leaves["wo"], leaves["b"], leaves["x0"],
                       task.dt, "tanh").backward()
        for name, leaf in leaves.items():
            err = torch.linalg.vector_norm(grads[name][e].double() - leaf.grad) / torch.linalg.vector_norm(leaf.grad)
            assert err < 3e-5, (e, name, err.item())


def test_gradient_matches_finite_differences():
    ens, u, target, mask = _random_problem("tanh", seed=3)
    _, grads = _kernel_grads(ens, u, target, mask, 0.5)
    eps = 1e-6
    for name, idx in [("wrec", (1, 2, 3)), ("wi", (2, 1, 4)), ("wo", (0, 5, 2)), ("x0", (1, 0)), ("b", (2, 6))]:
        plus, minus = ens.clone(), ens.clone()
        getattr(plus, name)[idx] += eps
        getattr(minus, name)[idx] -= eps
        fd = (_kernel_grads(plus, u, target, mask, 0.5)[0] - _kernel_grads(minus, u, target, mask, 0.5)[0]) / (2 * eps)
        assert fd[idx[0]].item() == pytest.approx(grads[name][idx].item(), rel=1e-6, abs=1e-10), name


@pytest.mark.parametrize("b", [1, 4])
def test_kernels_leave_their_arguments_untouched(b):
    """The state is updated in place; with batch 1 a careless copy of x0 would alias it."""
    ens, u, target, mask = _random_problem("tanh", b=b, seed=4)
    lay = [to_kernel_layout(a, ens.size, F64, "cpu") for a in (u, target, mask)]
    before = [t.clone() for t in (*ens.params().values(), *lay)]
    kernels.forward(lay[0], ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, 0.5, "tanh", keep_trace=False)
    trace = kernels.forward(lay[0], ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, 0.5, "tanh")
    _, d_out = kernels.masked_mse(trace.outputs, lay[1], lay[2])
    d_copy = d_out.clone()
    kernels.backward(trace, d_out, ens.wrec, ens.wo, 0.5, "tanh")
    assert torch.equal(d_out, d_copy)
    for old, new in zip(before, (*ens.params().values(), *lay)):
        assert torch.equal(old, new)


def test_workspace_reuse_changes_nothing():
    """A reused workspace gives the same bits as fresh buffers, for new data and for new shapes."""
    ws = kernels.Workspace()
    for seed, b in [(0, 4), (1, 4), (2, 6)]:
        ens, u, target, mask = _random_problem("tanh", b=b, seed=seed)
        lay = [to_kernel_layout(a, ens.size, F64, "cpu") for a in (u, target, mask)]
        results = []
        for workspace in (None, ws):
            trace = kernels.forward(lay[0], ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, 0.5, "tanh",
                                    workspace=workspace)
            _, d_out = kernels.masked_mse(trace.outputs, lay[1], lay[2])
            results.append((trace.outputs, kernels.backward(trace, d_out, ens.wrec, ens.wo, 0.5, "tanh",
                                                            workspace=workspace)))
        (out_a, grads_a), (out_b, grads_b) = results
        assert torch.equal(out_a, out_b)
        for name in grads_a:
            assert torch.equal(grads_a[name], grads_b[name]), (seed, name)


@pytest.mark.parametrize("nonlinearity", ["tanh", "linear"])
def test_forward_without_trace_equals_trace_and_reference(nonlinearity):
    ens, u, _, _ = _random_problem(nonlinearity, seed=5)
    lay = to_kernel_layout(u, ens.size, F64, "cpu")
    trace = kernels.forward(lay, ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, 0.5, nonlinearity)
    lean = kernels.forward(lay, ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, 0.5, nonlinearity, keep_trace=False)
    torch.testing.assert_close(lean, trace.outputs, rtol=1e-12, atol=1e-14)
    for e in range(ens.size):
        ref = reference.run(u[e], ens.wi[e], ens.wrec[e], ens.wo[e], ens.b[e], ens.x0[e], 0.5, nonlinearity)
        torch.testing.assert_close(trace.outputs[e].transpose(0, 1), ref, rtol=1e-12, atol=1e-14)


def test_readout_uses_updated_state():
    """SPEC 1.1: output index k reflects input index k (read from x[k+1])."""
    n = 5
    ens = Ensemble.from_arrays(wrec=np.zeros((n, n)), wi=np.ones((1, n)), wo=np.eye(n)[:, :1],
                               nonlinearity="linear", dtype=F64)
    u = torch.zeros(1, 4, 1, dtype=F64)
    u[0, 0, 0] = 1.0
    out = ens.simulate(u, dt=0.5)[0, 0, :, 0]
    torch.testing.assert_close(out, torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=F64))


def test_masked_mse_normalises_by_masked_entries():
    out = torch.zeros(1, 2, 1, 2, dtype=F64)
    target = torch.ones_like(out)
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=F64).view(1, 2, 1, 2)
    loss, d_out = kernels.masked_mse(out, target, mask)
    assert loss.item() == pytest.approx(0.5)
    torch.testing.assert_close(d_out, -mask / 3)


def test_member_chunks_cover_the_ensemble_in_balanced_cache_sized_calls():
    for n_net, n in [(1, 256), (40, 256), (145, 256), (8, 1024), (7, 16)]:
        chunks = kernels.member_chunks(n_net, n, 2, 4, "cpu")
        assert chunks[0].start == 0 and chunks[-1].stop == n_net
        assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
        sizes = [c.stop - c.start for c in chunks]
        assert max(sizes) - min(sizes) <= 1
        per_member = (kernels._width(n, 2) + n) * n * 4
        assert max(sizes) * per_member <= kernels.CACHE_BUDGET or max(sizes) <= 4
    assert len(kernels.member_chunks(145, 256, 2, 4, "cpu")) == 7
    assert kernels.member_chunks(145, 256, 2, 4, "cuda") == [slice(0, 145)]


def test_a_weighted_mask_records_the_objective_it_trains():
    """Mask weights other than 0/1 (a user task's): the recorded loss is 1/2 sum M e^2 / sum M, whose
    float64 autograd gradient is the kernel's dL/dz (issue 22 item 3); 0/1 masks are unchanged."""
    from randstruct.engine.kernels import masked_mse

    gen = torch.Generator().manual_seed(3)
    out = torch.randn(2, 5, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    tgt = torch.randn(2, 5, 3, 2, generator=gen, dtype=torch.float64)
    mask = torch.rand(2, 5, 3, 2, generator=gen, dtype=torch.float64) * 2
    mask[0, 0] = 0
    tgt[0, 0, 0, 0] = float("nan")  # outside the mask: never reaches the loss
    loss, grad = masked_mse(out.detach(), tgt, mask)
    err = torch.where(mask != 0, out - tgt, 0.0)
    expected = 0.5 * (mask * err ** 2).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3))
    expected.sum().backward()
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, out.grad, rtol=1e-12, atol=0)


def test_a_negative_mask_is_refused():
    from randstruct.engine.batches import check_mask
    from randstruct.tasks import Batch

    data = Batch(np.zeros((2, 3, 1), np.float32), np.zeros((2, 3, 1), np.float32),
                 -np.ones((2, 3, 1), np.float32), {}, 0.5)
    with pytest.raises(ValueError, match="negative or non-finite"):
        check_mask(get_task("simple"), data)
