"""Tasks by reference: a registered name, ``package.module:ClassName`` or ``neurogym:EnvId-v0``.

Names come from the built-in tasks, :func:`register_task` (a decorator or a plain call) and the
``randstruct.tasks`` entry-point group, which pip packages use to add tasks without an import in
the user's script (``[project.entry-points."randstruct.tasks"] mytask = "mypkg.tasks:MyTask"``).
Entry points are read only when a name is not found, so a plain run never scans installed packages.
"""

from __future__ import annotations

import dataclasses
import importlib
from importlib import metadata
from typing import Any

from randstruct.tasks.base import Task, check_task, check_task_class
from randstruct.tasks.cognitive import FlipFlop, Mante, Romo
from randstruct.tasks.linear import Cosine, Simple

ENTRY_POINTS = "randstruct.tasks"
NEUROGYM_PREFIX = "neurogym:"
TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (Cosine, FlipFlop, Mante, Romo, Simple)}
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
            raise ValueError(f"task name must be a non-empty string without ':', got {key!r}")
        old = TASKS.get(key)
        if old is not None and old is not c and (key in BUILTIN or not replace):
            raise ValueError(f"task name {key!r} is already registered to {class_reference(old)}"
                             + ("" if key in BUILTIN else "; pass replace=True to override"))
        TASKS[key] = c
        return c

    return add if cls is None else add(cls)


def class_reference(cls: type) -> str:
    """``module:QualName``, what :func:`resolve_task_class` imports."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _entry_point(name: str) -> type[Task] | None:
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        if ep.name == name:
            try:
                return register_task(ep.load(), name=name)
            except Exception as err:  # a broken plug-in: say which one, in one line
                raise ValueError(f"task {name!r} from entry point {ep.value!r} could not be loaded: {err}") from None
    return None


def import_class(ref: str) -> type[Task]:
    """The class named by ``package.module:ClassName`` (a dotted name after the colon is followed)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"invalid task reference {ref!r}: expected package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"task {ref!r}: cannot import module {module_name!r} ({err}); install it or add its "
                         "folder to PYTHONPATH") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"task {ref!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return check_task_class(obj)


def known_names() -> list[str]:
    return sorted(set(TASKS) | {ep.name for ep in metadata.entry_points(group=ENTRY_POINTS)})


def allowed_text() -> str:
    """The registered names (the other two forms, module:Class and neurogym:EnvId, are in the --task help)."""
    return f"allowed: {', '.join(known_names())}"


def resolve_task_class(ref: str) -> type[Task]:
    """The Task class behind a registered name or a ``module:Class`` reference."""
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"unknown task {ref!r}; {allowed_text()}")
    if ref in TASKS:
        return TASKS[ref]
    if ":" in ref:
        return import_class(ref)
    found = _entry_point(ref)
    if found is None:
        raise ValueError(f"unknown task {ref!r}; {allowed_text()}")
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
        raise ValueError(f"unknown parameter {unknown[0]!r} for task {name!r}; allowed: {', '.join(allowed)}")
    return check_task(cls(**params))
