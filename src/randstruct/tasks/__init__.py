"""Seedable, vectorised trial generators: the task contract (``base``), the paper's tasks
(``cognitive``, ``linear``), tasks by reference and registration (``registry``) and NeuroGym
environments (``neurogym``, imported on first use: it needs the optional package)."""

from randstruct.tasks.base import Batch, DeterministicTask, Task, as_generator, check_task, steps
from randstruct.tasks.cognitive import FlipFlop, Mante, Romo
from randstruct.tasks.linear import Cosine, Simple
from randstruct.tasks.registry import TASKS, get_task, register_task, resolve_task_class

__all__ = ["TASKS", "Batch", "Cosine", "DeterministicTask", "FlipFlop", "Mante", "Romo", "Simple", "Task",
           "as_generator", "check_task", "get_task", "register_task", "resolve_task_class", "steps"]
