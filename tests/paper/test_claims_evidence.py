"""A claim whose evidence is missing never holds; the report says how many lack it (issue 28)."""

from types import SimpleNamespace

import numpy as np
import xarray as xr

from randstruct.paper.claims import Claim, size_claims, summary_line, write_report


def _size_run(n, conv):
    """Two seeds at g = 0, 0.9, 1.8; ``conv`` the two g = 0.9 networks' convergence epochs (0: never)."""
    g = np.repeat([0.0, 0.9, 1.8], 2)
    conv_epoch = np.array([40, 40, *conv, 30, 30])
    sv_w = np.tile(np.sqrt(np.maximum(g, 1e-3) ** 2 * n / n), (n, 1)).T  # ||W|| = g sqrt(N)
    ds = xr.Dataset({"conv_epoch": ("net", conv_epoch), "functional_rank": ("net", np.full(6, 3)),
                     "diverged_epoch": ("net", np.full(6, -1)), "norm_dw": ("net", np.full(6, 2.0)),
                     "sv_w": (("net", "sv"), sv_w)}, coords={"g": ("net", g)})
    return SimpleNamespace(spec=SimpleNamespace(n=n), data=ds)


def test_a_size_claim_judged_on_one_size_is_not_data_not_pass():
    runs = {"mante_N32": _size_run(32, [50, 57]), "mante_N64": _size_run(64, [0, 0]),
            "mante_N128": _size_run(128, [0, 0])}
    by_id = {c.id: c for c in size_claims(runs, min_samples=2)}
    for key in ("E2.mante.time", "E2.mante.norm"):
        c = by_id[key]
        assert not c.passed and c.verdict == "NO DATA", (key, c.measured)
        assert "N = 64, 128" in c.missing
    assert by_id["E2.mante.w"].verdict == "PASS"
    # with every size converged the same claims hold
    full = {f"mante_N{n}": _size_run(n, [50, 57]) for n in (32, 64, 128)}
    assert all(c.verdict == "PASS" for c in size_claims(full, min_samples=2))


def test_the_report_counts_claims_without_evidence_against_the_total(tmp_path):
    claims = [Claim("a", "f", "s", "1", "< 2", True), Claim("b", "f", "s", "nan", "< 2", True, missing="no value")]
    assert not claims[1].passed
    assert summary_line(claims) == "1 of 2 claims hold with full evidence. 1 lack evidence (NO DATA): b."
    md, _ = write_report(claims, tmp_path)
    assert "| NO DATA |" in md.read_text() and "1 of 2 claims hold" in md.read_text()


def test_a_partial_reproduction_merges_into_the_report_instead_of_replacing_it(tmp_path):
    from randstruct.paper.claims import merge_claims

    first = [Claim("E1.flipflop.rank", "fig2d", "s", "3", "≤ 10", True, measured_on="2026-12-01 10:00"),
             Claim("E3.rank", "fig3d", "s", "1e-4", "< 1e-3", False, measured_on="2026-12-01 10:00"),
             Claim("E5.learns", "figS5b", "s", "0.01", "< 0.1", True, measured_on="2026-12-01 10:00")]
    write_report(first, tmp_path)
    rerun = [Claim("E3.rank", "fig3d", "s", "1e-5", "< 1e-3", True), Claim("E3.time", "fig4a", "s", "0.1", "< 0.15", True)]
    merged = merge_claims(rerun, tmp_path)
    assert [c.id for c in merged] == ["E1.flipflop.rank", "E3.rank", "E3.time", "E5.learns"]
    dates = {c.id: c.measured_on for c in merged}
    assert dates["E1.flipflop.rank"] == dates["E5.learns"] == "2026-12-01 10:00"
    assert dates["E3.rank"] != "2026-12-01 10:00" and dates["E3.rank"] == dates["E3.time"]
    assert {c.id: c.passed for c in merged}["E3.rank"]
    md, _ = write_report(merged, tmp_path)
    assert "4 of 4 claims hold" in md.read_text() and "2026-12-01 10:00" in md.read_text()
