"""The noise plug-in: fluctuation variances along the readout, the leading components and a random
direction, against NumPy float64 code written here on the same noisy simulation."""

import numpy as np
import pytest

from randstruct.analysis.evaluation import eval_batch
from randstruct.cli import main
from randstruct.runs import load


def test_noise_variances_match_numpy_and_a_noiseless_run_is_refused(tmp_path, capsys):
    path = tmp_path / "run"
    assert main(["train", "--task", "flipflop", "--N", "10", "--g", "0.6,1.3", "--seeds", "1", "--epochs", "10",
                 "--batch", "8", "--dtype", "float64", "--readout-from", "state", "--noise-rec", "0.3",
                 "--noise-x0", "0.5", "--no-progress", "--out", str(path)]) == 0
    assert main(["analyze", str(path), "--analysis", "noise", "--param", "noise.conditions=3", "--param",
                 "noise.repeats=5", "--param", "noise.grace=2", "--no-progress"]) == 0
    run = load(path)
    ds, task, ens = run.data, run.task(), run.ensemble()
    skip = int(np.floor(2 / task.dt + 1e-9))
    for e in range(ds.sizes["net"]):
        net = ds.isel(net=e)
        cond = eval_batch(task, int(net.seed), float(net.g), 3).inputs
        u = np.concatenate([cond] * 5)
        member = ens.select([e])
        x = member.simulate(u, task.dt, noise_seed=0, return_states=True)[1][0].double().numpy()[:, skip:]
        x = x.reshape(5, 3, -1, x.shape[-1])
        dh = (x - x.mean(0)).reshape(-1, x.shape[-1])
        cov = np.cov(dh.T)
        q = np.linalg.qr(net.wo.values)[0]
        readout = np.trace(q.T @ cov @ q) / q.shape[1]
        m = x.mean(0).reshape(-1, x.shape[-1])
        p = np.linalg.svd(m - m.mean(0))[2][:2].T
        rand = np.trace(cov) / cov.shape[0]
        assert net.noise_var_readout.item() == pytest.approx(readout, rel=1e-9)
        assert net.noise_var_pc.item() == pytest.approx(np.trace(p.T @ cov @ p) / 2, rel=1e-9)
        assert net.noise_var_random.item() == pytest.approx(rand, rel=1e-9)
        assert net.noise_compression.item() == pytest.approx(readout / rand, rel=1e-9)
        # the random-direction variance is the mean over unit directions
        dirs = np.random.default_rng(0).standard_normal((20000, cov.shape[0]))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        assert np.einsum("ij,jk,ik->i", dirs, cov, dirs).mean() == pytest.approx(rand, rel=0.03)
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    assert "noise w_out/rand" in capsys.readouterr().out
    quiet = tmp_path / "quiet"
    assert main(["train", "--task", "flipflop", "--N", "8", "--g", "0.5", "--seeds", "1", "--epochs", "2",
                 "--no-progress", "--out", str(quiet)]) == 0
    capsys.readouterr()
    assert main(["analyze", str(quiet), "--analysis", "noise", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a run trained with noise" in err
