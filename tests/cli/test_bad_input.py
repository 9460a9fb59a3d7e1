"""Bad input, table-driven: exit code 2, exactly one line 'randstruct: error: ...', nothing on disk changed."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from randstruct import store
from randstruct.cli import main

TRAIN = ["train", "--task", "romo", "--N", "8", "--g", "0.5", "--seeds", "2", "--epochs", "3", "--batch", "4",
         "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "run"
    assert main(TRAIN + ["--out", str(out)]) == 0
    return out


def _config(run, **change):
    cfg = json.loads((run / store.CONFIG).read_text())
    for key, value in change.items():
        if key == "n":
            cfg["spec"]["n"] = value
        else:
            cfg[key] = value
    (run / store.CONFIG).write_text(json.dumps(cfg))


def _chunk(run, name):
    return next(p for p in sorted((run / store.RESULTS / name).rglob("*")) if p.is_file() and "c" in p.parts)


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _thesis(tmp):
    (tmp / "userdir").mkdir()
    (tmp / "userdir" / "thesis.tex").write_text("years of work")


def _foreign_lock(run):
    (run / store.LOCK).write_text(json.dumps({"host": "elsewhere.example.org", "pid": 1, "purpose": "analyze",
                                              "started": "2026-01-01T00:00:00+00:00"}))


# (id, argv with RUN for a copy of a trained run and TMP for the case's folder, set-up, expected text)
CASES = [
    ("task-param not of the task", TRAIN + ["--task-param", "bogus=1", "--out", "TMP/x"], None,
     "unknown parameter 'bogus' for task 'romo'"),
    ("linear_gain at g = 1", TRAIN[:6] + ["1", "--lr-rule", "linear_gain", "--epochs", "2", "--out", "TMP/x"], None,
     "gives lr = lr0 (1 - g^2)^2 = 0 at g = 1"),
    ("seed past 64 bits", TRAIN + ["--first-seed", "9223372036854775807", "--out", "TMP/x"], None, "2^63"),
    ("a billion gains", TRAIN[:5] + ["--g", "0:1:1e-9", "--epochs", "2", "--out", "TMP/x"], None,
     "at most 100000"),
    ("overwrite a user's folder", TRAIN + ["--overwrite", "--out", "TMP/userdir"], _thesis, "is not a run directory"),
    ("overwrite the current folder", TRAIN + ["--overwrite", "--out", ""], "chdir-run", "current directory"),
    ("overwrite a run with user files", TRAIN + ["--overwrite", "--out", "RUN"], "notes",
     "holds files a run does not write (notes.txt)"),
    ("zhat nan", ["theory", "check", "--N", "8", "--zhat", "nan"], None, "--zhat must be a finite number, got nan"),
    ("analyze on tpu", ["analyze", "RUN", "--device", "tpu"], None, "unknown device 'tpu'"),
    ("info on a sentiment run", ["info", "RUN"], lambda run: _config(run, kind="sentiment"), "is a sentiment run"),
    ("unknown schema", ["info", "RUN"], lambda run: _config(run, schema=99), "schema version 99"),
    ("kind bogus", ["analyze", "RUN"], lambda run: _config(run, kind="bogus"), "kind 'bogus'; allowed"),
    ("wrong N in config", ["analyze", "RUN"], lambda run: _config(run, n=9), "does not match"),
    ("truncated config", ["info", "RUN"],
     lambda run: (run / store.CONFIG).write_text((run / store.CONFIG).read_text()[:40]),
     "config.json is not valid JSON"),
    ("deleted loss chunk", ["analyze", "RUN"], lambda run: _chunk(run, "loss").unlink(), "array 'loss'"),
    ("flipped bytes in W", ["info", "RUN"], lambda run: _flip(_chunk(run, "w")), "array 'w'"),
    ("run locked on another host", ["analyze", "RUN"], _foreign_lock, "in use by analyze (pid 1 on elsewhere"),
    ("negative state noise", TRAIN + ["--noise-rec", "-0.1", "--out", "TMP/x"], None,
     "noise_rec must be a finite number >= 0, got -0.1"),
    ("infinite input noise", TRAIN + ["--noise-in", "inf", "--out", "TMP/x"], None, "noise_in must be a finite number"),
    ("dale fraction 1", TRAIN + ["--dale", "1", "--out", "TMP/x"], None,
     "dale (fraction of excitatory units) must be in (0, 1), got 1.0"),
    ("sparsity 1", TRAIN + ["--sparsity", "1", "--out", "TMP/x"], None,
     "sparsity (fraction of absent connections) must be in [0, 1), got 1.0"),
    ("unknown readout", TRAIN + ["--readout", "huge", "--out", "TMP/x"], None,
     "unknown readout 'huge'; allowed: small, large"),
    ("unknown readout_from", TRAIN + ["--readout-from", "rate", "--out", "TMP/x"], None,
     "unknown readout_from 'rate'; allowed: rates, state"),
    ("unknown nonlinearity", TRAIN + ["--nonlinearity", "sigmoid", "--out", "TMP/x"], None,
     "unknown nonlinearity 'sigmoid'; allowed: tanh, linear, relu, softplus"),
    ("negative penalty", TRAIN + ["--l2-dw=-1e-3", "--out", "TMP/x"], None, "l2_dw must be a finite number >= 0"),
]
if not torch.cuda.is_available():
    CASES.append(("analyze on cuda without one", ["analyze", "RUN", "--device", "cuda"], None,
                  "CUDA is not available"))


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, trained, tmp_path, monkeypatch, capsys):
    _, argv, setup, expected = case
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    if setup == "chdir-run":
        monkeypatch.chdir(run)
    elif setup == "notes":
        (run / "notes.txt").write_text("mine")
    elif setup is _thesis:
        _thesis(tmp_path)
    elif setup is not None:
        setup(run)
    argv = [a.replace("RUN", str(run)).replace("TMP", str(tmp_path)) for a in argv]
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("randstruct: error: "), err
    assert expected in err
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("change", [["--N", "200000"], ["--batch", "100000000"], ["--task-param", "t_delay=1e9"]])
def test_runs_that_cannot_fit_are_refused_before_anything_is_written(change, tmp_path, capsys):
    argv = TRAIN + ["--out", str(tmp_path / "x")]
    i = argv.index(change[0]) if change[0] in argv else None
    argv = argv[:i] + argv[i + 2:] + change if i is not None else argv + change
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GiB of memory on cpu but" in err
    assert list(tmp_path.iterdir()) == []
