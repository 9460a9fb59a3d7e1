"""The benchmark suite's plumbing on a tiny size (its numbers are measured by hand, never asserted)."""

from randstruct import bench


def test_suite_rows_and_table_on_cpu():
    rows = bench.run_suite(((32, (1, 2)),), epochs=1, repeats=2, log=lambda line: None)
    assert [r["config"] for r in rows] == ["serial reference", "ensemble E=1", "ensemble E=2"]
    for r in rows:
        assert 0 < r["min"] <= r["median"] <= r["max"]
        assert r["peak_mb"] > 0 and r["bmm_gflops"] > 0
    assert rows[0]["vs_serial"] == 1.0
    assert len(bench.format_table(rows).splitlines()) == 2 + len(rows)


def test_gpu_variants_cover_graphs_eager_and_tf32():
    labels = [(label, opts) for label, _, opts in bench.gpu_variants([8])]
    assert labels == [("ensemble E=8", {}), ("ensemble E=8, no graphs", {"cuda_graphs": False}),
                      ("ensemble E=8, TF32", {"tf32": True})]
