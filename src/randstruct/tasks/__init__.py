"""Seedable, vectorised trial generators: the task contract (``base``), the 2020 paper's tasks
(``cognitive``, ``linear``), the 2024 paper's (``oblique``), tasks by reference and registration (``registry``) and NeuroGym
environments (``neurogym``, imported on first use: it needs the optional package)."""

from randstruct.tasks.base import Batch, DeterministicTask, Task, as_generator, check_task, steps
from randstruct.tasks.cognitive import FlipFlop, Mante, Romo
from randstruct.tasks.linear import Cosine, Simple
from randstruct.tasks.oblique import ComplexSine, Cycling, FlipFlop3, Mante2024, Romo2024
from randstruct.tasks.registry import TASKS, get_task, register_task, resolve_task_class

__all__ = ["TASKS", "Batch", "ComplexSine", "Cosine", "Cycling", "DeterministicTask", "FlipFlop", "FlipFlop3", "Mante",
           "Mante2024", "Romo", "Romo2024", "Simple", "Task",
           "as_generator", "check_task", "get_task", "register_task", "resolve_task_class", "steps"]
