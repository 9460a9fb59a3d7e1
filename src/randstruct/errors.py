"""The error policy, written once: who or what failed decides the words and the exit code.

Library code raises these classes; :mod:`randstruct.cli.main` prints each as one line with exit
code 2 (``KIND_WORDS`` says what failed). Any other exception is a bug in randstruct: exit 1 and
the traceback in a log file. A plain ``ValueError`` raised deep inside NumPy is therefore a bug,
not the user's input. The classes that replaced a ``ValueError`` or ``ImportError`` still subclass
it, so Python callers that catch those keep working.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
import sysconfig
import tempfile
import traceback
from collections.abc import Iterator


class Failure(Exception):
    """A failure that is not a bug in randstruct; ``kind`` names who or what failed."""

    kind = "failure"


class UserInputError(Failure, ValueError):
    """A value, option or folder the user gave that cannot be used as given."""

    kind = "input"


class UserCodeError(Failure):
    """The user's own code (a task, a plug-in) raised; the message names it, the exception and where."""

    kind = "user code"


class DamagedFileError(UserInputError):
    """A file randstruct wrote earlier that can no longer be read; the message says what to do."""

    kind = "damaged file"


class ResourceError(Failure, ValueError):
    """More memory (or disk) than the machine has; raised before anything is allocated or written."""

    kind = "machine limits"


class MissingDependency(Failure, ImportError):
    """An optional package that is not installed; the message gives the ``pip install`` line."""

    kind = "missing dependency"


# what the CLI prefixes to a message of each kind (a user's input and a missing package, built
# by :func:`missing`, speak for themselves)
KIND_WORDS = {
    "input": "",
    "user code": "your code failed: ",
    "damaged file": "damaged file: ",
    "machine limits": "not enough resources: ",
    "missing dependency": "",
}


def missing(who_needs: str, module: str, extra: str) -> MissingDependency:
    """The error for the optional ``module`` of ``randstruct[extra]``, e.g. ``missing("NeuroGym tasks
    need", "neurogym", "neurogym")``."""
    return MissingDependency(f"{who_needs} the optional package {module}, which is not installed: "
                             f"pip install 'randstruct[{extra}]'")


def require(module: str, who_needs: str, extra: str) -> None:
    """Import ``module`` now, or raise :func:`missing`'s error (before anything is written)."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise missing(who_needs, module, extra) from None


# randstruct's own files and the installed libraries': a user's line is the innermost frame elsewhere
_LIBRARY = tuple({os.path.dirname(__file__) + os.sep,
                  *(sysconfig.get_paths()[k] + os.sep for k in ("stdlib", "platstdlib", "purelib", "platlib"))})


def where(err: BaseException) -> str:
    """``file:line`` of the user's line that failed: for a SyntaxError the offending line of the
    source, else the innermost frame outside randstruct and the installed libraries (the innermost
    frame of all where there is none, e.g. a plug-in installed as a package)."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    frames = traceback.extract_tb(err.__traceback__)
    mine = [f for f in frames if not f.filename.startswith(_LIBRARY)] or frames
    return f"{mine[-1].filename}:{mine[-1].lineno}" if mine else "unknown location"


def owner(cls: type, what: str) -> str | None:
    """How the policy names a user's class in a message, e.g. "task 'x' (mod:Cls)"; None for
    randstruct's own classes, whose failures are bugs."""
    if cls.__module__.partition(".")[0] == "randstruct":
        return None
    return f"{what} {getattr(cls, 'name', cls.__qualname__)!r} ({cls.__module__}:{cls.__qualname__})"


def user_code_error(owner: str, err: BaseException) -> UserCodeError:
    text = err.msg if isinstance(err, SyntaxError) else one_line(err)
    return UserCodeError(f"{owner} raised {type(err).__name__}: {text} ({where(err)})")


@contextlib.contextmanager
def user_code(owner: str | None) -> Iterator[None]:
    """Run the user's code (``owner`` names it, e.g. "task 'x' (mod:Cls)"); any exception it raises
    that the policy does not already classify becomes a :class:`UserCodeError`. ``owner`` None:
    randstruct's own code, left alone (its failures are bugs)."""
    if owner is None:
        yield
        return
    try:
        yield
    except (Failure, MemoryError):
        raise
    except Exception as err:
        raise user_code_error(owner, err) from err


def classify(err: BaseException) -> Failure | None:
    """The policy's failure that ``err`` is, or None for a bug in randstruct."""
    if isinstance(err, Failure):
        return err
    if isinstance(err, MemoryError):
        return ResourceError("out of memory; use fewer networks, a smaller N, shorter trials or a smaller batch")
    if isinstance(err, OSError):  # the user's files or the machine's disk, never randstruct's logic
        text = f"{err.filename}: {err.strerror}" if err.filename else str(err)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return ResourceError(f"{text}; free some disk space or write elsewhere")
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return UserInputError(f"{text}; choose a file or folder you may write to, or change its permissions")
    return None


def report(err: Exception, prog: str, context: str = "") -> int:
    """Tell the user about ``err`` in one line on stderr and return the exit code: 2 for the policy's
    failures, 1 for a bug (its traceback goes to a log file named in the line; ``context`` heads it)."""
    failure = classify(err)
    if failure is not None:
        print(f"{prog}: error: {KIND_WORDS[failure.kind]}{one_line(failure)}", file=sys.stderr)
        return 2
    fd, log = tempfile.mkstemp(prefix=f"{prog.split('.')[0]}-error-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"{context}\n")
        traceback.print_exception(err, file=f)
    print(f"{prog}: internal error (a bug, please report it): {type(err).__name__}: {one_line(err)}; "
          f"details in {log}", file=sys.stderr)
    return 1


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def named_line(err: BaseException, limit: int = 200) -> str:
    """A foreign exception (from zarr, torch, a worker) as ``Type: its first line`` within ``limit``."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:limit]}" if text else type(err).__name__
