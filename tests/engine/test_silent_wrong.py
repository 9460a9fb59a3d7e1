"""What used to be silently wrong or a crash deep inside: masked-out NaNs, channel counts, lr = 0,
networks without g, the initial x0, the CLI's E4/E5 options, info's stored singular values."""

import numpy as np
import pytest
import torch

import randstruct as rs
from randstruct.cli import main
from randstruct.engine import kernels
from randstruct.runs import load


def test_nan_targets_outside_the_mask_do_not_matter():
    out = torch.randn(2, 5, 3, 1, dtype=torch.float64)
    tgt = torch.randn_like(out)
    mask = (torch.rand_like(out) < 0.5).double()
    loss, grad = kernels.masked_mse(out, tgt, mask)
    poisoned = torch.where(mask == 0, float("nan"), tgt)
    loss2, grad2 = kernels.masked_mse(out, poisoned, mask)
    torch.testing.assert_close(loss2, loss, rtol=0, atol=0)
    torch.testing.assert_close(grad2, grad, rtol=0, atol=0)
    # closed form in float64: 1/2 sum M (z - zhat)^2 / sum M
    expect = 0.5 * ((out - tgt) ** 2 * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3))
    torch.testing.assert_close(loss, expect)


def test_simulate_checks_channels_and_lengths():
    task = rs.get_task("romo")
    ens = rs.Ensemble.init(8, [0.5], 1, task.n_in, task.n_out)
    batch = task.sample(3, 0)
    for n_ch in (task.n_in + 1, 7):
        with pytest.raises(ValueError, match=f"inputs have {n_ch} channels but the networks have {task.n_in}"):
            ens.simulate(np.zeros((3, 10, n_ch)), task.dt)
    with pytest.raises(ValueError, match="targets must be"):
        ens.loss(batch.inputs, batch.targets[:, :-1], batch.mask, task.dt)


def test_linear_gain_at_g_one_is_refused():
    cfg = rs.TrainConfig(epochs=2, optimizer="sgd", lr_rule="linear_gain")
    with pytest.raises(ValueError, match="= 0 at g = 1"):
        rs.RunSpec(task="simple", n=8, g=(0.5, 1.0), seeds=1, train=cfg)


def test_networks_from_arrays_without_g_train():
    task = rs.get_task("romo")
    ref = rs.Ensemble.init(8, [0.5], 1, task.n_in, task.n_out)
    ens = rs.Ensemble.from_arrays(ref.wrec.numpy().copy(), ref.wi.numpy().copy(), ref.wo.numpy().copy())
    record = rs.train(ens, task, rs.TrainConfig(epochs=3, batch_size=2))
    assert np.isfinite(record.loss).all() and not torch.equal(ens.wrec, ref.wrec)
    with pytest.raises(ValueError, match="linear_gain' needs every network's g"):
        rs.train(ens, task, rs.TrainConfig(epochs=1, batch_size=2, lr_rule="linear_gain"))


def test_cli_options_of_the_cosine_experiment_and_the_initial_x0(tmp_path, capsys):
    out = tmp_path / "cos"
    assert main(["train", "--task", "cosine", "--N", "8", "--g", "0.5", "--epochs", "3", "--eig-top", "2",
                 "--shared-vector", "--x0-from-input", "--train", "wi,wrec,wo,x0", "--no-progress", "--out", str(out)]) == 0
    run = load(out)
    assert run.spec.shared_vector and run.spec.x0_from_input and run.data.eig_w_rec.shape[-1] == 2
    np.testing.assert_array_equal(run.data.wo0.values[:, :, 0], run.data.wi0.values[:, 0] / 8)
    init = run.ensemble("initial")
    torch.testing.assert_close(init.x0, init.wi[:, 0], rtol=0, atol=0)  # not the trained x0
    assert not torch.equal(init.x0, run.ensemble().x0)
    capsys.readouterr()


def test_info_uses_the_stored_singular_values(tmp_path, capsys, monkeypatch):
    from randstruct.analysis import analyze_run

    out = tmp_path / "r"
    rs.execute(rs.RunSpec(task="romo", n=8, g=(0.5,), seeds=2, train=rs.TrainConfig(epochs=3, batch_size=2)),
               out, progress=False)
    analyze_run(out, ranks=2, shuffles=1, eval_trials=2, progress=False)
    capsys.readouterr()

    def no_svd(*a, **k):
        raise AssertionError("info recomputed an SVD that analyze stored")

    monkeypatch.setattr(torch.linalg, "svdvals", no_svd)
    assert main(["info", str(out)]) == 0
    assert "||dW||_F" in capsys.readouterr().out
