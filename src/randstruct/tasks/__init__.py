"""Seedable, vectorised trial generators: the task contract (``base``), the paper's tasks
(``cognitive``, ``linear``) and the registry by name (``registry``)."""

from randstruct.tasks.base import Batch, DeterministicTask, Task, as_generator, steps
from randstruct.tasks.cognitive import FlipFlop, Mante, Romo
from randstruct.tasks.linear import Cosine, Simple
from randstruct.tasks.registry import TASKS, get_task

__all__ = ["TASKS", "Batch", "Cosine", "DeterministicTask", "FlipFlop", "Mante", "Romo", "Simple", "Task",
           "as_generator", "get_task", "steps"]
