"""The alignment, regime and similarity plug-ins on a trained run against a NumPy float64 forward
pass and NumPy/SciPy measures written here; bad input and missing data in one line."""

import shutil

import numpy as np
import pytest
import scipy.linalg

from randstruct.analysis.evaluation import eval_batch
from randstruct.cli import main
from randstruct.engine.seeding import member_rng
from randstruct.runs import load

from test_regime_measures import loo_hat, np_cka, np_gen_corr, np_ridge_heldout_r2

GRACE = 10.0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("regimes") / "run"
    assert main(["train", "--task", "flipflop", "--N", "12", "--g", "0.5,1.2", "--seeds", "2", "--epochs", "30",
                 "--batch", "8", "--dtype", "float64", "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.fixture
def analysed(run_dir, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    assert main(["analyze", str(path), "--analysis", "alignment,regime,similarity", "--param",
                 "alignment.eval_trials=6", "--param", "alignment.pulse_trials=3", "--param",
                 "regime.eval_trials=6", "--param", "similarity.trials=5", "--no-progress"]) == 0
    return path


def forward(wi, w, wo, b, x0, u, dt, kick=None, read=np.tanh):
    """What the output reads (rates phi(x[1..K]), or with ``read`` = identity the states) and the
    outputs of one network on trials u (B, K, N_in); ``kick`` (step, vector) adds the vector to x[step + 1]."""
    x = np.broadcast_to(x0, (u.shape[0], len(x0))).copy()
    rates = []
    for k in range(u.shape[1]):
        x = (1 - dt) * x + dt * (np.tanh(x) @ w.T + u[:, k] @ wi + b)
        if kick is not None and k == kick[0]:
            x = x + kick[1]
        rates.append(read(x))
    r = np.stack(rates, 1)
    return r, r @ wo


def after_grace(a, dt):
    skip = int(np.floor(GRACE / dt + 1e-9))
    return a[:, skip:].reshape(-1, a.shape[-1]), skip


def test_alignment_matches_numpy(analysed):
    run = load(analysed)
    ds, task = run.data, run.task()
    for e in range(ds.sizes["net"]):
        net = ds.isel(net=e)
        batch = eval_batch(task, int(net.seed), float(net.g), 6)
        args = (net.wi.values, net.w.values, net.wo.values, net.b.values, net.x0.values)
        r, z = forward(*args, batch.inputs, task.dt)
        x, skip = after_grace(r, task.dt)
        assert net.align_rho.item() == pytest.approx(np_gen_corr(net.wo.values.T, x), rel=1e-9)
        xc = x - x.mean(0)
        ev = np.sort(np.linalg.eigvalsh(xc.T @ xc))[::-1]
        assert net.align_dim_x90.item() == np.argmax(np.cumsum(ev) / ev.sum() >= 0.9) + 1
        assert net.align_norm_activity.item() == pytest.approx(np.sqrt((x ** 2).sum(1).mean()), rel=1e-9)
        # D_fit,90: ridge on the leading components of the first 4 of the 6 trials, R^2 on the last 2
        scores = xc @ np.linalg.svd(xc, full_matrices=False)[2].T
        zs = after_grace(z, task.dt)[0]
        cut = 4 * len(zs) // 6
        r2 = [np_ridge_heldout_r2(scores[:cut, :k], zs[:cut], scores[cut:, :k], zs[cut:], zs.mean(0), loo=loo_hat)
              for k in range(1, 13)]
        np.testing.assert_allclose(net.align_fit_r2.values, r2, atol=1e-9)
        want = np.argmax(np.array(r2) >= 0.9) + 1 if max(r2) >= 0.9 else -1
        assert net.align_dim_fit90.item() == want
        # a pulse of size 1 along each readout column at the first step after the grace time
        u3 = batch.inputs[:3]
        base = forward(*args, u3, task.dt)[1]
        resp = []
        for c in net.wo.values.T:
            pert = forward(*args, u3, task.dt, kick=(skip, c / np.linalg.norm(c)))[1]
            resp.append(np.sqrt(((pert - base)[:, skip:] ** 2).mean()))
        assert net.align_pulse_readout.item() == pytest.approx(np.mean(resp), rel=1e-7)


def test_regime_matches_numpy(analysed):
    run = load(analysed)
    ds, task = run.data, run.task()
    for e in range(ds.sizes["net"]):
        net = ds.isel(net=e)
        rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)  # noqa: E731
        assert net.regime_rel_dw.item() == pytest.approx(rel(net.w.values, net.w0.values), rel=1e-10)
        assert net.regime_rel_dwi.item() == pytest.approx(rel(net.wi.values, net.wi0.values), rel=1e-10)
        assert net.regime_rel_dwo.item() == pytest.approx(rel(net.wo.values, net.wo0.values), rel=1e-10)
        s = np.linalg.svd(net.w.values - net.w0.values, compute_uv=False)
        assert net.regime_dw_pr_rank.item() == pytest.approx((s ** 2).sum() ** 2 / (s ** 4).sum(), rel=1e-10)
        batch = eval_batch(task, int(net.seed), float(net.g), 6)
        fin = after_grace(forward(net.wi.values, net.w.values, net.wo.values, net.b.values, net.x0.values,
                                  batch.inputs, task.dt)[0], task.dt)[0]
        ini = after_grace(forward(net.wi0.values, net.w0.values, net.wo0.values, net.b.values, net.x0.values,
                                  batch.inputs, task.dt)[0], task.dt)[0]
        target = after_grace(batch.targets * batch.mask, task.dt)[0]
        assert net.regime_cka_init.item() == pytest.approx(np_cka(ini, fin), rel=1e-8)
        assert net.regime_kta.item() == pytest.approx(np_cka(fin, target), rel=1e-8)
        assert net.regime_kta_init.item() == pytest.approx(np_cka(ini, target), rel=1e-8)


def test_similarity_matches_numpy_and_reads_stored_fixed_points(analysed):
    run = load(analysed)
    ds, task = run.data, run.task()
    e = ds.sizes["net"]
    batch = task.sample(5, member_rng(0, 0.0, "similarity"))  # one set for all members
    x = [after_grace(forward(n.wi.values, n.w.values, n.wo.values, n.b.values, n.x0.values, batch.inputs,
                             task.dt)[0], task.dt)[0] for n in (ds.isel(net=i) for i in range(e))]
    svd = [np.linalg.svd(ds.w.values[i] - ds.w0.values[i]) for i in range(e)]
    for i in range(e):
        for j in range(e):
            assert ds.sim_cka.values[i, j] == pytest.approx(np_cka(x[i], x[j]), rel=1e-8)
            np.testing.assert_allclose(ds.sim_angle_left.values[i, j],
                                       np.sort(scipy.linalg.subspace_angles(svd[i][0][:, :3], svd[j][0][:, :3])),
                                       atol=1e-6)
            np.testing.assert_allclose(ds.sim_angle_right.values[i, j],
                                       np.sort(scipy.linalg.subspace_angles(svd[i][2][:3].T, svd[j][2][:3].T)),
                                       atol=1e-6)
    assert np.isnan(ds.sim_fp_stable_diff.values).all()  # no dynamics stored
    assert main(["analyze", str(analysed), "--analysis", "dynamics", "--param", "dynamics.inits=8",
                 "--no-progress"]) == 0
    assert main(["analyze", str(analysed), "--analysis", "similarity", "--param", "similarity.trials=5",
                 "--no-progress", "--force"]) == 0
    ds = load(analysed).data
    st = ds.fp_n_stable.sel(variant="w").values.astype(float)
    un = ds.fp_count.sel(variant="w").values - st
    np.testing.assert_array_equal(ds.sim_fp_stable_diff.values, np.abs(st[:, None] - st[None]))
    np.testing.assert_array_equal(ds.sim_fp_unstable_diff.values, np.abs(un[:, None] - un[None]))


def test_missing_data_and_bad_parameters_say_so_in_one_line(run_dir, tmp_path, capsys):
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    before = sorted(p.name for p in path.iterdir())
    assert main(["analyze", str(path), "--analysis", "alignment", "--param", "alignment.grace=60",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "grace time 60 leaves no step" in err
    assert main(["analyze", str(path), "--analysis", "regime", "--param", "regime.eval_trials=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "eval_trials must be an integer >= 1, got 0" in err
    assert sorted(p.name for p in path.iterdir()) == before
    shutil.rmtree(path / "results.zarr")  # a run without its results
    assert main(["analyze", str(path), "--analysis", "alignment", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def forward_state(*args, kick=None):
    """As ``forward`` for a network whose output reads the state: states x[1..K] and z = Wout^T x."""
    return forward(*args, kick=kick, read=lambda x: x)


def test_a_state_readout_is_measured_on_the_state_and_late_pulse_responses(tmp_path):
    """readout_from = state (Schuessler et al. 2024): rho, the norm and the components are those of
    x, not of phi(x); a pulse_delay measures the output only from that time after the pulse."""
    path = tmp_path / "run"
    assert main(["train", "--task", "flipflop", "--N", "10", "--g", "0.9", "--seeds", "1", "--epochs", "20",
                 "--batch", "8", "--dtype", "float64", "--readout-from", "state", "--readout", "large",
                 "--no-progress", "--out", str(path)]) == 0
    assert main(["analyze", str(path), "--analysis", "alignment", "--param", "alignment.eval_trials=4",
                 "--param", "alignment.pulse_trials=2", "--param", "alignment.pulse_delay=3",
                 "--param", "alignment.pulse_size=2", "--no-progress"]) == 0
    run = load(path)
    ds, task = run.data, run.task()
    net = ds.isel(net=0)
    batch = eval_batch(task, int(net.seed), float(net.g), 4)
    args = (net.wi.values, net.w.values, net.wo.values, net.b.values, net.x0.values)
    s, z = forward_state(*args, batch.inputs, task.dt)
    x, skip = after_grace(s, task.dt)
    assert net.align_rho.item() == pytest.approx(np_gen_corr(net.wo.values.T, x), rel=1e-9)
    assert net.align_norm_activity.item() == pytest.approx(np.sqrt((x ** 2).sum(1).mean()), rel=1e-9)
    late = skip + int(np.floor(3 / task.dt + 1e-9))
    base = forward_state(*args, batch.inputs[:2], task.dt)[1]
    resp = []
    for c in net.wo.values.T:
        pert = forward_state(*args, batch.inputs[:2], task.dt, kick=(skip, 2 * c / np.linalg.norm(c)))[1]
        resp.append(np.sqrt(((pert - base)[:, late:] ** 2).mean()) / 2)
    assert net.align_pulse_readout.item() == pytest.approx(np.mean(resp), rel=1e-7)


@pytest.mark.parametrize("name, param, value, message", [
    ("alignment", "grace", -1.0, "grace must be a time >= 0 (units of tau), got -1.0"),
    ("alignment", "pulse_delay", float("nan"), "pulse_delay must be a time >= 0 (units of tau), got nan"),
    ("alignment", "eval_noise", "yes", "eval_noise must be true or false, got 'yes'"),
    ("regime", "grace", float("inf"), "grace must be a time >= 0 (units of tau), got inf"),
    ("similarity", "trials_seed", -2, "trials_seed must be an integer >= 0, got -2"),
    ("similarity", "trials_seed", True, "trials_seed must be an integer >= 0, got True"),
    ("similarity", "eval_noise", 2, "eval_noise must be true or false, got 2"),
    ("noise", "grace", -0.5, "grace must be a time >= 0 (units of tau), got -0.5"),
    ("connectivity", "ranks", 1.5, "ranks must be an integer >= 0, got 1.5"),
    ("connectivity", "eval_noise", None, "eval_noise must be true or false, got None"),
])
def test_bad_parameters_of_the_plug_ins_name_the_value(name, param, value, message):
    from randstruct.analysis.base import make_params
    from randstruct.analysis.registry import get_analysis

    with pytest.raises(ValueError) as err:
        make_params(get_analysis(name), {param: value})
    assert str(err.value) == message
