"""One-command reproduction at smoke scale: every figure drawn, every claim checked and holding."""

import json

import pytest

from randstruct.cli import main
from randstruct.paper import reproduce
from randstruct.paper.reproduce import FIGURES, resolve


def test_resolve_figure_names():
    assert resolve(["all"]) == list(FIGURES)
    assert resolve(["figS5", "fig3"]) == ["fig3", "figS5"]
    with pytest.raises(ValueError, match="unknown figure 'fig9'"):
        resolve(["fig9"])


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["reproduce", "fig9", "--out", str(tmp_path / "r")]) == 2
    assert main(["reproduce", "fig3", "--scale", "huge", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["randstruct: error: unknown figure 'fig9'; allowed: " + ", ".join(FIGURES) + ", all",
                   "randstruct: error: unknown scale 'huge'; allowed: smoke, paper"]
    assert not (tmp_path / "r").exists()


def test_smoke_reproduction_of_every_figure(tmp_path):
    out = tmp_path / "results"
    assert main(["reproduce", "all", "--scale", "smoke", "--out", str(out), "--no-progress"]) == 0
    for name in FIGURES:
        for ext in ("png", "pdf", "txt"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext} missing"
    rows = json.loads((out / "claims.json").read_text())
    assert len(rows) >= 30
    assert [r["id"] for r in rows if r["verdict"] != "PASS"] == []
    # a second call reuses every run and analysis: nothing is trained again
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("config.json")}
    assert main(["reproduce", "fig3", "--scale", "smoke", "--out", str(out), "--no-progress"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("config.json")} == stamp


def test_g_points_need_the_papers_samples_at_paper_scale_and_two_at_smoke_scale():
    class FakeRun:
        def __init__(self, seeds):
            self.spec = type("Spec", (), {"seeds": tuple(range(seeds))})()

    five, three = {"a": FakeRun(5)}, {"a": FakeRun(3), "b": FakeRun(4)}
    assert reproduce.min_samples("fig2", "paper", five) == 5
    assert reproduce.min_samples("figS1", "paper", five) == 3
    assert reproduce.min_samples("fig2", "paper", three) == 3
    assert reproduce.min_samples("fig2", "smoke", three) == 2
    assert reproduce.min_samples("fig2", "smoke", {"a": FakeRun(1)}) == 1
