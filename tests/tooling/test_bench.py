"""The benchmark suite's plumbing on a tiny size (its numbers are measured by hand, never asserted)."""

import pytest

from randstruct.tooling import bench


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

    def fake(kind, n, n_net, epochs, repeats, device, clock=None, **opts):
        assert (clock is None) == (kind == "serial")
        rate = rates["serial"] if kind == "serial" else rates[next(iter(opts), "default")]
        return {"rates": [rate] * repeats, "ceilings": [1000.0] * repeats, "serial": [rates["serial"]] * repeats,
                "task_share": 0.5, "peak_mb": 1.0}

    monkeypatch.setattr(bench, "_measure", fake)
    monkeypatch.setattr(bench, "SerialClock", lambda n, device: _NoClock())
    rows = {r["config"]: r for r in bench.run_suite(((16, (4,)),), device="cuda", log=lambda line: None)}
    assert rows["ensemble E=4"]["task_share"] == 1 - 90.0 / 100.0
    assert rows["serial reference"]["task_share"] == 0.5
    for label in ("ensemble E=4, fixed batch", "ensemble E=4, no graphs", "ensemble E=4, TF32"):
        assert rows[label]["task_share"] != rows[label]["task_share"], label
    assert rows["ensemble E=4"]["vs_serial"] == 9.0


class _NoClock:
    def close(self):
        pass


def test_ratio_to_serial_is_taken_repeat_by_repeat(monkeypatch):
    """A drifting machine: each ensemble repeat is compared with the serial rate timed just before it."""
    timings = {"serial": [4.0, 5.0, 6.0], "ensemble": [12.0, 30.0, 10.0]}

    def fake(kind, n, n_net, epochs, repeats, device, clock=None, **opts):
        return {"rates": timings[kind], "ceilings": [1000.0] * 3, "task_share": 0.0, "peak_mb": 1.0,
                "serial": timings["serial"] if kind == "serial" else [4.0, 10.0, 2.0]}

    monkeypatch.setattr(bench, "_measure", fake)
    serial, ensemble = bench.run_suite(((16, (4,)),), repeats=3, log=lambda line: None)
    assert serial["vs_serial"] == 1.0
    assert ensemble["vs_serial"] == 3.0  # ratios 3, 3, 5; the ratio of medians would be 12 / 5


def test_serial_clock_times_the_reference_in_its_own_process():
    with bench.SerialClock(16) as clock:
        rates = [clock.rate(), clock.rate()]
        process = clock._proc
    assert all(r > 0 for r in rates)
    assert process.returncode == 0


def test_serial_clock_reports_a_dead_process():
    with pytest.raises(RuntimeError, match="exited with code 1"):
        bench.SerialClock(16, device="no-such-device")


def test_model_variants_are_timed_beside_the_default_model():
    rows = bench.run_suite(((16, (2,)),), epochs=1, repeats=1, log=lambda line: None, models=("default", "noise", "dale"))
    assert [r["config"] for r in rows] == ["serial reference", "ensemble E=2", "ensemble E=2, noise", "ensemble E=2, dale"]
    assert all(r["median"] > 0 for r in rows)
    assert set(bench.MODELS) >= {"default", "noise", "dale", "sparse", "l2", "all"}
