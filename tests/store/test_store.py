"""Run directories: round trip, labelled arrays, resume after an interruption."""

import json

import numpy as np
import pytest
import torch

import randstruct
from randstruct import store
from randstruct.runs import RunSpec, execute, load
from randstruct.engine.train import TrainConfig, Trainer


def _spec(**kw):
    base = dict(task="romo", n=16, g=(0.0, 1.5), seeds=2,
                train=TrainConfig(epochs=8, batch_size=4, lr0=0.5, rec_step=2))
    return RunSpec(**(base | kw))


def test_round_trip_resimulates_identically(tmp_path):
    spec = _spec()
    run = execute(spec, tmp_path / "r", progress=False)
    # the same run in memory (all draws are seeded, so this is the same computation)
    ens = spec.make_ensemble()
    trainer = Trainer(ens, spec.make_task(), spec.train)
    rec = trainer.run()
    loaded = load(tmp_path / "r").ensemble()
    batch = spec.make_task().sample(5, 123)
    out_mem = ens.simulate(batch.inputs, spec.make_task().dt)
    out_disk = loaded.simulate(batch.inputs, spec.make_task().dt)
    torch.testing.assert_close(out_disk, out_mem, rtol=0, atol=0)
    np.testing.assert_array_equal(run.data.loss.values, rec.loss)
    torch.testing.assert_close(load(tmp_path / "r").ensemble("initial").wrec, spec.make_ensemble().w0)


def test_labelled_dataset_and_config(tmp_path):
    run = execute(_spec(), tmp_path / "r", progress=False)
    ds = run.data
    assert ds.loss.dims == ("net", "epoch") and ds.sizes["epoch"] == 8
    assert ds.sv_dw.dims == ("net", "rec", "sv") and list(ds.rec.values) == [0, 2, 4, 6]
    assert ds.w.dims == ("net", "unit", "unit_pre") and ds.wi.dims == ("net", "channel_in", "unit")
    np.testing.assert_array_equal(ds.g.values, [0, 0, 1.5, 1.5])
    np.testing.assert_array_equal(ds.seed.values, [0, 1, 0, 1])
    assert "description" in ds.loss.attrs
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["versions"]["randstruct"] == randstruct.__version__ and "torch" in cfg["versions"]
    assert RunSpec.from_dict(cfg["spec"]) == run.spec
    assert store.load_checkpoint(tmp_path / "r")["epoch"] == 8  # the final state, kept to extend the run
    np.testing.assert_allclose(ds.sv_dw.sel(rec=0).values, 0)


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    spec = _spec()
    ref = execute(spec, tmp_path / "ref", progress=False)

    calls = []
    real_save = store.save_checkpoint

    def save_then_die(run_dir, state):
        real_save(run_dir, state)
        calls.append(state["epoch"])
        if state["epoch"] >= 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(store, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        execute(spec, tmp_path / "r", progress=False, checkpoint_every=2)
    assert calls == [2, 4] and not store.is_complete(tmp_path / "r")
    with pytest.raises(store.RunError, match="already exists; pass --overwrite"):
        execute(spec, tmp_path / "r", progress=False)
    monkeypatch.setattr(store, "save_checkpoint", real_save)
    run = execute(spec, tmp_path / "r", resume=True, progress=False, checkpoint_every=2)
    np.testing.assert_array_equal(run.data.loss.values, ref.data.loss.values)
    np.testing.assert_array_equal(run.data.w.values, ref.data.w.values)


def test_resume_refuses_a_different_config(tmp_path):
    execute(_spec(), tmp_path / "r", progress=False)
    with pytest.raises(store.RunError, match="config.json differs"):
        execute(_spec(n=20), tmp_path / "r", resume=True, progress=False)
    with pytest.raises(store.RunError, match="already complete"):
        execute(_spec(), tmp_path / "r", resume=True, progress=False)


def test_load_errors(tmp_path):
    with pytest.raises(store.RunError, match="is not a run directory"):
        load(tmp_path)


def test_a_stored_run_is_the_same_run_on_another_device(tmp_path):
    """Experiments reuse a run trained on a GPU when reproducing on a CPU (and back)."""
    import dataclasses

    from randstruct.paper.experiments import _same_spec

    spec = _spec(train=TrainConfig(epochs=2, batch_size=4, lr0=0.5))
    execute(spec, tmp_path / "r", progress=False)
    assert _same_spec(tmp_path / "r", dataclasses.replace(spec, device="cuda"))
    assert not _same_spec(tmp_path / "r", dataclasses.replace(spec, g=(0.0, 1.2)))


def _interrupt_after_epoch_4(spec, out, monkeypatch):
    """Train ``spec`` into ``out`` until the checkpoint of epoch 4, then stop as Ctrl-C would."""
    real_save = store.save_checkpoint

    def save_then_die(run_dir, state):
        real_save(run_dir, state)
        if state["epoch"] >= 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(store, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        execute(spec, out, progress=False, checkpoint_every=2)
    monkeypatch.setattr(store, "save_checkpoint", real_save)


def test_resumed_run_counts_the_wall_time_before_the_interruption(tmp_path, monkeypatch):
    spec = _spec()
    _interrupt_after_epoch_4(spec, tmp_path / "r", monkeypatch)
    before = store.load_checkpoint(tmp_path / "r")["record"]["wall_time"]
    assert before > 0  # the first part's time is in the checkpoint
    run = execute(spec, tmp_path / "r", resume=True, progress=False, checkpoint_every=2)
    assert run.data.attrs["train_wall_time_s"] > before


def test_a_run_interrupted_on_one_device_resumes_on_another(tmp_path, monkeypatch):
    """The device says where a run is computed, not what: config.json written by a GPU run (here
    rewritten to say so) does not stop a resume on the CPU, and the result is the uninterrupted one."""
    spec = _spec()
    ref = execute(spec, tmp_path / "ref", progress=False)
    _interrupt_after_epoch_4(spec, tmp_path / "r", monkeypatch)
    config = json.loads((tmp_path / "r" / store.CONFIG).read_text())
    config["spec"]["device"] = "cuda:1"
    (tmp_path / "r" / store.CONFIG).write_text(json.dumps(config))
    run = execute(spec, tmp_path / "r", resume=True, progress=False, checkpoint_every=2)
    np.testing.assert_array_equal(run.data.w.values, ref.data.w.values)
