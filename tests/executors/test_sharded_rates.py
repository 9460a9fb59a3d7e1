"""A sharded command reports what it trained itself, not the shards it reused (issue 28)."""

import pytest

import randstruct as rs
from randstruct import store
from randstruct.executors import cluster as sharded
from randstruct.executors.cluster import DaskExecutor
from randstruct.executors.progress import ClusterBar

pytest.importorskip("distributed")

SPEC = rs.RunSpec(task="flipflop", n=8, g=(0.0, 0.9), seeds=(0, 1), train=rs.TrainConfig(epochs=6, batch_size=4))


def test_a_shard_resumed_from_a_checkpoint_counts_only_the_epochs_trained_now():
    bar = ClusterBar(None, "t", {"a": (100, 4), "b": (100, 2)}, {"b": 100}, desc="shards", enabled=False)
    bar.resumed("a", 60)  # its first start in this command, from a checkpoint at epoch 60
    bar.advance("a", 80)
    bar.advance("a", 100, finished=True)
    bar.advance("b", 100, finished=True)  # reused
    assert bar.trained == {"a": 40 * 4, "b": 0}
    bar.close()


def test_a_resume_that_reuses_every_shard_reports_no_training(cluster, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"

    def killed(*args, **kw):  # the command dies after every shard finished, before the merge
        raise KeyboardInterrupt

    with DaskExecutor(client=cluster, shard_size=2, log=lambda s: None) as executor:
        with monkeypatch.context() as m:
            m.setattr(sharded, "merge_training", killed)
            with pytest.raises(KeyboardInterrupt):
                rs.execute(SPEC, out, progress=False, executor=executor)
        assert not store.is_complete(out)
        run = rs.execute(SPEC, out, resume=True, progress=False, executor=executor)
        assert run.data.attrs["cluster_network_epochs"] == 0
        fresh = rs.execute(SPEC, tmp_path / "fresh", progress=False, executor=executor)
        assert fresh.data.attrs["cluster_network_epochs"] == 4 * 6
