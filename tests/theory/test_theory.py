"""Tests for randstruct.theory: closed forms, Monte-Carlo limits and the exact g = 0 flow."""

from math import comb

import numpy as np
import pytest

from randstruct import theory as th

G_GRID = np.linspace(0.0, 0.95, 96)


# --- closed forms and identities -------------------------------------------------------------


def test_g0_exact_values():
    assert th.beta(0.0) == 1.0
    assert th.gamma(0.0) == 1.0
    assert th.shuffle_loss_ratio(0.0) == 0.0
    assert th.tau_star(0.0) == 1.0
    assert th.learning_rate(0.015, 0.0) == 0.015
    assert th.collapsed_time(0.3, 0.0) == 0.3
    assert all(v == 1.0 for v in th.trace_limits(0.0).values())
    x, zhat = np.linspace(0, 2, 9), 0.7
    cube = x**3 / 6
    np.testing.assert_allclose(
        th.readout(x, zhat, 0.0), zhat * (x - x**2 / 2 + (1 + 8 * zhat**2) * cube)
    )
    np.testing.assert_allclose(
        th.s_plus(x, zhat, 0.0), zhat * (x - x**2 / 2 + (1 + 3.5 * zhat**2) * cube)
    )
    np.testing.assert_allclose(th.shuffled_readout(x, zhat, 0.0), th.readout(x, zhat, 0.0))


def test_known_values_at_g_06():
    b = 1 / 0.64
    assert th.beta(0.6) == pytest.approx(1.5625)
    assert th.gamma(0.6) == pytest.approx(b**4)
    assert th.tau_star(0.6) == pytest.approx(0.4096)
    assert th.norm_dw_star(0.6, 2.0) == pytest.approx(1.28)
    assert th.mean_grad_norm(0.6, 2.0) == pytest.approx(3.125)
    assert th.shuffle_loss_ratio(0.6) == pytest.approx((0.36 * 1.64) ** 2)
    assert th.trace_limits(0.6)["tr_BBt3"] == pytest.approx(b**7 * 1.72)


def test_shuffle_ratio_identity_and_gamma():
    np.testing.assert_allclose(
        th.shuffle_loss_ratio(G_GRID), G_GRID**4 * (2 - G_GRID**2) ** 2, atol=1e-14
    )
    np.testing.assert_allclose(th.gamma(G_GRID), (1 - G_GRID**2) ** -4)
    assert np.all(np.diff(th.shuffle_loss_ratio(G_GRID)) > 0)


def test_first_order_quantities_are_consistent():
    g, zhat = G_GRID, 1.3
    np.testing.assert_allclose(th.collapsed_time(th.tau_star(g), g), 1.0)
    dw_star = th.tau_star(g) * th.mean_grad_norm(g, zhat)
    np.testing.assert_allclose(th.norm_dw_star(g, zhat), dw_star)
    np.testing.assert_allclose(th.readout(1.0, zhat, g, order=1), zhat)
    np.testing.assert_allclose(th.s_plus(1.0, zhat, g, order=1), th.norm_dw_star(g, zhat))
    z_s = th.shuffled_readout(1.0, zhat, g, order=1)
    np.testing.assert_allclose(
        th.loss_from_readout(z_s, zhat) / (zhat**2 / 2), th.shuffle_loss_ratio(g), atol=1e-14
    )
    epochs = np.arange(200)
    x = th.collapsed_time(th.learning_rate(0.003, g)[:, None] * epochs, g[:, None])
    np.testing.assert_allclose(x, np.broadcast_to(0.003 * epochs, x.shape), rtol=1e-12)


def test_orders_are_nested_truncations():
    x, zhat, g = np.linspace(0, 1.5, 7), 0.8, 0.4
    b = th.beta(g)
    np.testing.assert_allclose(th.readout(x, zhat, g, 1), zhat * x)
    np.testing.assert_allclose(th.readout(x, zhat, g, 2), zhat * (x - x**2 / 2))
    np.testing.assert_allclose(
        th.s_plus(x, zhat, g, 3) - th.s_plus(x, zhat, g, 2),
        zhat / b * (1 + 3.5 * zhat**2 * b) * x**3 / 6,
    )
    np.testing.assert_allclose(
        th.shuffled_readout(x, zhat, g, 3) - th.shuffled_readout(x, zhat, g, 2),
        zhat / b**2 * (1 + 2 * zhat**2 * (1 + 3 / b)) * x**3 / 6,
    )


def test_broadcasting_shapes():
    x, zhat, g = np.linspace(0, 1, 5), np.array([0.5, 2.0]), np.array([0.0, 0.3, 0.6])
    X, Z, G = x[:, None, None], zhat[None, :, None], g[None, None, :]
    for order in (1, 2, 3):
        for f in (th.readout, th.s_plus, th.shuffled_readout):
            out = f(X, Z, G, order)
            assert out.shape == (5, 2, 3)
            assert out[3, 1, 2] == pytest.approx(f(x[3], zhat[1], g[2], order))
    assert th.s_minus(X, Z).shape == (5, 2, 1)
    assert th.loss_from_readout(th.readout(X, Z, G), Z).shape == (5, 2, 3)
    shapes = {k: v.shape for k, v in th.trace_limits(g).items()}
    assert shapes == dict.fromkeys(th.TRACE_KEYS, (3,))
    assert th.beta(g).shape == th.tau_star(g).shape == th.shuffle_loss_ratio(g).shape == (3,)
    assert th.norm_dw_star(g[:, None], zhat).shape == (3, 2)
    assert th.mean_grad_norm(g[:, None], zhat).shape == (3, 2)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, np.nan])
def test_bad_g_raises(bad):
    with pytest.raises(ValueError, match=r"0 <= g < 1.*" + ("nan" if np.isnan(bad) else str(bad))):
        th.beta(bad)
    with pytest.raises(ValueError, match="0 <= g < 1"):
        th.readout(0.5, 1.0, [0.2, bad])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="order"):
        th.readout(0.5, 1.0, 0.3, order=4)
    with pytest.raises(ValueError, match="zhat > 0"):
        th.theory_curves(np.linspace(0, 1, 3), -1.0, 0.3)
    with pytest.raises(ValueError, match="non-decreasing"):
        th.exact_flow_g0([0.0, 0.5, 0.2], 0.5)
    with pytest.raises(ValueError, match="0 <= g < 1"):
        th.draw_network(10, 1.0, 0)


# --- random-matrix traces ---------------------------------------------------------------------


@pytest.mark.parametrize("n", range(11))
def test_index_pair_counting(n):
    """Coefficient of g^(2n) in Tr(BB^T BB^T)/N from c_ijkl = 1 + min(i, j, k, l) (eq. 98)."""
    pairs = sum(1 + min(i, n - i, j, n - j) for i in range(n + 1) for j in range(n + 1))
    squares = sum((n + 1 - 2 * t) ** 2 for t in range(n // 2 + 1))
    assert pairs == squares == comb(n + 3, 3)


def test_pair_count_series_sums_to_beta4():
    g = np.array([0.0, 0.3, 0.6, 0.9])
    series = sum(comb(n + 3, 3) * g ** (2 * n) for n in range(600))
    np.testing.assert_allclose(series, th.gamma(g), rtol=1e-12)


# Number of resolvent factors B, B^T in each trace. The finite-N bias of trace k measured with
# 2000 draws at N = 100 and 800 at N = 200 (g = 0.3, 0.6) is c (beta^k - 1) limit / N with
# c = 1.1, 1.3, 1.6, 1.8, 2.2 for the five traces, so 3 (beta^k - 1) / N bounds it.
N_FACTORS = {"tr_B": 1, "tr_BBt": 2, "tr_BBBt": 3, "tr_BBtBBt": 4, "tr_BBt3": 6}


@pytest.mark.parametrize("g", [0.0, 0.3, 0.6])
def test_trace_moments_match_limits(g):
    N, seeds = 1000, range(8)
    draws = [th.trace_moments(N, g, s) for s in seeds]
    limits = th.trace_limits(g)
    b = th.beta(g)
    for key, k in N_FACTORS.items():
        v = np.array([d[key] for d in draws])
        se = v.std(ddof=1) / np.sqrt(len(v))
        bias = 3 * (b**k - 1) * limits[key] / N
        err = abs(v.mean() - limits[key])
        assert err <= 3 * se + bias + 1e-12, (key, v.mean(), limits[key], se, bias)


def test_trace_moments_are_reproducible():
    assert th.trace_moments(50, 0.5, 3) == th.trace_moments(50, 0.5, 3)
    assert th.trace_moments(50, 0.5, 3) != th.trace_moments(50, 0.5, 4)


def test_first_order_quantities_match_finite_differences():
    """dz/dtau and ||W1|| agree with the actual readout of W0 + tau W1 for one small draw."""
    zhat = 0.8
    J, m, w = th.draw_network(40, 0.5, 7)
    q = th.first_order_quantities(J, m, w, zhat)
    B = np.linalg.inv(np.eye(40) - J)
    W1 = (zhat - q["z0"]) * np.outer(B.T @ w, m @ B.T)

    def z(tau):
        return w @ np.linalg.solve(np.eye(40) - J - tau * W1, m)

    h = 1e-5
    assert q["z0"] == pytest.approx(z(0.0), abs=1e-14)
    assert q["dz_dtau"] == pytest.approx((z(h) - z(-h)) / (2 * h), rel=1e-7)
    assert q["norm_W1"] == pytest.approx(np.linalg.norm(W1), rel=1e-12)
    assert th.mc_first_order(40, 0.5, zhat, 7) == q


def test_mc_first_order_matches_theory():
    """E[P] = E[Q] = E Tr(BB^T)/N, whose finite-N bias is below 3 (beta^2 - 1)/N (see N_FACTORS),
    so P Q and its square root are biased by less than 6 (beta^2 - 1)/N; z0 enters with mean zero
    (w -> -w flips z0 and keeps P, Q)."""
    N, g, zhat = 1000, 0.3, 1.0
    draws = [th.mc_first_order(N, g, zhat, s) for s in range(16)]
    bias = 6 * (th.beta(g) ** 2 - 1) / N
    limits = {"dz_dtau": zhat * th.beta(g) ** 2, "norm_W1": th.mean_grad_norm(g, zhat)}
    for key, limit in limits.items():
        v = np.array([d[key] for d in draws]) / limit
        se = v.std(ddof=1) / np.sqrt(len(v))
        assert abs(v.mean() - 1) <= 3 * se + bias, (key, v.mean(), se)
    assert abs(np.mean([d["z0"] for d in draws])) < 3 * np.sqrt(th.beta(g) / N)


# --- cut rule ---------------------------------------------------------------------------------


def test_cut_rule_hand_example():
    """zhat = 1, g = 0: z1 = x crosses after x = 1.2, z3 = x - x^2/2 + 1.5 x^3 between 0.7 and 0.8,
    z2 <= 1/2 never crosses, so its loss rises again after x = 1 without a cut."""
    x = np.array([0.0, 0.5, 0.7, 0.8, 1.0, 1.2, 1.5])
    c = th.theory_curves(x, 1.0, 0.0)
    np.testing.assert_allclose(c["z1"], [0, 0.5, 0.7, 0.8, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(c["s_plus1"], [0, 0.5, 0.7, 0.8, 1.0, 1.2, 1.2])
    np.testing.assert_allclose(c["loss1"], [0.5, 0.125, 0.045, 0.02, 0, 0, 0], atol=1e-15)
    np.testing.assert_allclose(c["z2"], x - x**2 / 2)
    np.testing.assert_allclose(c["s_plus2"], x - x**2 / 2)
    assert c["loss2"][-1] > c["loss2"][-3]
    np.testing.assert_allclose(c["z3"], [0, 0.5625, 0.9695, 1, 1, 1, 1])
    np.testing.assert_allclose(c["loss3"][3:], 0.0)
    np.testing.assert_allclose(c["s_plus3"], [0, 0.46875, 0.71225, 0.864, 0.864, 0.864, 0.864])
    np.testing.assert_allclose(c["s_minus"], np.minimum(x, 0.8) ** 3 / 12)


def test_theory_curves_vectorised_over_zhat_and_g():
    x = np.linspace(0, 2, 201)
    zhat, g = np.array([0.5, 2.0])[:, None, None], np.array([0.0, 0.6])[None, :, None]
    curves = th.theory_curves(x, zhat, g)
    for i, zh in enumerate([0.5, 2.0]):
        for j, gg in enumerate([0.0, 0.6]):
            single = th.theory_curves(x, zh, gg)
            for key, v in curves.items():
                assert v.shape == (2, 2, 201)
                np.testing.assert_array_equal(v[i, j], single[key], err_msg=key)
    assert np.all(curves["z3"] <= zhat) and np.all(curves["loss1"][..., -1] == 0)


# --- exact g = 0 flow -------------------------------------------------------------------------


@pytest.mark.parametrize("zhat", [0.5, 2.0])
def test_exact_flow_g0_matches_third_order(zhat):
    """(exact - expansion) / x^4 must settle to a constant as x -> 0; a wrong x^3 coefficient
    would make it grow like 1/x. Also checks A entries against eqs. 50-52 and A11 = A22."""
    x = 0.2 * 2.0 ** -np.arange(7)[::-1]
    flow = th.exact_flow_g0(x, zhat)
    A = flow["A"]
    pairs = {
        "z": (flow["z"], th.readout(x, zhat, 0.0)),
        "s_plus": (flow["s_plus"], th.s_plus(x, zhat, 0.0)),
        "s_minus": (flow["s_minus"], th.s_minus(x, zhat)),
        "A12": (A[:, 0, 1], zhat * (x - x**2 / 2 + x**3 / 6) + zhat**3 * x**3 / 3),
        "A11": (A[:, 0, 0], zhat**2 * (x**2 / 2 - x**3 / 2)),
        "A21": (A[:, 1, 0], zhat**3 * x**3 / 3),
    }
    for key, (exact, series) in pairs.items():
        r = (exact - series) / x**4
        assert np.all(np.abs(r) < 50 * zhat**5), (key, r)
        assert abs(r[0] - r[1]) < 0.6 * abs(r[1] - r[2]) + 1e-3, (key, r)
        assert abs(r[0] - r[1]) < 0.05 * max(1.0, abs(r[0])), (key, r)
    np.testing.assert_allclose(A[:, 0, 0], A[:, 1, 1], atol=1e-15)


def test_exact_flow_g0_first_order_time_is_optimistic():
    """SPEC T: at x = 1 the exact flow has z = 0.70 zhat for zhat = 0.5, g = 0."""
    flow = th.exact_flow_g0(np.linspace(0, 1, 11), 0.5)
    assert flow["z"][0] == 0.0 and np.all(flow["A"][0] == 0)
    assert round(flow["z"][-1] / 0.5, 2) == 0.70
    assert np.all(np.diff(flow["z"]) > 0)


def test_exact_flow_g0_converges_to_target():
    flow = th.exact_flow_g0(np.array([0.0, 5.0, 30.0]), 0.5)
    assert flow["z"][-1] == pytest.approx(0.5, abs=1e-6)
    assert flow["s_minus"][-1] < flow["s_plus"][-1]
