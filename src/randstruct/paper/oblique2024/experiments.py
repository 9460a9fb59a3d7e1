"""The 2024 paper's "neuro" sweep as run specifications (the authors' frschu/aligned_oblique_in_rnns,
neuro_train_networks notebook): five tasks, four scenarios (g, readout), Adam at lr0 / N on W_in,
W and W_out, batch 32, the output read from the state, initial-state noise 1 and state noise 0.2
(0.05 for Mante). ``paper``: N = 512, 5 seeds, the published steps. ``smoke``: N = 128, 3 seeds,
batch 16, fewer steps at a larger learning rate, every other ingredient kept: about 10 minutes on
this project's 2-core CPU for all 20 scenarios."""

from __future__ import annotations

from dataclasses import dataclass

from randstruct.engine.train import TrainConfig
from randstruct.errors import UserInputError
from randstruct.runs import RunSpec

SCALES = ("smoke", "paper")
SCENARIOS = ((0.7, "large"), (1.5, "large"), (0.7, "small"), (1.5, "small"))  # the authors' order
REGIME = {"small": "aligned", "large": "oblique"}  # what each initial readout leads to


@dataclass(frozen=True)
class TaskProtocol:
    """One task of the sweep: its registry name, label, Adam lr0 per scenario (in SCENARIOS
    order; lr = lr0 / N), steps at each scale, the factor on lr0 at smoke scale (so that a
    fraction of the steps learns the task) and the state noise."""

    task: str
    label: str
    lr0: tuple[float, float, float, float]
    steps: int
    smoke_steps: int
    smoke_lr: float = 4.0
    noise_rec: float = 0.2


TASKS = {
    "cycling": TaskProtocol("cycling", "Cycling", (0.02, 0.02, 0.02, 0.02), 1000, 500),
    "flipflop": TaskProtocol("flipflop3_2024", "3-bit flip-flop", (0.01, 0.01, 0.005, 0.005), 4000, 500),
    "mante": TaskProtocol("mante2024", "Mante", (0.002, 0.02, 0.002, 0.002), 4000, 500, noise_rec=0.05),
    "romo": TaskProtocol("romo2024", "Romo", (0.01, 0.01, 0.01, 0.005), 6000, 1200, smoke_lr=8.0),
    "complex_sine": TaskProtocol("complex_sine", "Complex sine", (0.01, 0.005, 0.005, 0.005), 6000, 1500,
                                 smoke_lr=8.0),
}
SIZE = {"paper": (512, 5), "smoke": (128, 3)}  # N, seeds
BATCH = {"paper": 32, "smoke": 16}


def run_label(task: str, readout: str, g: float | None = None) -> str:
    return f"{task}_{readout}" if g is None else f"{task}_g{g}_{readout}"


def neuro(scale: str, device: str = "cpu") -> dict[str, RunSpec]:
    """Every run of the sweep: {label: spec}. The scenarios of a task and readout that share a
    learning rate are one run over both g (one ensemble: a member's results do not depend on the
    ensemble it is trained in), the others one run per g."""
    if scale not in SCALES:
        raise UserInputError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES)}")
    n, seeds = SIZE[scale]
    runs = {}
    for name, p in TASKS.items():
        steps = p.steps if scale == "paper" else p.smoke_steps
        for readout in ("large", "small"):
            lrs = {g: lr0 for (g, r), lr0 in zip(SCENARIOS, p.lr0) if r == readout}
            groups = [(None, tuple(lrs), lrs[min(lrs)])] if len(set(lrs.values())) == 1 else \
                [(g, (g,), lr0) for g, lr0 in lrs.items()]
            for key, gs, lr0 in groups:
                lr0 = lr0 if scale == "paper" else lr0 * p.smoke_lr
                config = TrainConfig(epochs=steps, batch_size=BATCH[scale], optimizer="adam", lr_rule="over_n", lr0=lr0,
                                     trainable=("wi", "wrec", "wo"), rec_step=max(1, steps // 50))
                runs[run_label(name, readout, key)] = RunSpec(
                    task=p.task, n=n, g=gs, seeds=seeds, train=config, noise_rec=p.noise_rec,
                    noise_x0=1.0, readout=readout, readout_from="state", device=device)
    return runs

