"""examples/slurm.py as far as a machine without SLURM allows: the job script it would submit."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("dask_jobqueue")
EXAMPLE = Path(__file__).parents[2] / "examples" / "slurm.py"


def _example():
    spec = importlib.util.spec_from_file_location("slurm_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_slurm_example_asks_for_one_single_threaded_worker_per_core(capsys):
    cluster = _example().make_cluster(cores=8, memory="16GB", walltime="01:30:00", queue="short", account="lab",
                                      host="127.0.0.1")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    assert "#SBATCH -p short" in lines and "#SBATCH -A lab" in lines and "#SBATCH -t 01:30:00" in lines
    assert "#SBATCH --cpus-per-task=8" in lines and "#SBATCH -J randstruct" in lines
    (worker,) = [line for line in lines if "distributed.cli.dask_worker" in line]
    assert "tcp://127.0.0.1:" in worker and "--nthreads 1" in worker and "--nworkers 8" in worker
    assert "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1" in lines


def test_the_dry_run_prints_the_job_script_and_submits_nothing(capsys, monkeypatch):
    example = _example()
    made = {}
    real = example.make_cluster

    def local(*args, **kw):  # the scheduler on loopback: this machine has no cluster network
        made["cluster"] = real(*args, **{**kw, "host": "127.0.0.1"})
        return made["cluster"]

    monkeypatch.setattr(example, "make_cluster", local)
    assert example.main(["--dry-run", "--cores", "4", "--queue", "q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/usr/bin/env bash") and "#SBATCH -p q" in out and "--nworkers 4" in out
    assert made["cluster"].status.name == "closed"


def test_the_paper_scale_sentiment_figures_need_their_data_one_line_no_cluster(capsys, monkeypatch):
    example = _example()

    def no_cluster(*args, **kw):
        raise AssertionError("a cluster was started for a command that cannot run")

    monkeypatch.setattr(example, "make_cluster", no_cluster)
    with pytest.raises(SystemExit) as exit_:
        example.main(["--out", "/nonexistent/results"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("slurm.py: error: Figs 5 and S6 at the paper scale need the real data: pass --sst DIR")
    assert "--figures fig1 fig2 figS2 figS1 fig3 fig4 figS3 figS4 figS5" in err[-1]
    with pytest.raises(SystemExit):
        example.main(["--figures", "fig9"])
    assert "unknown figure 'fig9'" in capsys.readouterr().err
