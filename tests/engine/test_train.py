"""Trainer semantics: optimizers, ensemble == serial, recording, divergence, resume."""

import numpy as np
import pytest
import torch

from randstruct.engine import reference
from randstruct.engine.model import Ensemble
from randstruct.engine.seeding import member_rng
from randstruct.tasks import get_task
from randstruct.engine.train import TrainConfig, Trainer, train

N = 24


def _flipflop():
    return get_task("flipflop", T=15)


def _reference_run(g, seed, task, config, dtype=torch.float64):
    """The same network trained with autograd + torch.optim on the same batches."""
    ens = Ensemble.init(N, [g], [seed], task.n_in, task.n_out, dtype=dtype)
    params = {k: v[0].clone() for k, v in ens.params().items()}
    rng = member_rng(seed, g, "train")
    batches = []
    for _ in range(config.epochs):
        b = task.sample(config.batch_size, rng)
        batches.append(tuple(torch.as_tensor(a, dtype=dtype) for a in (b.inputs, b.targets, b.mask)))
    lr = config.learning_rates(N, np.array([g]))[0]
    losses = reference.train(params, config.trainable, batches, task.dt, "tanh", lr, config.optimizer)
    return np.array(losses), params


@pytest.mark.parametrize("optimizer, lr_rule, lr0", [("adam", "over_n", 0.5), ("sgd", "constant", 0.5)])
def test_matches_torch_optim_in_float64(optimizer, lr_rule, lr0):
    task = _flipflop()
    config = TrainConfig(epochs=12, batch_size=4, optimizer=optimizer, lr_rule=lr_rule, lr0=lr0)
    ens = Ensemble.init(N, [0.9], [2], task.n_in, task.n_out, dtype=torch.float64)
    rec = train(ens, task, config)
    ref_loss, ref_params = _reference_run(0.9, 2, task, config)
    np.testing.assert_allclose(rec.loss[0], ref_loss, rtol=1e-9)
    for name in config.trainable:
        torch.testing.assert_close(getattr(ens, name)[0], ref_params[name], rtol=1e-8, atol=1e-11)


def test_ensemble_member_follows_its_serial_trajectory_float32():
    task = _flipflop()
    config = TrainConfig(epochs=25, batch_size=8, lr0=0.5, rec_step=5)
    gs = [0.0, 0.9, 1.8]
    ens = Ensemble.init(N, gs, 2, task.n_in, task.n_out)
    rec = train(ens, task, config)
    for e in range(ens.size):
        alone = Ensemble.init(N, [ens.g[e]], [ens.seed[e]], task.n_in, task.n_out)
        rec1 = train(alone, task, config)
        np.testing.assert_allclose(rec.loss[e], rec1.loss[0], rtol=2e-4, atol=1e-7)
        np.testing.assert_allclose(rec.sv_dw[e], rec1.sv_dw[0], rtol=1e-3, atol=1e-5)
        torch.testing.assert_close(ens.wrec[e], alone.wrec[0], rtol=1e-4, atol=1e-5)
    assert torch.all(ens.dw.flatten(1).norm(dim=1) > 1e-3), "every member must actually have been trained"
    assert len(np.unique(rec.loss[:, 0])) == ens.size, "members draw different batches and weights"


def test_recording_before_update_and_sv_of_dw():
    task = _flipflop()
    config = TrainConfig(epochs=7, batch_size=4, lr0=0.5, rec_step=3, record_weights=True)
    ens = Ensemble.init(N, [1.2], 1, 2, 2)
    w0 = ens.w0.clone()
    rec = train(ens, task, config)
    np.testing.assert_array_equal(rec.rec_epochs, [0, 3, 6])
    np.testing.assert_allclose(rec.weights[0, 0], w0[0].numpy())  # epoch 0 = before any update
    for j in range(3):
        sv = np.linalg.svd(rec.weights[0, j] - w0[0].numpy(), compute_uv=False)
        np.testing.assert_allclose(rec.sv_dw[0, j], sv, atol=2e-6)
    assert rec.sv_dw[0, 0].max() == 0
    assert not np.allclose(rec.weights[0, 2], ens.wrec[0].numpy())  # last record is one update early


def test_grad_norm_and_untrained_parameters_stay_fixed():
    task = _flipflop()
    config = TrainConfig(epochs=3, batch_size=4, trainable=("wrec",), lr0=0.5)
    ens = Ensemble.init(N, [0.5], 1, 2, 2, dtype=torch.float64)
    wi, wo = ens.wi.clone(), ens.wo.clone()
    rec = train(ens, task, config)
    torch.testing.assert_close(ens.wi, wi)
    torch.testing.assert_close(ens.wo, wo)
    assert np.all(rec.grad_norm > 0)


def test_divergent_member_is_flagged_frozen_and_others_continue():
    task = get_task("simple", T=10)
    # lr = lr0 (1 - g^2)^2: far too large for g = 0, about right for g = 0.9
    config = TrainConfig(epochs=40, batch_size=1, optimizer="sgd", lr_rule="linear_gain", lr0=5.0,
                         trainable=("wrec",))
    ens = Ensemble.init(N, [0.0, 0.9], 1, 1, 1, nonlinearity="linear")
    rec = train(ens, task, config)
    assert rec.diverged_epoch[0] >= 0 and rec.diverged_epoch[1] == -1
    d = rec.diverged_epoch[0]
    assert np.all(np.isnan(rec.loss[0, d + 1:])) and np.all(np.isnan(rec.grad_norm[0, d + 1:]))
    assert np.all(np.isfinite(rec.loss[1])) and rec.loss[1, -1] < 1e-6
    assert torch.isfinite(ens.wrec).all(), "frozen members keep their last finite weights"


def test_learning_rate_rules():
    g = np.array([0.0, 0.6])
    assert TrainConfig(epochs=1, lr0=0.05).learning_rates(256, g) == pytest.approx([0.05 / 256] * 2)
    lin = TrainConfig(epochs=1, optimizer="sgd", lr_rule="linear_gain", lr0=0.015)
    assert lin.learning_rates(1024, g) == pytest.approx(0.015 * (1 - g**2) ** 2)


def test_resume_from_state_dict_is_exact():
    task = _flipflop()
    config = TrainConfig(epochs=10, batch_size=4, lr0=0.5, rec_step=2)
    full = Ensemble.init(N, [0.3, 1.5], 1, 2, 2)
    rec_full = train(full, task, config)

    first = Ensemble.init(N, [0.3, 1.5], 1, 2, 2)
    trainer = Trainer(first, task, config)
    trainer.run(until=4)
    state = trainer.state_dict()
    second = Ensemble.init(N, [0.3, 1.5], 1, 2, 2)
    resumed = Trainer(second, task, config)
    resumed.load_state_dict(state)
    rec = resumed.run()
    np.testing.assert_array_equal(rec.loss, rec_full.loss)
    np.testing.assert_array_equal(rec.sv_dw, rec_full.sv_dw)
    torch.testing.assert_close(second.wrec, full.wrec, rtol=0, atol=0)


def test_training_in_member_chunks_changes_nothing(monkeypatch):
    """On a CPU the kernels run over cache-sized chunks of members; the records are bitwise those
    of one call over the whole ensemble."""
    task = _flipflop()
    config = TrainConfig(epochs=6, batch_size=4, lr0=0.5, rec_step=2)
    whole = Ensemble.init(N, [0.0, 0.5, 1.0, 1.5, 2.0], 1, 2, 2)
    rec_whole = train(whole, task, config)
    monkeypatch.setattr("randstruct.engine.kernels.CACHE_BUDGET", 1)  # chunks of 4 members at least
    chunked = Ensemble.init(N, [0.0, 0.5, 1.0, 1.5, 2.0], 1, 2, 2)
    trainer = Trainer(chunked, task, config)
    assert len(trainer._chunks) == 2
    rec = trainer.run()
    np.testing.assert_array_equal(rec.loss, rec_whole.loss)
    np.testing.assert_array_equal(rec.sv_dw, rec_whole.sv_dw)
    torch.testing.assert_close(chunked.wrec, whole.wrec, rtol=0, atol=0)


def test_prefetched_batches_give_the_same_training_and_resume_exactly():
    """Batches made ahead by worker processes (the accelerator path) change nothing, even when a
    checkpoint is taken while batches beyond it were already drawn."""
    task = _flipflop()
    config = TrainConfig(epochs=10, batch_size=4, lr0=0.5, rec_step=2)
    plain = Ensemble.init(N, [0.3, 1.5], 1, 2, 2)
    rec_plain = train(plain, task, config)

    ahead = Ensemble.init(N, [0.3, 1.5], 1, 2, 2)
    trainer = Trainer(ahead, task, config, prefetch=True)
    trainer.run(until=4)
    assert len(trainer._prefetch.pending) > 0
    state = trainer.state_dict()
    trainer.close()
    resumed_ens = Ensemble.init(N, [0.3, 1.5], 1, 2, 2)
    resumed = Trainer(resumed_ens, task, config, prefetch=True)
    resumed.load_state_dict(state)
    rec = resumed.run()
    resumed.close()
    np.testing.assert_array_equal(rec.loss, rec_plain.loss)
    np.testing.assert_array_equal(rec.grad_norm, rec_plain.grad_norm)
    torch.testing.assert_close(resumed_ens.wrec, plain.wrec, rtol=0, atol=0)


@pytest.mark.parametrize("nonlinearity, lr0", [("tanh", 0.5), ("linear", 20.0)])
def test_spectra_on_host_threads_give_the_same_records(nonlinearity, lr0):
    """The accelerator path computes full spectra on worker threads; with linear networks and a
    huge rate some members diverge, so the rows of the surviving members must land right."""
    task = _flipflop()
    config = TrainConfig(epochs=10, batch_size=4, lr0=lr0, rec_step=2)
    g = [0.0, 0.6, 1.2, 1.8]
    plain = Ensemble.init(N, g, 1, 2, 2, nonlinearity=nonlinearity)
    rec_plain = train(plain, task, config)
    threaded = Ensemble.init(N, g, 1, 2, 2, nonlinearity=nonlinearity)
    trainer = Trainer(threaded, task, config, host_spectra=True)
    rec = trainer.run()
    trainer.close()
    np.testing.assert_array_equal(rec.diverged_epoch, rec_plain.diverged_epoch)
    np.testing.assert_array_equal(rec.sv_dw, rec_plain.sv_dw)


def test_fixed_user_batch():
    task = _flipflop()
    batch = task.sample(6, 0)
    config = TrainConfig(epochs=30, batch_size=6, lr0=1.0)
    ens = Ensemble.init(N, [0.9], 1, 2, 2)
    rec = train(ens, task, config, data=batch)
    assert rec.loss[0, -1] < 0.7 * rec.loss[0, 0]
    np.testing.assert_allclose(ens.loss(batch.inputs, batch.targets, batch.mask, task.dt).numpy()[0],
                               rec.loss[0, -1], rtol=0.2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=0), "epochs must be an integer >= 1"),
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
        (dict(lr_rule="fast"), "unknown lr_rule 'fast'"),
        (dict(lr0=-1.0), "lr0 must be a finite number > 0"),
        (dict(trainable=("wout",)), "trainable must be a non-empty subset"),
        (dict(rec_step=0), "rec_step must be an integer >= 1"),
        (dict(batch_size=0), "batch_size must be an integer >= 1"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**(dict(epochs=5) | kwargs))


def test_task_network_mismatch():
    with pytest.raises(ValueError, match="task 'mante' has 4 inputs"):
        Trainer(Ensemble.init(8, [0.5], 1, 2, 2), get_task("mante"), TrainConfig(epochs=1))
