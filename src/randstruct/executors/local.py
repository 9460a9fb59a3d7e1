"""The in-process executor: runs trained one after another, analyses computed here."""

from __future__ import annotations

from randstruct.analysis.apply import compute
from randstruct.runs import Run, TrainJob, execute


class InProcess:
    """Train and analyse in this process (a context manager, like every executor)."""

    def __enter__(self) -> "InProcess":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def train(self, jobs: list[TrainJob], checkpoint_every: int | None = None, progress: bool = True) -> list[Run]:
        return [execute(j.spec, j.out, overwrite=j.overwrite, resume=j.resume, progress=progress,
                        checkpoint_every=checkpoint_every) for j in jobs]

    def compute_analyses(self, items: list[tuple[Run, list]], device: str, progress: bool = True) -> list[list]:
        return [[compute(run, request, device, progress) for request in requests] for run, requests in items]
