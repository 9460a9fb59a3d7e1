"""The command line: end to end, and one-line errors with exit code 2 that touch nothing."""

import subprocess
import sys

import numpy as np
import pytest

from randstruct.cli import main, parse_floats

TRAIN = ["train", "--task", "flipflop", "--N", "12", "--g", "0,1.5", "--seeds", "2", "--epochs", "4",
         "--batch", "4", "--no-progress"]


def test_train_then_info(tmp_path, capsys):
    out = tmp_path / "ff"
    assert main(TRAIN + ["--out", str(out)]) == 0
    assert "trained 4 networks x 4 epochs" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    table = capsys.readouterr().out
    assert "task flipflop, N = 12" in table and "||dW||_F" in table
    rows = [line.split()[0] for line in table.splitlines() if line.strip().startswith(("0 ", "1.5 "))]
    assert rows == ["0", "1.5"]


def test_every_model_option_trains_and_every_verb_reads_the_run(tmp_path, capsys):
    out = tmp_path / "field"
    assert main(TRAIN + ["--noise-rec", "0.2", "--noise-x0", "1", "--noise-in", "0.1", "--readout", "large",
                         "--l2-dw", "1e-3", "--l2-rates", "1e-4", "--dale", "0.8", "--sparsity", "0.5",
                         "--nonlinearity", "relu", "--readout-from", "state", "--out", str(out)]) == 0
    assert main(["analyze", str(out), "--ranks", "3", "--shuffles", "2", "--eval-trials", "8", "--no-progress"]) == 0
    assert main(["dynamics", str(out), "--inits", "4", "--no-progress"]) == 0
    assert main(["plot", str(out), "--out", str(tmp_path / "field.png")]) == 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "relu" in text and "dale = 0.8, sparsity = 0.5" in text and "func. rank" in text
    assert "readout_from = state" in text
    assert (tmp_path / "field.png").stat().st_size > 0
    # evaluations are noiseless unless asked; with --eval-noise the training noise, reproducibly
    import randstruct as rs

    quiet = rs.load(out).data.final_eval_loss.values
    again = ["analyze", str(out), "--ranks", "3", "--shuffles", "2", "--eval-trials", "8", "--no-progress",
             "--force", "--eval-noise"]
    assert main(again) == 0
    noisy = rs.load(out).data.final_eval_loss.values
    assert main(again) == 0
    assert not np.allclose(noisy, quiet) and np.array_equal(rs.load(out).data.final_eval_loss.values, noisy)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--task": "flopflip"}, "unknown task 'flopflip'; allowed: complex_sine, cosine, cycling, flipflop, "
                                  "flipflop3_2024, mante, mante2024, romo, romo2024, simple"),
        ({"--N": "1"}, "N must be an integer >= 2, got 1"),
        ({"--g": "0,-0.5"}, "g must be finite numbers >= 0"),
        ({"--g": "0,,1"}, "invalid --g value '0,,1'"),
        ({"--g": "a"}, "invalid --g value 'a'"),
        ({"--g": "0:2:-1"}, "invalid --g value '0:2:-1'"),
        ({"--dt": "1.5"}, "--dt must be in (0, 1], got 1.5"),
        ({"--dt": "0"}, "--dt must be in (0, 1], got 0.0"),
        ({"--epochs": "0"}, "epochs must be an integer >= 1, got 0"),
        ({"--seeds": "0"}, "--seeds must be >= 1, got 0"),
        ({"--epochs": "ten"}, "argument --epochs: invalid int value: 'ten'"),
        ({"--optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"--train": "wrec,bias"}, "trainable must be a non-empty subset"),
        ({"--dtype": "float16"}, "unknown dtype 'float16'"),
        ({"--task-param": "T"}, "invalid --task-param 'T'"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, change, message):
    argv = list(TRAIN) + ["--out", str(tmp_path / "x")]
    for opt, value in change.items():
        if opt in argv:
            argv[argv.index(opt) + 1] = value
        else:
            argv += [opt, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("randstruct: error: ")
    assert message in err
    assert not (tmp_path / "x").exists()


def test_existing_output_is_untouched(tmp_path, capsys):
    out = tmp_path / "ff"
    assert main(TRAIN + ["--out", str(out)]) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(TRAIN + ["--out", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    # invalid input together with --overwrite must not delete the old run either
    assert main(TRAIN + ["--out", str(out), "--overwrite", "--N", "1"]) == 2
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(TRAIN + ["--out", str(blocker / "run")]) == 2
    assert "is not a writable directory" in capsys.readouterr().err


def test_info_on_missing_run(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nothing")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_parse_floats_range_is_inclusive():
    assert parse_floats("0:2.1:0.3", "--g") == [0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1]
    assert parse_floats("0,0.9,1.8", "--g") == [0.0, 0.9, 1.8]


def test_console_script_exit_code(tmp_path):
    res = subprocess.run([sys.executable, "-m", "randstruct", "train", "--task", "x", "--N", "8", "--g",
                          "1", "--epochs", "1", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["randstruct: error: unknown task 'x'; allowed: complex_sine, cosine, cycling, "
                                               "flipflop, flipflop3_2024, mante, mante2024, romo, romo2024, simple"]
