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


def test_gpu_variants_cover_fixed_batch_graphs_eager_and_tf32():
    labels = [(label, opts) for label, _, opts in bench.gpu_variants([8])]
    assert labels == [("ensemble E=8, fixed batch", {"fixed_batch": True}), ("ensemble E=8", {}),
                      ("ensemble E=8, no graphs", {"cuda_graphs": False}), ("ensemble E=8, TF32", {"tf32": True})]


def test_fixed_batch_measurement_skips_task_generation():
    fixed = bench.measure_ensemble(16, 2, epochs=1, repeats=1, fixed_batch=True)
    fresh = bench.measure_ensemble(16, 2, epochs=1, repeats=1)
    assert fixed["rates"][0] > 0 and fixed["task_share"] != fixed["task_share"]  # NaN: nothing generated
    assert 0 < fresh["task_share"] < 1


def test_gpu_task_share_is_the_slowdown_against_a_fixed_batch(monkeypatch):
    """The suite's accelerator bookkeeping, with the measurements stubbed (no GPU needed)."""
    rates = {"serial": 10.0, "fixed_batch": 100.0, "default": 90.0, "cuda_graphs": 40.0, "tf32": 95.0}

    def fake(kind, n, n_net, epochs, repeats, device, **opts):
        rate = rates["serial"] if kind == "serial" else rates[next(iter(opts), "default")]
        return {"rates": [rate] * repeats, "ceilings": [1000.0] * repeats, "task_share": 0.5, "peak_mb": 1.0}

    monkeypatch.setattr(bench, "_measure", fake)
    rows = {r["config"]: r for r in bench.run_suite(((16, (4,)),), device="cuda", log=lambda line: None)}
    assert rows["ensemble E=4"]["task_share"] == 1 - 90.0 / 100.0
    assert rows["serial reference"]["task_share"] == 0.5
    for label in ("ensemble E=4, fixed batch", "ensemble E=4, no graphs", "ensemble E=4, TF32"):
        assert rows[label]["task_share"] != rows[label]["task_share"], label
    assert rows["ensemble E=4"]["vs_serial"] == 9.0
