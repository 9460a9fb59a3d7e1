"""Correctness of the batched fixed-point search, its derivatives, and the dynamics verb."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import randstruct as rs
from randstruct.dynamics.fixed_points import find_fixed_points, search, sorted_eig
from randstruct.dynamics.newton import (batched_lu_in_place, cauchy_step, factorise, lu_in_place, member_groups,
                                        newton_step, times_wt)
from randstruct.dynamics.jacobians import flow, jacobian, q_and_grad
from randstruct.engine.model import Ensemble


def random_net(e, n, n_in, seed, scale=0.9):
    rng = np.random.default_rng(seed)
    w = torch.as_tensor(scale * rng.standard_normal((e, n, n)) / np.sqrt(n))
    wi = torch.as_tensor(rng.standard_normal((e, n_in, n)))
    b = torch.as_tensor(0.3 * rng.standard_normal((e, n)))
    return w, wi, b, rng


def test_linear_fixed_point_is_the_closed_form():
    w, wi, b, rng = random_net(3, 20, 2, 0)
    u = torch.as_tensor(rng.standard_normal((3, 1, 2))).expand(3, 6, 2)
    const = torch.baddbmm(b[:, None], u.contiguous(), wi)
    x0 = torch.as_tensor(rng.standard_normal((3, 6, 20)))
    fp = find_fixed_points(w, const, x0, nonlinearity="linear")
    exact = np.linalg.solve(np.eye(20) - w.numpy(), const[:, 0].numpy()[..., None])[..., 0]
    assert (fp.count == 1).all()
    rel = np.abs(fp.xstar[:, 0] - exact).max(-1) / np.abs(exact).max(-1)
    assert rel.max() < 1e-6
    # every state of a linear network converges to the same point, and the Jacobian is W - I
    assert np.allclose(fp.eigval_J_xstar[:, 0].real.max(-1) < 0, fp.is_stable[:, 0] == 1)


def test_jacobian_and_gradient_match_autograd():
    w, wi, b, rng = random_net(2, 7, 1, 1, scale=1.8)
    x = torch.as_tensor(rng.standard_normal((2, 3, 7)))
    const = b[:, None].expand(2, 3, 7)
    for e in range(2):
        for k in range(3):
            jac = torch.autograd.functional.jacobian(
                lambda v: flow(v[None, None], w[e:e + 1], const[e:e + 1, k:k + 1], "tanh")[0, 0], x[e, k])
            assert torch.allclose(jacobian(x[e, k], w[e], "tanh"), jac, atol=1e-12)
    xg = x.clone().requires_grad_(True)
    q, grad, _ = q_and_grad(xg, w, const, "tanh")
    (auto,) = torch.autograd.grad(q.sum(), xg)
    assert torch.allclose(grad, auto, atol=1e-12)


def test_eigenvalues_match_numpy():
    w, _, _, rng = random_net(3, 9, 1, 2, scale=1.5)
    x = torch.as_tensor(rng.standard_normal((3, 9)))
    j = jacobian(x, w, "tanh")
    val, vec = sorted_eig(j, True)
    for m in range(3):
        ref = np.linalg.eigvals(j[m].numpy())
        ref = ref[np.lexsort((-ref.imag, -ref.real))]
        assert np.allclose(val[m].numpy(), ref, atol=1e-10)
        assert torch.allclose(j[m].to(vec.dtype) @ vec[m], vec[m] * val[m], atol=1e-10)
    assert (val.real[..., :-1] >= val.real[..., 1:]).all()


def test_batched_equals_one_by_one():
    w, wi, b, rng = random_net(3, 12, 1, 3, scale=2.0)
    const = b[:, None].expand(3, 5, 12).contiguous()
    x0 = torch.as_tensor(2 * rng.standard_normal((3, 5, 12)))
    whole = search(w, const, x0, "tanh", first_order_iters=30)
    checked = 0
    for e in range(3):
        for k in range(5):
            one = search(w[e:e + 1], const[e:e + 1, k:k + 1], x0[e:e + 1, k:k + 1], "tanh", first_order_iters=30)
            converged = float(one.qstar) < 1e-12
            assert converged == (float(whole.qstar[e, k]) < 1e-12)
            if converged:  # a slow point's last halvings depend on rounding (matrix-vector vs matrix-matrix)
                assert int(one.n_iters) == int(whole.n_iters[e, k])
                assert torch.allclose(one.xstar[0, 0], whole.xstar[e, k], atol=1e-9)
            checked += converged
    assert checked >= 8  # most states are fixed points, so the comparison is not vacuous


def states_of(e, k, n, seed, scale):
    """Random (member, state) rows: W (e, n, n), their states x (S, n), members ei (S,), F (S, n)."""
    w, _, b, rng = random_net(e, n, 1, seed, scale=scale)
    ei = torch.as_tensor(rng.integers(0, e, k))
    x = torch.as_tensor(rng.standard_normal((k, n)))
    f = torch.einsum("sij,sj->si", w[ei], torch.tanh(x)) + b[ei] - x
    return w, x, ei, f


def test_member_products_equal_per_state_products():
    w, x, ei, _ = states_of(4, 23, 9, 5, 1.0)
    direct = torch.einsum("sij,sj->si", w[ei], x)
    assert torch.allclose(times_wt(x, member_groups(ei, 4), w), direct, atol=1e-13)
    assert sorted(int(m) for m, _ in member_groups(ei, 4)) == sorted(set(ei.tolist()))


def test_mixed_precision_newton_step_is_the_float64_solve():
    # float32 factors, one refinement with exact float64 products: the float64 Newton step to ~1e-10
    w, x, ei, f = states_of(3, 17, 40, 6, 1.5)
    d = 1 - torch.tanh(x) ** 2
    lut = torch.empty(17, 40, 40, dtype=torch.float32)
    piv = torch.empty(17, 40, dtype=torch.int32)
    regular = factorise(lut, piv, torch.ones(17, dtype=torch.bool), ei, w.transpose(1, 2).float().contiguous(), d, 3,
                        torch.empty_like(lut))
    assert regular.all()
    dx = newton_step(lut, piv, f, d, member_groups(ei, 3), w)
    exact = torch.linalg.solve(jacobian(x, w[ei], "tanh"), -f)
    rel = (dx - exact).norm(dim=-1) / exact.norm(dim=-1)
    assert rel.max() < 1e-9
    unrefined = torch.linalg.lu_solve(lut.mT, piv, (-f).float()[..., None])[..., 0].double()
    assert ((unrefined - exact).norm(dim=-1) / exact.norm(dim=-1)).max() > 10 * rel.max()  # the refinement matters


def test_lapack_and_batched_factorisations_agree():
    # the CPU path (SciPy's LAPACK, one matrix at a time) and the batched torch path (GPUs) give the
    # same transposed factors and 1-based pivots; info flags the singular matrix
    rng = np.random.default_rng(8)
    jt = torch.as_tensor(rng.standard_normal((4, 12, 12)), dtype=torch.float32)
    jt[2, :, 5] = 0  # J^T's column 5 is J's row 5: singular
    a, b = jt.clone(), jt.clone()
    piv_a, info_a = lu_in_place(a)
    piv_b, info_b = batched_lu_in_place(b)
    assert torch.equal(piv_a, piv_b) and torch.equal(info_a, info_b)
    assert info_a.tolist()[2] > 0 and info_a[[0, 1, 3]].eq(0).all()
    assert torch.allclose(a, b, atol=1e-6)
    p, low, up = torch.lu_unpack(a[0].mT, piv_a[0])
    assert torch.allclose(p @ low @ up, jt[0].mT, atol=1e-5)


def test_cauchy_step_minimises_the_linear_model_along_the_gradient():
    w, x, ei, f = states_of(2, 6, 11, 7, 2.0)
    d = 1 - torch.tanh(x) ** 2
    s = cauchy_step(f, d, ei, w, 2)
    j = jacobian(x, w[ei], "tanh")
    grad = torch.einsum("sji,sj->si", j, f)  # J^T F
    t = -(s * grad).sum(-1) / (grad * grad).sum(-1)
    assert torch.allclose(s, -t[:, None] * grad, atol=1e-12) and (t > 0).all()
    # d/dt |F - t J g|^2 = 0 at the step: the residual is orthogonal to J g
    residual = f + torch.einsum("sij,sj->si", j, s)
    jg = torch.einsum("sij,sj->si", j, grad)
    assert ((residual * jg).sum(-1).abs() < 1e-10 * (f * f).sum(-1) * jg.norm(dim=-1)).all()


@pytest.fixture(scope="module")
def flipflop():
    task = rs.get_task("flipflop")
    ens = Ensemble.init(n=64, g=[0.5], seeds=[0], n_in=2, n_out=2)
    record = rs.train(ens, task, rs.TrainConfig(epochs=400, lr0=0.1), progress=False)
    return ens, task, record


def test_trained_flipflop_has_four_stable_memory_states(flipflop):
    from randstruct.dynamics.coordinates import initial_states, readouts

    ens, task, record = flipflop
    assert record.loss[0, -20:].mean() < 0.02 * record.loss[0, 0]  # it learned
    e64 = ens.replace(**{k: v.double() for k, v in ens.params().items()}, w0=ens.w0.double())
    x0, _ = initial_states(e64, task, 128, 0)
    fp = find_fixed_points(e64.wrec.double(), e64.b.double()[:, None].expand_as(x0).contiguous(), x0.double())
    stable = fp.is_stable[0] == 1
    z = readouts(fp.xstar, e64.wo, "tanh")[0][stable]
    memories = np.array([[0.5, 0], [-0.5, 0], [0, 0.5], [0, -0.5]])
    assert stable.sum() == 4
    dist = np.abs(z[:, None] - memories[None]).max(-1)
    assert (dist.min(0) < 0.05).all() and (dist.min(1) < 0.05).all()


def test_trajectories_are_the_euler_states_from_x0():
    """The states the search starts from come from the training kernels' forward pass; here an
    independent Euler loop (SPEC 1.1) gives the same x[0..K]."""
    from randstruct.dynamics.coordinates import trajectories

    ens = Ensemble.init(20, [0.9, 1.5], 2, 2, 2, dtype=torch.float64)
    ens = ens.replace(x0=torch.randn(4, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    u = torch.randn(4, 30, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = ens.x0[:, None, :].expand(4, 3, 20).clone()
    ref = [x]
    for t in range(30):
        x = 0.5 * x + 0.5 * (torch.tanh(x) @ ens.wrec.transpose(1, 2) + u[:, t] @ ens.wi + ens.b[:, None])
        ref.append(x)
    torch.testing.assert_close(trajectories(ens, u, 0.5), torch.stack(ref, 2), rtol=1e-12, atol=1e-12)
