"""Connectivity analyses: definitions against hand computations, batching, store round trip, and the
paper's qualitative results at CI scale (issue 3)."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
import xarray as xr

from randstruct import analysis, store
from randstruct.analysis import EVAL_CODES, eval_batch, shuffle_w0
from randstruct.runs import RunSpec, execute, load
from randstruct.engine.seeding import member_rng
from randstruct.engine.train import TrainConfig

TRIALS = 16


@pytest.fixture(scope="session")
def small_run_dir(tmp_path_factory):
    """A few briefly trained flip-flop networks; g = 0 makes W0 = 0 exactly."""
    spec = RunSpec(task="flipflop", n=24, g=(0.0, 1.5), seeds=2, task_params={"T": 15},
                   train=TrainConfig(epochs=12, batch_size=8, lr0=0.5, rec_step=4))
    path = tmp_path_factory.mktemp("small") / "run"
    execute(spec, path, progress=False)
    return path


@pytest.fixture
def small_run(small_run_dir, tmp_path):
    """A private copy, since analyze_run writes into the store."""
    path = tmp_path / "run"
    shutil.copytree(small_run_dir, path)
    return load(path)


@pytest.fixture(scope="session")
def accepted(tmp_path_factory):
    """Scaled-down SPEC 3.1 flip-flop protocol, analysed once.

    N = 128, g in {0, 0.9, 1.8}, 2 seeds. lr0 = 0.1 instead of 0.05 so that every network
    converges within 120 epochs (CI budget); 256 evaluation trials, ranks 0..12 and 4 shuffles
    per variant keep the analysis to seconds while still resolving functional ranks up to 12.
    """
    spec = RunSpec(task="flipflop", n=128, g=(0.0, 0.9, 1.8), seeds=2,
                   train=TrainConfig(epochs=120, batch_size=32, lr0=0.1, rec_step=5))
    path = tmp_path_factory.mktemp("accept") / "run"
    execute(spec, path, progress=False)
    return analysis.analyze_run(path, ranks=12, shuffles=4, eval_trials=256, progress=False)


def _manual_loss(run, net, wrec, key=()):
    """Loss of one stored network with its final vectors and ``wrec``, on its evaluation set."""
    ens = run.ensemble().select(net)
    ens = ens.replace(wrec=torch.as_tensor(wrec, dtype=ens.dtype)[None])
    task = run.task()
    b = eval_batch(task, ens.seed[0], ens.g[0], TRIALS, key)
    return float(ens.loss(b.inputs, b.targets, b.mask, task.dt)[0])


def _snapshot(path):
    return {str(p.relative_to(path)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ definitions
def test_full_rank_truncation_reproduces_the_trained_network(small_run):
    ens, task = small_run.ensemble(), small_run.task()
    n = ens.n
    final = analysis.final_losses(ens, task, eval_trials=TRIALS).values
    for of in ("dw", "w"):
        full = analysis.truncation_losses(ens, task, ranks=[n], of=of, eval_trials=TRIALS)
        np.testing.assert_allclose(full.sel(rank=n).values, final, rtol=1e-6)
    assert np.all(final > 0)


def test_truncations_match_a_hand_built_svd(small_run):
    ens, task = small_run.ensemble(), small_run.task()
    trunc = analysis.truncation_losses(ens, task, ranks=[0, 1, 3], eval_trials=TRIALS)
    trunc_w = analysis.truncation_losses(ens, task, ranks=[0, 2], of="w", eval_trials=TRIALS)
    ds = small_run.data
    for net in range(ens.size):
        w0, w = ds.w0.values[net].astype(np.float64), ds.w.values[net].astype(np.float64)
        u, s, vh = np.linalg.svd(w - w0)
        assert trunc.sel(rank=0).values[net] == pytest.approx(_manual_loss(small_run, net, w0), rel=1e-6)
        for r in (1, 3):
            w_r = w0 + (u[:, :r] * s[:r]) @ vh[:r]
            assert trunc.sel(rank=r).values[net] == pytest.approx(_manual_loss(small_run, net, w_r), rel=1e-5)
        uw, sw, vhw = np.linalg.svd(w)
        assert trunc_w.sel(rank=0).values[net] == pytest.approx(_manual_loss(small_run, net, 0 * w), rel=1e-6)
        w_2 = (uw[:, :2] * sw[:2]) @ vhw[:2]
        assert trunc_w.sel(rank=2).values[net] == pytest.approx(_manual_loss(small_run, net, w_2), rel=1e-5)


def test_residual_norm_and_explained_variance():
    rng = np.random.default_rng(0)
    dw = rng.standard_normal((2, 9, 9))
    u, s, vh = np.linalg.svd(dw)
    ranks = np.arange(10)
    resid, explained = analysis.sv_stats(s, ranks)
    for e in range(2):
        for r in ranks:
            approx = (u[e, :, :r] * s[e, :r]) @ vh[e, :r]
            assert resid[e, r] == pytest.approx(np.linalg.norm(dw[e] - approx), abs=1e-10)
            assert explained[e, r] == pytest.approx((s[e, :r] ** 2).sum() / (s[e] ** 2).sum(), abs=1e-12)
    assert np.isnan(analysis.sv_stats(np.zeros((1, 3)), [0, 1])[1]).all()


def test_functional_rank_on_hand_made_curves():
    curves = np.array([
        [1.0, 0.5, 0.04, 0.01],    # first below 5 % at rank 2
        [1.0, 0.049, 0.2, 0.01],   # rank 1, even though a later rank is worse
        [1.0, 0.06, 0.05, 0.051],  # never strictly below 5 %: not converged
        [np.nan, 0.1, 0.0, 0.0],   # undefined reference: not converged
    ])
    np.testing.assert_array_equal(analysis.functional_rank(curves), [2, 1, -1, -1])
    np.testing.assert_array_equal(analysis.functional_rank(curves, threshold=0.6), [1, 1, 1, -1])
    da = xr.DataArray(curves[:, [0, 2, 3]], dims=("net", "rank"), coords={"rank": [0, 5, 10]})
    np.testing.assert_array_equal(analysis.functional_rank(da).values, [5, 10, -1, -1])
    with pytest.raises(ValueError, match="rank-0"):
        analysis.functional_rank(da.sel(rank=[5, 10]))


def test_convergence_epoch_on_hand_made_curves():
    loss = np.array([
        [2.0, 1.0, 0.11, 0.09, 0.5],  # epoch 3 (later increase does not matter)
        [2.0, 0.1, 0.05, 0.01, 0.0],  # exactly 5 % is not below: epoch 2
        [2.0, 1.5, 1.0, 0.5, 0.2],    # never
        [2.0, np.nan, np.nan, np.nan, np.nan],  # diverged
    ])
    np.testing.assert_array_equal(analysis.convergence_epoch(loss), [3, 2, -1, -1])
    da = xr.DataArray(loss, dims=("net", "epoch"), coords={"g": ("net", [0.0, 1, 2, 3])})
    res = analysis.convergence_epoch(da, threshold=0.3)
    np.testing.assert_array_equal(res.values, [2, 1, 3, -1])
    assert res.dims == ("net",) and list(res.g.values) == [0, 1, 2, 3]


# ------------------------------------------------------------------------------ shuffles
def test_shuffle_variants_keep_what_they_promise():
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((12, 12))
    full = shuffle_w0(w0, 1.0, "full", np.random.default_rng(2))
    np.testing.assert_array_equal(np.sort(full, axis=None), np.sort(w0, axis=None))
    assert not np.array_equal(np.sort(full.sum(1)), np.sort(w0.sum(1)))
    rc = shuffle_w0(w0, 1.0, "rowcol", np.random.default_rng(3))
    np.testing.assert_array_equal(np.sort(rc, axis=None), np.sort(w0, axis=None))
    np.testing.assert_allclose(np.sort(rc.sum(1)), np.sort(w0.sum(1)))
    np.testing.assert_allclose(np.sort(rc.sum(0)), np.sort(w0.sum(0)))
    rows = lambda m: sorted(map(tuple, np.sort(m, axis=1)))  # noqa: E731
    assert rows(rc) == rows(w0) and rows(rc.T) == rows(w0.T)
    np.testing.assert_allclose(np.linalg.svd(rc, compute_uv=False), np.linalg.svd(w0, compute_uv=False))
    assert not np.array_equal(rc, w0)
    res = shuffle_w0(np.zeros((200, 200)), 1.5, "resample", np.random.default_rng(4))
    assert res.std() == pytest.approx(1.5 / np.sqrt(200), rel=0.02)
    np.testing.assert_array_equal(shuffle_w0(w0, 0.0, "resample", np.random.default_rng(5)), 0)
    with pytest.raises(ValueError, match="allowed: full, rowcol, resample"):
        shuffle_w0(w0, 1.0, "columns", rng)


def test_shuffles_are_seeded_per_network(small_run):
    ens, task = small_run.ensemble(), small_run.task()
    a = analysis.shuffle_losses(ens, task, shuffles=3, variant="full", eval_trials=TRIALS)
    b = analysis.shuffle_losses(ens.select([3, 2]), task, shuffles=3, variant="full", eval_trials=TRIALS)
    np.testing.assert_allclose(b.values, a.values[[3, 2]], rtol=1e-6)
    g15 = a.values[ens.g == 1.5]
    assert len(np.unique(g15)) == g15.size  # different shuffles, different losses
    net = 2
    w0, w = small_run.data.w0.values[net].astype(np.float64), small_run.data.w.values[net].astype(np.float64)
    rng = member_rng(int(ens.seed[net]), 1.5, "shuffle", analysis.SHUFFLE_CODES["full"], 1)
    expected = _manual_loss(small_run, net, shuffle_w0(w0, 1.5, "full", rng) + (w - w0))
    assert a.values[net, 1] == pytest.approx(expected, rel=1e-6)


def test_shuffle_loss_at_g0_is_the_final_loss(small_run):
    ens, task = small_run.ensemble(), small_run.task()
    zero = ens.g == 0
    assert zero.sum() == 2 and torch.all(ens.w0[torch.as_tensor(zero)] == 0)
    final = analysis.final_losses(ens, task, eval_trials=TRIALS).values
    for variant in analysis.SHUFFLE_VARIANTS:
        loss = analysis.shuffle_losses(ens, task, shuffles=2, variant=variant, eval_trials=TRIALS).values
        np.testing.assert_allclose(loss[zero], np.repeat(final[zero, None], 2, axis=1), rtol=1e-6)
        assert np.all(np.abs(loss[~zero] - final[~zero, None]) > 1e-6)


# ------------------------------------------------------------------------------ evaluation
def test_batched_evaluation_equals_a_per_network_loop(small_run):
    ens, task = small_run.ensemble(), small_run.task()
    tiny = 1  # one member per chunk: every chunk boundary is exercised
    batched = analysis.truncation_losses(ens, task, ranks=6, eval_trials=TRIALS)
    chunked = analysis.truncation_losses(ens, task, ranks=6, eval_trials=TRIALS, chunk_bytes=tiny)
    looped = np.stack([analysis.truncation_losses(ens.select(i), task, ranks=6, eval_trials=TRIALS).values[0]
                       for i in range(ens.size)])
    np.testing.assert_allclose(batched.values, looped, rtol=1e-5)
    np.testing.assert_allclose(chunked.values, looped, rtol=1e-5)
    for variant in analysis.SHUFFLE_VARIANTS:
        batched = analysis.shuffle_losses(ens, task, shuffles=2, variant=variant, eval_trials=TRIALS)
        looped = np.stack([analysis.shuffle_losses(ens.select(i), task, shuffles=2, variant=variant,
                                                   eval_trials=TRIALS).values[0] for i in range(ens.size)])
        np.testing.assert_allclose(batched.values, looped, rtol=1e-5)


def test_fixed_and_fresh_policies_differ_only_in_the_batches(small_run):
    ens, task = small_run.ensemble(), small_run.task()
    fixed = analysis.truncation_losses(ens, task, ranks=2, eval_trials=TRIALS, eval_policy="fixed")
    fresh = analysis.truncation_losses(ens, task, ranks=2, eval_trials=TRIALS, eval_policy="fresh")
    ds = small_run.data
    for net in range(ens.size):
        w0, w = ds.w0.values[net].astype(np.float64), ds.w.values[net].astype(np.float64)
        u, s, vh = np.linalg.svd(w - w0)
        for r in range(3):
            w_r = w0 + (u[:, :r] * s[:r]) @ vh[:r]
            key = (EVAL_CODES["trunc_dw"], r)
            assert fixed.values[net, r] == pytest.approx(_manual_loss(small_run, net, w_r), rel=1e-5)
            assert fresh.values[net, r] == pytest.approx(_manual_loss(small_run, net, w_r, key), rel=1e-5)
    assert not np.allclose(fixed.values, fresh.values)
    b0, b1 = (eval_batch(task, 0, 0.0, TRIALS, (EVAL_CODES["trunc_dw"], r)) for r in (0, 1))
    fixed_set = eval_batch(task, 0, 0.0, TRIALS)
    assert not np.array_equal(b0.inputs, b1.inputs) and not np.array_equal(b0.inputs, fixed_set.inputs)


def test_argument_errors(small_run):
    ens, task = small_run.ensemble(), small_run.task()
    with pytest.raises(ValueError, match="eval_policy"):
        analysis.truncation_losses(ens, task, eval_policy="paper")
    with pytest.raises(ValueError, match="ranks"):
        analysis.truncation_losses(ens, task, ranks=[ens.n + 1])
    with pytest.raises(ValueError, match="shuffles"):
        analysis.shuffle_losses(ens, task, shuffles=0)
    with pytest.raises(ValueError, match="threshold"):
        analysis.analyze(small_run, threshold=5)
    bad = ens.replace(wrec=ens.wrec.clone().index_fill_(0, torch.tensor([1]), float("nan")))
    with pytest.raises(ValueError, match=r"non-finite weights \(members \[1\]\)"):
        analysis.truncation_losses(bad, task)


# ------------------------------------------------------------------------------ the store
def test_analyze_run_writes_labelled_variables(small_run):
    out = analysis.analyze_run(small_run.path, eval_trials=TRIALS, shuffles=3, progress=False)
    ds = store.open_results(small_run.path)
    n = small_run.data.sizes["unit"]
    assert set(analysis.VARIABLES) <= set(ds.data_vars) and set(out.data_vars) == set(analysis.VARIABLES)
    assert ds.trunc_loss_dw.dims == ("net", "rank") and list(ds["rank"].values) == list(range(n + 1))
    assert ds.shuffle_loss_rowcol.dims == ("net", "shuffle") and ds.sizes["shuffle"] == 3
    assert ds.eig_w.dims == ("net", "eig") and ds.sv_w0.dims == ("net", "sv")
    for name in analysis.VARIABLES:
        attrs = ds[name].attrs
        assert attrs["description"] and attrs["threshold"] == 0.05 and attrs["eval_policy"] == "fixed"
        assert attrs["eval_trials"] == TRIALS and "member_rng" in attrs["eval_seeds"]
        assert json.loads(attrs["analysis"])["shuffles"] == 3
    np.testing.assert_allclose(ds.trunc_loss_dw.sel(rank=n).values, ds.final_eval_loss.values, rtol=1e-6)
    np.testing.assert_array_equal(ds.functional_rank.values, analysis.functional_rank(ds.trunc_loss_dw).values)
    np.testing.assert_array_equal(ds.conv_epoch.values, analysis.convergence_epoch(ds.loss).values)
    dw = ds.w.values.astype(np.float64) - ds.w0.values.astype(np.float64)
    np.testing.assert_allclose(ds.norm_dw.values, np.linalg.norm(dw, axis=(1, 2)), rtol=1e-10)
    np.testing.assert_allclose(ds.trunc_resid_dw.sel(rank=0).values, ds.norm_dw.values, rtol=1e-10)
    last = ds.sv_dw.isel(rec=-1).values.astype(np.float64)
    np.testing.assert_allclose(ds.norm_dw_last_rec.values, np.sqrt((last**2).sum(-1)))
    assert "epoch 8" in ds.norm_dw_last_rec.attrs["note"]
    np.testing.assert_allclose(ds.rel_shuffle_loss.values,
                               ds.shuffle_loss.mean("shuffle").values / ds.loss.isel(epoch=0).values)


def test_eigenvalues_round_trip_through_the_store(small_run):
    analysis.analyze_run(small_run.path, ranks=2, shuffles=1, eval_trials=TRIALS, progress=False)
    ds = store.open_results(small_run.path)
    assert np.iscomplexobj(ds.eig_w.values) and ds.eig_w.values.dtype == np.complex128
    w0, w = ds.w0.values.astype(np.float64), ds.w.values.astype(np.float64)
    for name, mat in (("eig_w0", w0), ("eig_w", w), ("eig_dw", w - w0)):
        stored = ds[name].values
        for net in range(ds.sizes["net"]):
            ev = np.linalg.eigvals(mat[net])
            np.testing.assert_allclose(np.sort_complex(stored[net]), np.sort_complex(ev), atol=1e-9)
            keys = np.stack([stored[net].real, stored[net].imag], -1)
            assert all(tuple(a) >= tuple(b) for a, b in zip(keys, keys[1:]))  # descending real, then imag
    np.testing.assert_allclose(ds.sv_w.values, np.linalg.svd(w, compute_uv=False), atol=1e-9)
    assert np.all(ds.eig_w0.values[ds.g.values == 0] == 0)


def test_analyze_run_is_idempotent_and_force_recomputes(small_run):
    path = small_run.path
    kw = dict(ranks=3, shuffles=2, eval_trials=TRIALS, progress=False)
    assert analysis.stored_analysis(path, ranks=3, shuffles=2, eval_trials=TRIALS) is None
    first = analysis.analyze_run(path, **kw)
    assert analysis.stored_analysis(path, ranks=3, shuffles=2, eval_trials=TRIALS) is not None
    assert analysis.stored_analysis(path, ranks=3, shuffles=2, eval_trials=TRIALS, eval_policy="fresh") is None
    before = _snapshot(path / store.RESULTS)
    again = analysis.analyze_run(path, **kw)
    assert _snapshot(path / store.RESULTS) == before
    xr.testing.assert_identical(again, first)

    tampered = first[["trunc_loss_dw"]].copy(deep=True)
    tampered["trunc_loss_dw"][:] = -1.0
    tampered["trunc_loss_dw"].attrs = first.trunc_loss_dw.attrs
    store.add_results(path, tampered)
    assert np.all(analysis.analyze_run(path, **kw).trunc_loss_dw.values == -1)  # same parameters: no-op
    analysis.analyze_run(path, **kw, force=True)
    np.testing.assert_array_equal(store.open_results(path).trunc_loss_dw.values, first.trunc_loss_dw.values)

    # other parameters resize the rank and shuffle dims: recomputed, training results untouched
    analysis.analyze_run(path, ranks=5, shuffles=3, eval_trials=TRIALS, threshold=0.1, progress=False)
    ds = store.open_results(path)
    assert ds.sizes["rank"] == 6 and ds.sizes["shuffle"] == 3 and ds.functional_rank.attrs["threshold"] == 0.1
    np.testing.assert_array_equal(ds.w.values, small_run.data.w.values)
    assert ds.attrs == small_run.data.attrs
    np.testing.assert_array_equal(ds.loss.values, small_run.data.loss.values)
    np.testing.assert_allclose(ds.trunc_loss_dw.sel(rank=[0, 1, 2, 3]).values, first.trunc_loss_dw.values, rtol=1e-6)


# ------------------------------------------------------------------------------ acceptance (issue 3)
def test_converged_networks_have_a_small_functional_rank(accepted):
    converged = accepted.conv_epoch.values >= 0
    assert converged.all(), accepted.conv_epoch.values
    rank = accepted.functional_rank.values
    assert np.all((rank >= 1) & (rank <= 10)), rank
    at_rank = accepted.trunc_loss_dw.sel(rank=accepted.functional_rank).values
    assert np.all(at_rank < 0.05 * accepted.trunc_loss_dw.sel(rank=0).values)


def test_shuffling_w0_matters_more_for_larger_g(accepted):
    rel = accepted.rel_shuffle_loss.groupby("g").mean().sel(g=[0.0, 1.8]).values
    assert rel[0] < 0.05, rel  # W0 = 0 is its own shuffle: the trained network's loss
    assert rel[1] > 0.5, rel   # dW is tuned to its own W0
    zero = accepted.g.values == 0
    loss0 = accepted.final_eval_loss.values[zero]
    np.testing.assert_allclose(accepted.shuffle_loss.values[zero],
                               np.repeat(loss0[:, None], accepted.sizes["shuffle"], 1), rtol=1e-6)


def test_norm_of_dw_decreases_with_g(accepted):
    norm = accepted.norm_dw.groupby("g").mean()
    assert norm.sel(g=0.0) > norm.sel(g=0.9) > norm.sel(g=1.8), norm.values
    last = accepted.norm_dw_last_rec.groupby("g").mean()
    assert last.sel(g=0.0) > last.sel(g=1.8)
