"""One-command reproduction at smoke scale: every figure drawn, every claim checked and holding."""

import json

import pytest

from randstruct.cli import main
from randstruct.reproduce import FIGURES, resolve


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
