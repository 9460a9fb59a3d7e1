"""Tasks by reference: a registered name, ``package.module:ClassName`` or ``neurogym:EnvId-v0``.

Names come from the built-in tasks, :func:`register_task` (a decorator or a plain call) and the
``randstruct.tasks`` entry-point group, which pip packages use to add tasks without an import in
the user's script (``[project.entry-points."randstruct.tasks"] mytask = "mypkg.tasks:MyTask"``).
Entry points are read only when a name is not found, so a plain run never scans installed packages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from randstruct.errors import UserInputError, user_code
from randstruct.plugins import class_reference, entry_point, entry_point_names, import_reference
from randstruct.tasks.base import Task, check_task, check_task_class, task_owner
from randstruct.tasks.cognitive import FlipFlop, Mante, Romo
from randstruct.tasks.linear import Cosine, Simple
from randstruct.tasks.oblique import ComplexSine, Cycling, FlipFlop3, Mante2024, Romo2024

ENTRY_POINTS = "randstruct.tasks"
NEUROGYM_PREFIX = "neurogym:"
TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (Cosine, FlipFlop, Mante, Romo, Simple,  # 2020
                                                          ComplexSine, Cycling, FlipFlop3, Mante2024, Romo2024)}
BUILTIN = frozenset(TASKS)


def register_task(cls: type[Task] | None = None, *, name: str | None = None, replace: bool = False):
    """Register a Task subclass under ``name`` (default: its ``name`` class variable).

    Use as ``@register_task``, ``@register_task(name="x")`` or ``register_task(MyTask)``; returns the
    class. A name already taken by another class is refused unless ``replace`` (built-ins never).
    """
    def add(c: type[Task]) -> type[Task]:
        check_task_class(c)
        key = c.name if name is None else name
        if not isinstance(key, str) or not key or ":" in key:
            raise UserInputError(f"task name must be a non-empty string without ':', got {key!r}")
        old = TASKS.get(key)
        if old is not None and old is not c and (key in BUILTIN or not replace):
            raise UserInputError(f"task name {key!r} is already registered to {class_reference(old)}"
                                 + ("" if key in BUILTIN else "; pass replace=True to override"))
        TASKS[key] = c
        return c

    return add if cls is None else add(cls)


def _entry_point(name: str) -> type[Task] | None:
    found = entry_point(ENTRY_POINTS, name, "task")
    return None if found is None else register_task(found, name=name)


def import_class(ref: str) -> type[Task]:
    """The Task class named by ``package.module:ClassName``."""
    return import_reference(ref, "task", check_task_class)


def known_names() -> list[str]:
    return sorted(set(TASKS) | entry_point_names(ENTRY_POINTS))


def allowed_text() -> str:
    """The registered names (the other two forms, module:Class and neurogym:EnvId, are in the --task help)."""
    return f"allowed: {', '.join(known_names())}"


def resolve_task_class(ref: str) -> type[Task]:
    """The Task class behind a registered name or a ``module:Class`` reference."""
    if not isinstance(ref, str) or not ref:
        raise UserInputError(f"unknown task {ref!r}; {allowed_text()}")
    if ref in TASKS:
        return TASKS[ref]
    if ":" in ref:
        return import_class(ref)
    found = _entry_point(ref)
    if found is None:
        raise UserInputError(f"unknown task {ref!r}; {allowed_text()}")
    return found


def get_task(name: str, **params: Any) -> Task:
    """Construct a task by reference; unknown references and parameters raise a one-line ValueError.

    ``neurogym:EnvId`` builds a :class:`~randstruct.tasks.neurogym.NeuroGymTask`: its own fields
    (dt, tau_ms, score, max_ms, env_kwargs) are taken from ``params``, every other key is passed to
    the environment's constructor.
    """
    if isinstance(name, str) and name.startswith(NEUROGYM_PREFIX):
        from randstruct.tasks.neurogym import make_neurogym_task

        return make_neurogym_task(name[len(NEUROGYM_PREFIX):], **params)
    cls = resolve_task_class(name)
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UserInputError(f"unknown parameter {unknown[0]!r} for task {name!r}; allowed: {', '.join(allowed)}")
    with user_code(task_owner(cls)):
        return check_task(cls(**params))
