"""The field's model options (noise, readout, penalties, Dale's law, sparsity, relu/softplus):
gradients of the trainer against float64 autograd of the same objective, closed forms for the
noise, the constraints through training, and exact resume with noise on."""

import numpy as np
import pytest
import torch

from randstruct.engine import reference
from randstruct.engine.constraints import column_signs
from randstruct.engine.model import Ensemble
from randstruct.engine.options import ModelOptions
from randstruct.engine.train import TrainConfig, Trainer, train
from randstruct.tasks import Batch, get_task

F64 = torch.float64
N, N_IN, N_OUT, B = 9, 2, 2, 4
OPTION_CASES = {
    "noise_rec": dict(options=dict(noise_rec=0.3)),
    "noise_x0": dict(options=dict(noise_x0=0.7)),
    "noise_in": dict(options=dict(noise_in=0.4)),
    "readout_large": dict(options=dict(readout="large")),
    "l2_w": dict(train=dict(l2_w=0.3)),
    "l2_dw": dict(train=dict(l2_dw=0.5), perturb=True),
    "l2_rates": dict(train=dict(l2_rates=0.2)),
    "dale": dict(options=dict(dale=0.7)),
    "sparsity": dict(options=dict(sparsity=0.4)),
    "readout_state": dict(options=dict(readout_from="state")),
    "readout_state_large": dict(options=dict(readout_from="state", readout="large", noise_rec=0.2, noise_x0=1.0)),
    "relu": dict(nonlinearity="relu"),
    "softplus": dict(nonlinearity="softplus"),
    "all": dict(options=dict(noise_rec=0.3, noise_x0=0.7, noise_in=0.4, readout="large", dale=0.7, sparsity=0.4),
                train=dict(l2_w=0.3, l2_dw=0.5, l2_rates=0.2), nonlinearity="relu", perturb=True),
    "all_softplus": dict(options=dict(noise_rec=0.3, noise_x0=0.7, noise_in=0.4, dale=0.6, sparsity=0.3),
                         train=dict(l2_w=0.1, l2_dw=0.5, l2_rates=0.2), nonlinearity="softplus", perturb=True),
    "all_state": dict(options=dict(noise_rec=0.3, noise_x0=0.7, noise_in=0.4, readout="large", dale=0.7, sparsity=0.4,
                                   readout_from="state"),
                      train=dict(l2_w=0.3, l2_dw=0.5, l2_rates=0.2), nonlinearity="relu", perturb=True),
    "all_state_softplus": dict(options=dict(noise_rec=0.3, noise_x0=0.7, dale=0.6, readout_from="state"),
                               train=dict(l2_rates=0.2), nonlinearity="softplus"),
}


def _problem(case, k=7, seed=0):
    """A float64 trainer on one fixed random batch, every parameter trained, b and x0 nonzero."""
    spec = OPTION_CASES[case]
    gen = torch.Generator().manual_seed(seed)
    ens = Ensemble.init(N, [0.6, 1.4], 2, N_IN, N_OUT, nonlinearity=spec.get("nonlinearity", "tanh"), dtype=F64,
                        options=ModelOptions(**spec.get("options", {})))
    ens.b = torch.randn(ens.size, N, generator=gen, dtype=F64) * 0.3
    ens.x0 = torch.randn(ens.size, N, generator=gen, dtype=F64) * 0.5
    if spec.get("perturb"):  # W != W0, so that the dW penalty has a gradient at the start (signs kept)
        ens.wrec = ens.wrec * (1 + 0.3 * torch.rand(ens.wrec.shape, generator=gen, dtype=F64))
    if ens.sign is not None:  # a parameter of the wrong sign: W = |wrec| s is the same, d/dwrec flips
        ens.wrec = ens.wrec * torch.where(torch.rand(ens.wrec.shape, generator=gen, dtype=F64) < 0.3, -1.0, 1.0)
    rnd = np.random.default_rng(seed)
    data = Batch(inputs=rnd.standard_normal((B, k, N_IN)), targets=rnd.standard_normal((B, k, N_OUT)),
                 mask=(rnd.random((B, k, N_OUT)) > 0.3).astype(float), meta={}, dt=0.2)
    task = get_task("flipflop", dt=0.2)  # only its sizes and dt: the batch is the fixed random one
    config = TrainConfig(epochs=1, batch_size=B, trainable=("wi", "wrec", "wo", "b", "x0"), **spec.get("train", {}))
    return Trainer(ens, task, config, data=data), config


def _autograd(trainer, config, batch):
    """Task loss, penalty and gradients of member e from float64 autograd through the reference model."""
    ens = trainer.ensemble
    arrays = dict(zip(trainer.stream.names(), (a.transpose(1, 2) for a in batch)))  # batch-first
    results = []
    for e in range(ens.size):
        leaves = {k: v[e].clone().requires_grad_() for k, v in ens.params().items()}
        w = leaves["wrec"]
        if ens.sign is not None:
            w = w.abs() * ens.sign[e][None, :]
        if ens.mask is not None:
            w = w * ens.mask[e]
        x0n = arrays["x0_noise"][e][:, 0] if "x0_noise" in arrays else None
        recn = arrays["rec_noise"][e] if "rec_noise" in arrays else None
        z, rates = reference.run(arrays["inputs"][e], leaves["wi"], w, leaves["wo"], leaves["b"], leaves["x0"],
                                 trainer.dt, ens.nonlinearity, x0n, recn, return_rates=True,
                                 readout_from=ens.options.readout_from)
        mask = arrays["mask"][e]
        loss = 0.5 * (mask * (z - arrays["targets"][e]) ** 2).sum() / mask.sum()
        penalty = (config.l2_w * (w ** 2).mean() + config.l2_dw * ((w - ens.w0[e]) ** 2).mean()
                   + config.l2_rates * (rates ** 2).mean())
        (loss + penalty).backward()
        results.append((loss.detach(), penalty.detach(), {k: v.grad for k, v in leaves.items()}))
    return results


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_gradients_of_every_option_match_float64_autograd(case):
    trainer, config = _problem(case)
    batch = trainer.stream.next()
    traces, d_out, shown, w, penalty_grad = trainer.forward_stage(*batch)
    grads = trainer.gradients(traces, d_out, w, penalty_grad)
    hist = trainer.recorder.hist
    for e, (loss, penalty, ref) in enumerate(_autograd(trainer, config, batch)):
        torch.testing.assert_close(hist[0, e, 0], loss, rtol=1e-12, atol=1e-14)
        if config.regularized:
            torch.testing.assert_close(hist[trainer.recorder.penalty_row, e, 0], penalty, rtol=1e-12, atol=1e-14)
        for name, g in ref.items():
            torch.testing.assert_close(grads[name][e], g, rtol=1e-10, atol=1e-13, msg=f"{case} member {e} {name}")


def test_state_noise_has_the_stationary_variance_of_the_euler_recursion():
    """Linear, W = 0, no input: x[k+1] = (1 - dt) x[k] + sqrt(dt) sigma xi has stationary variance
    sigma^2 dt / (1 - (1 - dt)^2); checked on the last step of independent trials within 3 SE."""
    sigma, dt, n, trials = 0.7, 0.2, 50, 200
    ens = Ensemble.init(n, [0.0], 1, 1, 1, nonlinearity="linear", dtype=F64, options=ModelOptions(noise_rec=sigma))
    _, x = ens.simulate(np.zeros((trials, 60, 1)), dt, return_rates=True, noise_seed=3)
    last = x[0, :, -1].numpy().ravel()  # steps apart by 60 >> 1 / dt: stationary, trials and units independent
    want = sigma**2 * dt / (1 - (1 - dt) ** 2)
    se = want * np.sqrt(2 / (last.size - 1))
    assert abs(last.var() - want) < 3 * se, (last.var(), want, se)


def test_initial_state_and_input_noise_have_their_scales():
    """x[1] = (1 - dt) (x0 + sigma_x0 xi) + dt Win^T (u + sigma_in xi' / sqrt(dt)) with W = 0, u = 0."""
    dt, n, trials = 0.25, 40, 400
    for opts, want in [(dict(noise_x0=0.8), (1 - dt) ** 2 * 0.8**2), (dict(noise_in=0.6), dt * 0.6**2)]:
        ens = Ensemble.init(n, [0.0], 1, 1, 1, nonlinearity="linear", dtype=F64, options=ModelOptions(**opts))
        ens.wi = torch.ones_like(ens.wi)  # one input channel into every unit
        _, x = ens.simulate(np.zeros((trials, 1, 1)), dt, return_rates=True, noise_seed=0)
        first = x[0, :, 0].numpy()
        if "noise_in" in opts:
            first = first[:, 0]  # the same input noise reaches every unit
        se = want * np.sqrt(2 / (first.size - 1))
        assert abs(first.var() - want) < 3 * se, (opts, first.var(), want)


def test_simulation_is_noiseless_without_a_noise_seed_and_reproducible_with_one():
    ens = Ensemble.init(16, [0.9], 2, 2, 2, options=ModelOptions(noise_rec=0.5, noise_x0=1.0, noise_in=0.3))
    plain = Ensemble.init(16, [0.9], 2, 2, 2)
    u = np.random.default_rng(0).standard_normal((3, 20, 2))
    assert torch.equal(ens.simulate(u, 0.2), plain.simulate(u, 0.2))
    a, b, c = (ens.simulate(u, 0.2, noise_seed=s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # a member's noise is its own: the same in a sub-ensemble
    assert torch.equal(ens.select([1]).simulate(u, 0.2, noise_seed=1)[0], a[1])


def test_large_readout_has_unit_norm_columns_and_small_one_norm_one_over_sqrt_n():
    n = 64
    large = Ensemble.init(n, [0.9], 1, 2, 3, dtype=F64, options=ModelOptions(readout="large"))
    small = Ensemble.init(n, [0.9], 1, 2, 3, dtype=F64)
    torch.testing.assert_close(large.wo.norm(dim=1), torch.ones(1, 3, dtype=F64))
    torch.testing.assert_close(small.wo * np.sqrt(n), large.wo)
    assert torch.equal(small.wi, large.wi)


@pytest.mark.parametrize("sparsity", [0.0, 0.5])
def test_dale_w0_is_balanced_signed_and_has_bulk_radius_g_without_outlier(sparsity):
    """Spectral radius / g over 10 members at N = 400 (measured: median 1.06, max 1.19 dense; 1.05,
    1.10 at sparsity 0.5); the same magnitudes and signs without the row balance give 16 g."""
    n, g = 400, 1.3
    ens = Ensemble.init(n, [g], 10, 1, 1, dtype=F64, options=ModelOptions(dale=0.8, sparsity=sparsity))
    sign = torch.as_tensor(column_signs(n, 0.8), dtype=F64)
    assert int((sign > 0).sum()) == 320
    assert bool(((ens.w0 * sign) >= 0).all())
    torch.testing.assert_close(ens.w0.sum(dim=2), torch.zeros(10, n, dtype=F64), atol=1e-12, rtol=0)  # rows balanced
    radius = torch.linalg.eigvals(ens.w0).abs().amax(dim=1).numpy() / g
    assert abs(np.median(radius) - 1) < 0.1 and np.all(np.abs(radius - 1) < 0.2), radius
    if sparsity:
        assert abs((ens.w0 == 0).double().mean().item() - sparsity) < 0.01


def test_sparse_w0_keeps_radius_g():
    n, g = 400, 0.9
    ens = Ensemble.init(n, [g], 2, 1, 1, dtype=F64, options=ModelOptions(sparsity=0.7))
    for w0 in ens.w0:
        assert abs(torch.linalg.eigvals(w0).abs().max().item() - g) < 0.15 * g


def test_constraints_hold_through_training():
    """Dale: no weight ever has the wrong sign; sparsity: the zero pattern never changes; the stored
    W is what the dynamics used (idempotent map), and a g = 0 Dale network still learns."""
    task = get_task("flipflop", T=15)
    options = ModelOptions(dale=0.75, sparsity=0.5, noise_rec=0.1)
    ens = Ensemble.init(24, [0.0, 0.9, 1.5], 1, 2, 2, options=options)
    w0 = ens.w0.clone()
    config = TrainConfig(epochs=30, batch_size=8, lr0=2.0, record_weights=True, rec_step=1)
    rec = train(ens, task, config)
    sign = ens.sign[:, None, :]
    history = torch.as_tensor(rec.weights)
    assert bool((history * sign[:, None] >= 0).all()) and bool((ens.w * sign >= 0).all())
    assert bool((ens.w[ens.mask == 0] == 0).all()) and bool((history[ens.mask[:, None].expand_as(history) == 0] == 0).all())
    assert torch.equal(ens.w[1:] == 0, w0[1:] == 0)  # g > 0: the zero pattern of W0 is the mask's
    assert bool(((ens.w - w0).abs().amax(dim=(1, 2)) > 0).all())  # every member moved, g = 0 included
    assert np.all(np.isfinite(rec.loss))


def _noisy_config():
    return TrainConfig(epochs=10, batch_size=4, lr0=0.5, rec_step=2, l2_rates=1e-3, l2_dw=1e-2)


def _noisy_ensemble():
    return Ensemble.init(N, [0.3, 1.5], 1, 2, 2, nonlinearity="softplus",
                         options=ModelOptions(noise_rec=0.2, noise_x0=0.5, noise_in=0.1, dale=0.8, sparsity=0.2))


@pytest.mark.parametrize("prefetch", [False, True])
def test_resume_with_noise_is_exact_and_prefetching_changes_nothing(prefetch):
    task = get_task("flipflop", T=15)
    full = _noisy_ensemble()
    rec_full = train(full, task, _noisy_config())
    first = _noisy_ensemble()
    trainer = Trainer(first, task, _noisy_config(), prefetch=prefetch)
    trainer.run(until=4)
    state = trainer.state_dict()
    trainer.close()
    second = _noisy_ensemble()
    resumed = Trainer(second, task, _noisy_config(), prefetch=prefetch)
    resumed.load_state_dict(state)
    rec = resumed.run()
    resumed.close()
    for name in ("loss", "penalty", "grad_norm", "sv_dw"):
        np.testing.assert_array_equal(getattr(rec, name), getattr(rec_full, name), err_msg=name)
    assert torch.equal(second.wrec, full.wrec)
    assert not np.array_equal(rec.loss, train(_plain_like(), task, _noisy_config()).loss)


def _plain_like():
    return Ensemble.init(N, [0.3, 1.5], 1, 2, 2, nonlinearity="softplus", options=ModelOptions(dale=0.8, sparsity=0.2))


def test_options_are_validated_with_one_line_errors():
    for kwargs, match in [(dict(noise_rec=-0.1), "noise_rec must be"), (dict(dale=1.0), "dale"),
                          (dict(dale=0.0), "dale"), (dict(sparsity=1.0), "sparsity"),
                          (dict(readout="huge"), "unknown readout 'huge'"),
                          (dict(readout_from="rate"), "unknown readout_from 'rate'; allowed: rates, state"), (dict(noise_in=float("nan")), "noise_in")]:
        with pytest.raises(ValueError, match=match):
            ModelOptions(**kwargs)
    with pytest.raises(ValueError, match="l2_dw must be"):
        TrainConfig(epochs=1, l2_dw=-1.0)


@pytest.mark.parametrize("variant", ["full", "rowcol", "resample"])
def test_shuffles_keep_column_signs_and_the_zero_pattern(variant):
    from randstruct.analysis import shuffle_w0

    n, g = 60, 1.1
    options = ModelOptions(dale=0.8, sparsity=0.5)
    w0 = Ensemble.init(n, [g], 1, 1, 1, dtype=F64, options=options).w0[0].numpy()
    shuffled = shuffle_w0(w0, g, variant, np.random.default_rng(5), options)
    sign = column_signs(n, 0.8)
    assert np.all(shuffled * sign >= 0) and not np.array_equal(shuffled, w0)
    if variant != "rowcol":  # rowcol moves the zero pattern with the rows and columns
        assert np.array_equal(shuffled == 0, w0 == 0)
    else:
        assert (shuffled == 0).sum() == (w0 == 0).sum()
    if variant == "full":  # the same magnitudes, within excitatory and within inhibitory columns
        for cols in (sign > 0, sign < 0):
            assert np.array_equal(np.sort(np.abs(shuffled[:, cols]).ravel()), np.sort(np.abs(w0[:, cols]).ravel()))
    unconstrained = Ensemble.init(n, [g], 1, 1, 1, dtype=F64).w0[0].numpy()
    assert np.array_equal(shuffle_w0(unconstrained, g, variant, np.random.default_rng(5)),
                          shuffle_w0(unconstrained, g, variant, np.random.default_rng(5), ModelOptions(noise_rec=0.2)))


@pytest.mark.parametrize("nonlinearity", ["tanh", "linear", "relu", "softplus"])
def test_dynamics_derivatives_follow_every_nonlinearity(nonlinearity):
    """dphi is phi's derivative (float64 autograd), phi is the kernels' rate function, and the
    Jacobian of the flow is autograd's."""
    from randstruct.dynamics.jacobians import dphi, flow, jacobian, phi

    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=F64) * 3
    xr = x.clone().requires_grad_()
    phi(xr, nonlinearity).sum().backward()
    torch.testing.assert_close(dphi(x, nonlinearity), xr.grad, rtol=1e-12, atol=1e-14)
    ens = Ensemble.init(7, [1.2], 1, 1, 1, nonlinearity=nonlinearity, dtype=F64)
    _, rates = ens.simulate(x[:, None, :1].expand(5, 3, 1).numpy(), 0.5, return_rates=True)
    _, want = reference.run(x[:, None, :1].expand(5, 3, 1), ens.wi[0], ens.wrec[0], ens.wo[0], ens.b[0], ens.x0[0],
                            0.5, nonlinearity, return_rates=True)
    torch.testing.assert_close(rates[0], want, rtol=1e-12, atol=1e-14)
    const = torch.zeros(1, 1, 7, dtype=F64)
    auto = torch.autograd.functional.jacobian(lambda v: flow(v[None, None], ens.wrec, const, nonlinearity)[0, 0], x[0])
    torch.testing.assert_close(jacobian(x[0], ens.wrec[0], nonlinearity), auto, rtol=1e-12, atol=1e-14)


def test_constraint_tensors_must_match_the_ensemble():
    ens = Ensemble.init(8, [0.9], 2, 1, 1, options=ModelOptions(dale=0.5, sparsity=0.5))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 8, 8\)"):
        ens.replace(mask=ens.mask[:, :4])
    with pytest.raises(ValueError, match=r"sign must have shape \(2, 8\)"):
        ens.replace(sign=ens.sign[:1])
    sub = ens.select([1])
    assert torch.equal(sub.mask[0], ens.mask[1]) and torch.equal(sub.w[0], ens.w[1])


@pytest.mark.parametrize("nonlinearity", ["tanh", "softplus"])
def test_readout_from_the_state_in_simulation_evaluation_and_fixed_point_readouts(nonlinearity):
    """simulate (kept trace and lean path) and evaluate read x, not phi(x), as the float64 reference
    does; the default still reads the rates; the dynamics readouts of a state follow the option."""
    from randstruct.dynamics.coordinates import readouts

    ens = Ensemble.init(11, [0.7, 1.5], 1, 2, 2, nonlinearity=nonlinearity, dtype=F64,
                        options=ModelOptions(readout_from="state", readout="large"))
    ens.x0 = torch.randn(ens.size, 11, generator=torch.Generator().manual_seed(3), dtype=F64)
    u = np.random.default_rng(1).standard_normal((3, 6, 2))
    rates_ens = ens.replace(options=ModelOptions(readout="large"))
    lean = ens.simulate(u, 0.2)
    kept, rates = ens.simulate(u, 0.2, return_rates=True)
    torch.testing.assert_close(lean, kept, rtol=0, atol=1e-15)
    target = np.zeros((3, 6, 2))
    for e in range(ens.size):
        want = reference.run(torch.as_tensor(u), ens.wi[e], ens.wrec[e], ens.wo[e], ens.b[e], ens.x0[e], 0.2,
                             nonlinearity, readout_from="state")
        torch.testing.assert_close(lean[e], want, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(lean, rates_ens.simulate(u, 0.2))
    loss = ens.loss(u, target, np.ones_like(target), 0.2)
    torch.testing.assert_close(loss, 0.5 * lean.square().sum(dim=(1, 2, 3)) / target.size)
    x = np.random.default_rng(2).standard_normal((2, 4, 11)) * 2
    torch.testing.assert_close(torch.as_tensor(readouts(x, ens.wo, nonlinearity, "state")),
                               torch.as_tensor(x) @ ens.wo)
    torch.testing.assert_close(torch.as_tensor(readouts(x, ens.wo, nonlinearity)),
                               reference.PHI[nonlinearity](torch.as_tensor(x)) @ ens.wo)
    assert rates.shape == (2, 3, 6, 11)
