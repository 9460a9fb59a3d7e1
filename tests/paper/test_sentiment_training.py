"""Training, run store, resume, truncation and the CLI on a synthetic corpus in the real formats."""

import argparse
import json
import re

import numpy as np
import pytest
import torch

from randstruct import store
from randstruct.cli import Parser
from randstruct.errors import classify
from randstruct.paper.sentiment import cli as scli
from randstruct.paper.sentiment.corpus import write_corpus
from randstruct.paper.sentiment.plot import recovery_rank, summary
from randstruct.paper.sentiment.train import SentimentConfig, Trainer, prepare_corpus, train
from randstruct.paper.sentiment.truncation import analyze, rank_grid

N, EPOCHS, SEED = 64, 30, 0


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("sst"), n_train=3000, n_dev=500, n_test=100, seed=SEED)


@pytest.fixture(scope="module")
def analysed(corpus_files, tmp_path_factory):
    """One small LSTM trained on the synthetic corpus, with the full truncation analysis.

    One thread, like every test (conftest), so that the numbers do not depend on the machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("runs") / "lstm"
        train(*corpus_files, out, SentimentConfig(n=N, epochs=EPOCHS, seed=SEED), progress=False)
        return out, analyze(out, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_lstm_learns_the_synthetic_corpus(analysed):
    _, ds = analysed
    assert ds.val_acc.values[-1] > 0.85
    assert ds.val_acc.values[:3].max() < 0.65
    assert ds.train_acc.values[-1] > 0.85


def test_run_directory_records_everything(analysed):
    out, ds = analysed
    config = json.loads((out / store.CONFIG).read_text())
    assert config["kind"] == "sentiment" and config["spec"]["config"]["seed"] == SEED
    assert set(config["versions"]) >= {"randstruct", "torch", "numpy"}
    assert config["spec"]["stats"]["n_train"] == ds.attrs["n_train"]
    assert not (out / store.CHECKPOINT).exists()
    vocab = (out / "vocab.txt").read_text().splitlines()
    assert vocab[:2] == ["<unk>", "<pad>"] and len(vocab) == ds.sizes["word"]
    assert ds.sizes["epoch"] == EPOCHS and ds.sizes["row"] == 4 * N and ds.sizes["col"] == N
    for name in ("w_ih_l0", "w_hh_l0", "w_ih_l1", "w_hh_l1", "b_hh_l1", "decoder_w"):
        assert not np.array_equal(ds[f"initial_{name}"].values, ds[f"final_{name}"].values)
    assert ds.sv_delta_w_hh_l1.dims == ("sv",) and ds.sizes["sv"] == N and ds.sizes["sv_in"] == 50
    np.testing.assert_array_equal(ds["rank"].values, np.arange(N + 1))


def test_full_rank_truncation_recovers_the_final_network(analysed):
    _, ds = analysed
    final = ds.val_acc.values[-1]
    assert ds.trunc_dw_acc.values[-1] == pytest.approx(final, abs=1e-9)
    assert ds.trunc_w_acc.values[-1] == pytest.approx(final, abs=1e-9)
    assert ds.trunc_dw_loss.values[-1] == pytest.approx(ds.val_loss.values[-1], rel=1e-4)


def test_low_rank_dw_recovers_the_final_accuracy_long_before_w_does(analysed):
    _, ds = analysed
    s = summary(ds)
    ranks = ds["rank"].values
    chance = max(ds.val_labels.values.mean(), 1 - ds.val_labels.values.mean())
    assert s["rank_dw"] is not None and s["rank_dw"] <= N // 4
    assert ds.trunc_w_acc.values[0] == pytest.approx(chance, abs=0.02)
    assert s["rank_w"] is None or s["rank_w"] >= 3 * s["rank_dw"]
    at = np.searchsorted(ranks, s["rank_dw"])
    assert ds.trunc_w_acc.values[at] < ds.trunc_dw_acc.values[at]
    sv_dw, sv_w0 = ds.sv_delta_w_hh_l1.values, ds.sv_initial_w_hh_l1.values
    assert sv_dw[N // 4:].max() < 0.25 * sv_w0[N // 4]  # dW: few large SVs, then far below the W0 bulk


def test_reanalysis_with_a_rank_step_replaces_the_curves(analysed, tmp_path):
    out, _ = analysed
    ds = analyze(out, rank_step=16, progress=False)
    np.testing.assert_array_equal(ds["rank"].values, [0, 16, 32, 48, 64])
    assert store.open_results(out).sizes["rank"] == 5
    analyze(out, progress=False)


def test_resume_continues_exactly(corpus_files, tmp_path, monkeypatch):
    cfg = SentimentConfig(n=8, epochs=3, seed=4)
    whole = train(*corpus_files, tmp_path / "whole", cfg, progress=False)
    with pytest.raises(store.RunError, match="nothing to resume"):
        train(*corpus_files, tmp_path / "cut", cfg, resume=True, progress=False)
    save = store.save_checkpoint

    def save_then_interrupt(run_dir, state):
        save(run_dir, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "save_checkpoint", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(*corpus_files, tmp_path / "cut", cfg, progress=False)
    monkeypatch.undo()
    assert store.load_checkpoint(tmp_path / "cut")["epoch"] == 1
    with pytest.raises(store.RunError, match="differs"):
        train(*corpus_files, tmp_path / "cut", SentimentConfig(n=8, epochs=4, seed=4), resume=True, progress=False)
    train(*corpus_files, tmp_path / "cut", cfg, resume=True, progress=False)
    a, b = store.open_results(whole), store.open_results(tmp_path / "cut")
    np.testing.assert_array_equal(a.final_w_hh_l1.values, b.final_w_hh_l1.values)
    np.testing.assert_array_equal(a.val_acc.values, b.val_acc.values)
    with pytest.raises(store.RunError, match="already complete"):
        train(*corpus_files, tmp_path / "cut", cfg, resume=True, progress=False)
    with pytest.raises(store.RunError, match="already exists"):
        train(*corpus_files, tmp_path / "cut", cfg, progress=False)


def test_trainer_is_deterministic(corpus_files):
    corpus = prepare_corpus(*corpus_files, seed=1)
    cfg = SentimentConfig(n=8, epochs=1, seed=1)
    runs = []
    for _ in range(2):
        t = Trainer(corpus, cfg)
        t.run()
        runs.append((t.history["train_loss"][0], t.model.block("w_hh_l1").detach().clone()))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])


def test_config_validation():
    with pytest.raises(ValueError, match="N must be an integer >= 1, got 0"):
        SentimentConfig(n=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        SentimentConfig(dropout=1.0)
    with pytest.raises(ValueError, match="CUDA is not available|unknown device"):
        SentimentConfig(device="cuda" if not torch.cuda.is_available() else "tpu")
    with pytest.raises(ValueError, match="rank step"):
        rank_grid(8, 0)
    assert rank_grid(10, 4).tolist() == [0, 4, 8, 10]
    assert rank_grid(12, 8, dense=5).tolist() == [0, 1, 2, 3, 4, 5, 8, 12]
    assert rank_grid(6, 4, dense=20).tolist() == list(range(7))
    with pytest.raises(ValueError, match="dense ranks must be an integer >= 0, got -1"):
        rank_grid(8, 1, -1)
    assert recovery_rank(np.array([0.5, 0.9, 0.7, 0.9, 0.91]), np.arange(5), 0.9) == 3
    assert recovery_rank(np.array([0.5, 0.6]), np.arange(2), 0.9) is None


def _main(argv):
    """The main CLI's contract: one-line error, exit code 2 (mirrors randstruct.cli.main)."""
    parser = Parser(prog="randstruct")
    scli.add_parser(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    try:
        return scli.run(parser.parse_args(argv))
    except Exception as err:  # noqa: BLE001 - the main CLI reports the error policy's failures in one line
        if classify(err) is None:
            raise
        print(f"randstruct: error: {err}")
        return 2


def test_cli_train_analyze_plot(corpus_files, tmp_path, capsys):
    sst, glove = corpus_files
    out = tmp_path / "run"
    argv = ["sentiment", "train", "--sst", str(sst.parent), "--glove", str(glove), "--out", str(out),
            "--epochs", "2", "--N", "8", "--no-progress"]
    assert _main(argv) == 0
    assert "next: randstruct sentiment analyze" in capsys.readouterr().out
    assert _main(argv) == 2
    assert "already exists" in capsys.readouterr().out
    assert _main(["sentiment", "analyze", str(out), "--rank-step", "4", "--dense-ranks", "2", "--plot",
                  "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "final validation accuracy" in text and "fig5.png" in text and "figS6.png" in text
    assert (out / "fig5.png").stat().st_size > 10_000 and (out / "fig5.pdf").is_file()
    assert (out / "figS6.png").stat().st_size > 10_000 and (out / "figS6.pdf").is_file()
    ds = store.open_results(out)
    assert ds["rank"].values.tolist() == [0, 1, 2, 4, 8] and ds.attrs["dense_ranks"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--sst", "{tmp}/none", "--glove", "{glove}"], "SST directory .*none not found.*trainDevTestTrees_PTB.zip"),
    (["--sst", "{sst}", "--glove", "{tmp}/g.txt"], "GloVe file .*g.txt not found.*glove.6B.zip"),
    (["--sst", "{sst}", "--glove", "{glove}", "--N", "0"], "N must be an integer >= 1, got 0"),
    (["--sst", "{sst}", "--glove", "{glove}", "--epochs", "x"], "invalid int value: 'x'"),
])
def test_cli_errors_are_one_line_and_touch_nothing(corpus_files, tmp_path, capsys, argv, message):
    sst, glove = corpus_files
    argv = [a.format(tmp=tmp_path, sst=sst, glove=glove) for a in argv]
    out = tmp_path / "never"
    assert _main(["sentiment", "train", "--out", str(out), "--no-progress", *argv]) == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("randstruct: error: ")
    assert re.search(message, lines[0])
    assert not out.exists()


def test_cli_analyze_rejects_other_runs(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    store.write_json_atomic(tmp_path / "r" / store.CONFIG, {"schema": 1, "spec": {}})
    assert _main(["sentiment", "analyze", str(tmp_path / "r")]) == 2
    assert "not a sentiment run" in capsys.readouterr().out


def test_demo_end_to_end_small(tmp_path):
    from randstruct.paper.sentiment.demo import run_demo

    result = run_demo(tmp_path / "demo", n=8, epochs=2, rank_step=4, seed=2, progress=False,
                      corpus_size=(300, 60))
    assert [p.suffix for p in result.figures] == [".png", ".pdf"]
    assert json.loads((tmp_path / "demo" / "demo.json").read_text())["N"] == 8
    with pytest.raises(store.RunError, match="already exists"):
        run_demo(tmp_path / "demo", n=8, epochs=1, progress=False, corpus_size=(300, 60))


def test_main_cli_wiring(tmp_path, capsys):
    from randstruct import cli

    assert cli.main(["sentiment", "analyze", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("randstruct: error: ")


def test_add_parser_returns_the_sentiment_parser():
    sub = argparse.ArgumentParser().add_subparsers()
    assert scli.add_parser(sub).prog.endswith("sentiment")
