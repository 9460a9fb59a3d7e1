"""One writer at a time per run directory: ``<run>/.randstruct.lock``.

The lock is a file created with O_CREAT | O_EXCL (atomic on local filesystems and on NFSv3+),
holding its owner's host, pid, purpose and start time as JSON. A second writer is refused with
:class:`RunLocked`. An owner on this host whose process is gone left a stale lock: it is taken
over, and said so on stderr. An owner on another host cannot be checked from here, so its lock
is never broken automatically; the message says how to remove it by hand.

Readers (``info``, ``load``) take no lock: every update of a store is atomic (see results.py).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from randstruct.store.errors import RunError

LOCK = ".randstruct.lock"
_TAKEOVER = LOCK + ".takeover"
_GUARD_STALE_S = 30.0  # a takeover guard older than this was left by a crash mid-takeover
_held: dict[Path, int] = {}  # locks this process holds (re-entry by the owner is allowed)


class RunLocked(RunError):
    """Another process is writing this run directory."""


def _describe(owner: dict) -> str:
    return (f"{owner.get('purpose', '?')} (pid {owner.get('pid', '?')} on {owner.get('host', '?')}, "
            f"since {owner.get('started', '?')})")


def lock_owner(run_dir: str | Path) -> dict | None:
    """The owner record of ``run_dir``'s lock, or None when it is not locked.

    A lock file being written this instant may be empty for a moment: it is read again briefly
    before being reported as ``{"unreadable": True}``.
    """
    path = Path(run_dir) / LOCK
    for _ in range(20):
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise RunError(f"cannot read the lock {path}: {err.strerror}") from None
        try:
            owner = json.loads(text)
            if isinstance(owner, dict):
                return owner
        except json.JSONDecodeError:
            pass
        time.sleep(0.05)
    return {"unreadable": True}


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (someone else's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _is_stale(owner: dict) -> bool:
    """True only when the owner provably is gone: same host, its pid no longer exists."""
    pid = owner.get("pid")
    return (owner.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0
            and pid != os.getpid() and not process_alive(pid))


def _create(path: Path, purpose: str) -> bool:
    """Create the lock file atomically; False if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    record = {"host": socket.gethostname(), "pid": os.getpid(), "purpose": purpose,
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return True


def _take_over(path: Path, seen: dict) -> bool:
    """Remove the stale lock ``seen`` unless another process replaced it meanwhile.

    A guard file makes check-and-remove one step: without it two processes that both saw the
    stale lock could each remove it, the second removing the first one's new lock.
    """
    guard = path.with_name(_TAKEOVER)
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - guard.stat().st_mtime > _GUARD_STALE_S:
                guard.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    os.close(fd)
    try:
        if lock_owner(path.parent) != seen:
            return False
        path.unlink(missing_ok=True)
        print(f"randstruct: {path.parent}: taking over the stale lock of {_describe(seen)}: that process is gone",
              file=sys.stderr)
        return True
    finally:
        guard.unlink(missing_ok=True)


def _refusal(run_dir: Path, owner: dict) -> RunLocked:
    path = run_dir / LOCK
    if owner.get("unreadable"):
        return RunLocked(f"{run_dir} is locked ({path} is unreadable); if no randstruct process is writing "
                         f"this run, remove {path}")
    if owner.get("host") == socket.gethostname():
        advice = "wait for it to finish, or stop it"
    else:
        advice = f"that host cannot be checked from here; if you know the process is dead, remove {path}"
    return RunLocked(f"{run_dir} is in use by {_describe(owner)}; {advice}")


def _make_dirs(run_dir: Path) -> list[Path]:
    """Create ``run_dir`` and missing parents; return the ones created, deepest first."""
    missing = []
    p = run_dir
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise RunError(f"cannot write to {run_dir}: {p} is not a writable directory")
    created = []
    try:
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue
            created.append(d)
    except OSError as err:
        _remove_empty(created[::-1])
        raise RunError(f"cannot write to {run_dir}: {d.parent} is not a writable directory "
                       f"({err.strerror or err})") from None
    return created[::-1]


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


@contextmanager
def run_lock(run_dir: str | Path, purpose: str) -> Iterator[Path]:
    """Hold ``run_dir``'s write lock for the block (``purpose``: "train", "analyze", ...).

    Creates ``run_dir`` if needed; folders it created are removed again if they are empty when
    the block ends (a refused or failed write leaves nothing behind). Raises :class:`RunLocked`
    if another live process holds the lock. The process holding it may enter again.
    """
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield run_dir
        finally:
            _held[key] -= 1
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"output path {run_dir} exists and is not a directory")
    created = _make_dirs(run_dir)
    path = run_dir / LOCK
    try:
        while True:
            try:
                if _create(path, purpose):
                    break
            except OSError as err:
                raise RunError(f"cannot write to {run_dir}: it is not a writable directory "
                               f"({err.strerror or err})") from None
            owner = lock_owner(run_dir)
            if owner is None:
                continue  # released meanwhile
            if not _is_stale(owner):
                raise _refusal(run_dir, owner)
            if not _take_over(path, owner):
                time.sleep(0.05)  # another process is taking it over: look again
    except BaseException:
        _remove_empty(created)
        raise
    _held[key] = 1
    try:
        yield run_dir
    finally:
        del _held[key]
        path.unlink(missing_ok=True)
        _remove_empty(created)
