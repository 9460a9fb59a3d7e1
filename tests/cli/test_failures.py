"""Every failure named for what it is (randstruct.errors), table-driven: the exit code, exactly one
stderr line saying who or what failed, and nothing written or changed on disk. In process through
``randstruct.cli.main``; only the read-only cases run in a subprocess without the root's override
of file permissions."""

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from randstruct import store
from randstruct.cli import main
from test_bad_input import TRAIN

SRC = Path(__file__).resolve().parents[2] / "src"

USER_TASKS = '''
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from randstruct.tasks import Task


@dataclass(frozen=True)
class Steady(Task):
    name: ClassVar[str] = "steady"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    stochastic: ClassVar[bool] = True
    dt: float = 0.5

    def __post_init__(self):
        self._set(_n_steps=4)

    def draw(self, batch, rng):
        return {"level": rng.normal(size=batch)}

    def build(self, variates):
        level = np.asarray(variates["level"])[:, None, None] * np.ones((1, 4, 1))
        return self._batch(level, self.target(level), np.ones_like(level), {})

    def target(self, level):
        return level


@dataclass(frozen=True)
class BrokenDraw(Steady):
    name: ClassVar[str] = "brokendraw"

    def draw(self, batch, rng):
        raise RuntimeError("my task is broken")


@dataclass(frozen=True)
class NanTarget(Steady):
    name: ClassVar[str] = "nantarget"

    def target(self, level):
        out = level.copy()
        out[0, 2, 0] = np.nan
        return out


@dataclass(frozen=True)
class BadParam(Steady):
    name: ClassVar[str] = "badparam"

    def __post_init__(self):
        raise KeyError("no such level")
'''

ANALYSIS = '''
from dataclasses import dataclass

from randstruct.analysis import Analysis


@dataclass(frozen=True)
class NoParams:
    pass


class Broken(Analysis):
    name = "broken"
    Params = NoParams
    variables = {"nothing": "never computed"}

    def compute(self, ensemble, task, data, params):
        return {}["missing key"]
'''

def _line(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


SYNTAX_ERROR = "from randstruct.tasks import Task\n\nclass Oops(Task)\n    pass\n"


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    out = tmp_path_factory.mktemp("failures") / "run"
    assert main(TRAIN + ["--out", str(out)]) == 0
    assert main(["analyze", str(out), "--ranks", "2", "--shuffles", "1", "--eval-trials", "4", "--no-progress"]) == 0
    return out


def _user_modules(tmp, monkeypatch):
    (tmp / "usertasks.py").write_text(USER_TASKS)
    (tmp / "badsyntax.py").write_text(SYNTAX_ERROR)
    (tmp / "useranalysis.py").write_text(ANALYSIS)
    monkeypatch.syspath_prepend(str(tmp))
    for name in ("usertasks", "badsyntax", "useranalysis"):
        sys.modules.pop(name, None)


def _checkpoint(kind):
    def setup(run, tmp, monkeypatch):
        """An interrupted run of TRAIN: its config and a checkpoint, truncated or overwritten."""
        cut = tmp / "cut"
        cut.mkdir()
        shutil.copy(run / store.CONFIG, cut / store.CONFIG)
        path = cut / store.CHECKPOINT
        if kind == "truncated":
            torch.save({"epoch": 1, "state": torch.zeros(1000)}, path)
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        else:
            path.write_text("garbage")
    return setup


def _hide(module):
    return lambda run, tmp, monkeypatch: monkeypatch.setitem(sys.modules, module, None)  # import now fails


def _write_fails(code, text):
    def setup(run, tmp, monkeypatch):
        def fail(*args, **kwargs):
            raise OSError(code, text, str(tmp / "figure.png"))
        monkeypatch.setattr("randstruct.analysis.plots.save_run_figure", fail)
    return setup


USER_TRAIN = TRAIN[:1] + TRAIN[3:] + ["--out", "TMP/x"]  # TRAIN without its --task
# (id, argv with RUN for a copy of the analysed run and TMP for the case's folder, set-up, kind, words in the line)
CASES = [
    ("task draw raises", USER_TRAIN + ["--task", "usertasks:BrokenDraw"], None, "user code",
     "your code failed: task 'brokendraw' (usertasks:BrokenDraw) raised RuntimeError: my task is broken "
     f"(TMP/usertasks.py:{_line(USER_TASKS, 'my task is broken')})"),
    ("task constructor raises", USER_TRAIN + ["--task", "usertasks:BadParam"], None, "user code",
     "your code failed: task 'badparam' (usertasks:BadParam) raised KeyError: 'no such level' "
     f"(TMP/usertasks.py:{_line(USER_TASKS, 'no such level')})"),
    ("task module syntax error", USER_TRAIN + ["--task", "badsyntax:Oops"], None, "user code",
     "your code failed: task module 'badsyntax' raised SyntaxError: expected ':' (TMP/badsyntax.py:3)\n"),
    ("NaN target in the mask", USER_TRAIN + ["--task", "usertasks:NanTarget"], None, "user code",
     "your code failed: task 'nantarget' (usertasks:NanTarget) made a NaN or infinite target at a scored step "
     "(trial 0, step 2, channel 0; 1 in all); targets must be finite wherever the mask is nonzero"),
    ("analysis plug-in raises", ["analyze", "RUN", "--analysis", "useranalysis:Broken", "--no-progress"], None,
     "user code", "your code failed: analysis 'broken' (useranalysis:Broken) raised KeyError: 'missing key' ("
     f"TMP/useranalysis.py:{_line(ANALYSIS, 'missing key')})"),
    ("garbage checkpoint", TRAIN + ["--resume", "--out", "TMP/cut"], _checkpoint("garbage"), "damaged file",
     "damaged file: TMP/cut/checkpoint.pt cannot be read"),
    ("truncated checkpoint", TRAIN + ["--resume", "--out", "TMP/cut"], _checkpoint("truncated"), "damaged file",
     "delete it and run the same command with --resume (training starts again from epoch 0), or use --overwrite"),
    ("flipped bytes in W", ["info", "RUN"], lambda run, tmp, monkeypatch: _flip_w(run), "damaged file",
     "array 'w' does not match the checksum written with it (a missing or damaged chunk); train the run again"),
    ("dynamics --inits 1e8", ["dynamics", "RUN", "--inits", "100000000", "--no-progress"], None, "machine limits",
     "not enough resources: this fixed-point search needs about"),
    ("analyze --eval-trials 1e8", ["analyze", "RUN", "--eval-trials", "100000000", "--force", "--no-progress"],
     None, "machine limits", "not enough resources: this analysis needs about"),
    ("analyze --shuffles 1e9", ["analyze", "RUN", "--shuffles", "1000000000", "--force", "--no-progress"], None,
     "machine limits", "GiB are free; use fewer --eval-trials, --shuffles or --ranks"),
    ("train a million networks", TRAIN[:8] + ["1000000"] + TRAIN[9:] + ["--out", "TMP/x"], None, "machine limits",
     "not enough resources: this run needs about"),
    ("disk full", ["plot", "RUN"], _write_fails(errno.ENOSPC, "No space left on device"), "machine limits",
     "not enough resources: TMP/figure.png: No space left on device; free some disk space"),
    ("permission denied on write", ["plot", "RUN"], _write_fails(errno.EACCES, "Permission denied"), "input",
     "error: TMP/figure.png: Permission denied; choose a file or folder you may write to, or change its "
     "permissions"),
    ("train --scheduler without distributed", TRAIN + ["--scheduler", "local:2", "--out", "TMP/x"],
     _hide("distributed"), "missing dependency",
     "--scheduler needs the optional package distributed, which is not installed: "
     "pip install 'randstruct[distributed]'"),
    ("analyze --scheduler without distributed", ["analyze", "RUN", "--scheduler", "local:2"], _hide("distributed"),
     "missing dependency", "pip install 'randstruct[distributed]'"),
    ("neurogym task without neurogym", TRAIN[:1] + ["--task", "neurogym:PerceptualDecisionMaking-v0"] + TRAIN[3:]
     + ["--out", "TMP/x"], _hide("neurogym"), "missing dependency", "pip install 'randstruct[neurogym]'"),
]
READ_ONLY = [
    ("plot on a read-only run", ["plot", "RUN"], "is not a folder you may write to; choose another --out"),
    ("analyze on a read-only run", ["analyze", "RUN", "--force", "--no-progress"], "Permission denied"),
    ("dynamics on a read-only run", ["dynamics", "RUN", "--no-progress"], "choose another --figure"),
]


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if "__pycache__" not in p.parts}


def _flip_w(run):
    path = next(p for p in sorted((run / store.RESULTS / "w").rglob("*")) if p.is_file() and "c" in p.parts)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_failure_is_one_line_of_its_kind_exit_2_nothing_written(case, analyzed, tmp_path, monkeypatch, capsys):
    _, argv, setup, kind, words = case
    run = tmp_path / "run"
    shutil.copytree(analyzed, run)
    _user_modules(tmp_path, monkeypatch)
    monkeypatch.setattr("randstruct.memory.available", lambda device: 16 * 2**30)  # any machine: 16 GiB free
    if setup is not None:
        setup(run, tmp_path, monkeypatch)
    argv = [a.replace("RUN", str(run)).replace("TMP", str(tmp_path)) for a in argv]
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("randstruct: error: "), err
    assert words.replace("TMP", str(tmp_path)) in err, err
    assert "bug" not in err and "Traceback" not in err
    assert _snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root without setpriv")
@pytest.mark.parametrize("case", READ_ONLY, ids=[c[0] for c in READ_ONLY])
def test_a_read_only_run_folder_is_one_line_exit_2(case, analyzed, tmp_path):
    _, argv, words = case
    run = tmp_path / "run"
    shutil.copytree(analyzed, run)
    folders = [run, *(p for p in run.rglob("*") if p.is_dir())]
    for p in folders:
        p.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    # root writes anywhere: drop that capability (the user the issue reports is not root)
    prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    cmd = (prefix if os.geteuid() == 0 else []) + [sys.executable, "-m", "randstruct"] + \
        [a.replace("RUN", str(run)) for a in argv]
    before = _snapshot(tmp_path)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"})
        assert res.returncode == 2, res.stderr
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("randstruct: error: "), res.stderr
        assert words in res.stderr and str(run) in res.stderr
        assert _snapshot(tmp_path) == before
    finally:
        for p in folders:
            p.chmod(stat.S_IRWXU)


def test_a_bug_is_exit_1_with_its_traceback_in_a_log(analyzed, tmp_path, monkeypatch, capsys):
    """A ValueError from deep inside NumPy is randstruct's bug, not the user's input (issue 22, item 6)."""
    import numpy as np

    def broken(run):
        return np.ones(2) + np.ones(3)  # ValueError: operands could not be broadcast together

    monkeypatch.setattr("randstruct.analysis.summary.summarize", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["info", str(analyzed)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("randstruct: internal error (a bug, please report it): ValueError: operands could not")
    (log,) = tmp_path.glob("randstruct-error-*.log")
    assert str(log) in err and "Traceback" in log.read_text() and "in broken" in log.read_text()


def test_dynamics_creates_the_figure_folder_like_plot(analyzed, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(analyzed, run)
    figure = tmp_path / "nodir" / "sub" / "x.png"
    assert main(["dynamics", str(run), "--inits", "4", "--figure", str(figure), "--no-progress"]) == 0
    assert figure.stat().st_size > 0
