"""Tasks by name."""

from __future__ import annotations

import dataclasses
from typing import Any

from randstruct.tasks.base import Task
from randstruct.tasks.cognitive import FlipFlop, Mante, Romo
from randstruct.tasks.linear import Cosine, Simple

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (Cosine, FlipFlop, Mante, Romo, Simple)}


def get_task(name: str, **params: Any) -> Task:
    """Construct a task by name; unknown names and parameters raise ValueError listing what is allowed."""
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(sorted(TASKS))}")
    cls = TASKS[name]
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for task {name!r}; allowed: {', '.join(allowed)}")
    return cls(**params)
