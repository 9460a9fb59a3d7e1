"""The training progress bar: epochs, mean loss per g and network-epochs per second."""

from __future__ import annotations

import time

import numpy as np
import torch


class TrainingBar:
    """tqdm bar with the mean loss per g and the throughput in network-epochs/s."""

    def __init__(self, trainer, until: int):
        from tqdm.auto import tqdm

        self.trainer = trainer
        self.groups = {float(g): trainer.ensemble.g == g for g in np.unique(trainer.ensemble.g)}
        self.bar = tqdm(total=until, initial=trainer.epoch, unit="epoch", dynamic_ncols=True,
                        desc=f"{trainer.task.name} x{trainer.ensemble.size}")
        self.start, self.first = time.perf_counter(), trainer.epoch
        self.every = max(1, until // 200)

    def rate(self) -> float:
        """Network-epochs per second since this bar started: a running average (one epoch's time
        swings with the machine's load)."""
        elapsed = time.perf_counter() - self.start
        return self.trainer.ensemble.size * (self.trainer.epoch - self.first) / max(elapsed, 1e-9)

    def update(self, loss: torch.Tensor) -> None:
        self.bar.update(1)
        if self.trainer.epoch % self.every:
            return
        values = loss.detach().cpu().numpy()
        rate = self.rate()
        parts = [f"g={g:g}:{np.nanmean(values[m]):.3g}" for g, m in self.groups.items()]
        self.bar.set_postfix_str(f"loss {' '.join(parts)} | {rate:,.0f} net-ep/s", refresh=False)

    def close(self) -> None:
        self.bar.close()
