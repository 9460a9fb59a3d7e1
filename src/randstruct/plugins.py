"""What the extension points (tasks, analyses) share: a class by ``package.module:ClassName`` and
classes that installed packages offer through an entry-point group.

Entry points are read only when a name is not found otherwise, so a plain run never scans the
installed packages.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable

from randstruct.errors import UserInputError, user_code_error


def class_reference(cls: type) -> str:
    """``module:QualName``, what :func:`import_reference` imports."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_reference(ref: str, what: str, check: Callable[[Any], type]) -> type:
    """The class named by ``package.module:ClassName`` (a dotted name after the colon is followed),
    passed through ``check``; ``what`` ("task", "analysis") words the one-line errors."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise UserInputError(f"invalid {what} reference {ref!r}: expected package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserInputError(f"{what} {ref!r}: cannot import module {module_name!r} ({err}); install it or add its "
                             "folder to PYTHONPATH") from None
    except Exception as err:  # a SyntaxError or any failure of the module's own code
        raise user_code_error(f"{what} module {module_name!r}", err) from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserInputError(f"{what} {ref!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return check(obj)


def entry_point(group: str, name: str, what: str) -> Any | None:
    """The object entry point ``name`` of ``group`` offers, or None if no package offers one."""
    for ep in metadata.entry_points(group=group):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as err:  # a broken plug-in is the user's code
                raise user_code_error(f"{what} {name!r} from entry point {ep.value!r}", err) from err
    return None


def entry_point_names(group: str) -> set[str]:
    return {ep.name for ep in metadata.entry_points(group=group)}
