"""The 2024 paper's smoke reproduction from the command line, as the 2020 one is tested: every
figure drawn and every claim holding, the 2020 claims in the same report untouched."""

import json

from randstruct.cli import main
from randstruct.paper.oblique2024.reproduce import FIGURES


def test_smoke_reproduction_of_the_2024_paper(tmp_path):
    out = tmp_path / "results"
    assert main(["reproduce", "all", "--paper", "oblique2024", "--scale", "smoke", "--out", str(out),
                 "--no-progress"]) == 0
    for name in FIGURES:
        for ext in ("png", "pdf", "txt"):
            assert (out / "figures" / f"oblique2024-{name}.{ext}").stat().st_size > 0, f"{name}.{ext} missing"
    rows = json.loads((out / "claims.json").read_text())
    assert len(rows) == 9 and all(r["id"].startswith("O24.") for r in rows)
    assert [r["id"] for r in rows if r["verdict"] != "PASS"] == []
    # a second call reuses every run and analysis: nothing is trained again
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    assert main(["reproduce", "fig4", "--paper", "oblique2024", "--scale", "smoke", "--out", str(out),
                 "--no-progress"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()} == stamp
