"""What keeps a sharded run correct when processes die: a lease per shard folder, and errors
from workers turned into one line at the client.

The client holds the run's lock (``store.lock.run_lock``) for the whole command, but shards are
written by workers that may live on other hosts, and a task can outlive the client that submitted
it (a worker cannot interrupt a running task). So each shard folder has its own lease,
``shards/<k>.lease`` (host, pid, purpose, a heartbeat counter a thread advances every ``BEAT`` s). A task
that finds the lease held waits; it takes the lease over when the holder is a dead process on its
own host, or when the heartbeat has not moved for ``TTL`` s as seen by the waiter's own clock (no
clock comparison across hosts). Training is deterministic, so the waiter then resumes from the
holder's last checkpoint or reuses its finished results. An analysis of a shard leases its own
folder, ``shards/<k>/analysis-<name>.lease``: different analyses of a shard never wait for each other.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from randstruct.errors import named_line
from randstruct.store.lock import process_alive

LEASE = ".lease"  # suffix: shards/<k>.lease beside the folder, which must start empty
BEAT = 2.0
TTL = 60.0


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # absent, or caught between write and rename
        return None


class ShardLease:
    """Exclusive right of this process to write one shard folder (a context manager)."""

    def __init__(self, folder: str | Path, purpose: str, ttl: float = TTL, beat: float = BEAT, poll: float = 0.5):
        folder = Path(folder)
        self.path = folder.with_name(folder.name + LEASE)
        self.purpose, self.ttl, self.beat, self.poll = purpose, ttl, beat, poll
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "purpose": purpose,
                   "token": uuid.uuid4().hex, "beat": 0}
        self.taken_over: dict | None = None  # the stale lease this one replaced, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{self.me['token']}.tmp")
        tmp.write_text(json.dumps(self.me))
        os.replace(tmp, self.path)

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(self.me))
        return True

    def _stale(self, held: dict, seen: dict) -> bool:
        if held.get("host") == self.me["host"] and not process_alive(int(held.get("pid", -1))):
            return True
        key = json.dumps(held, sort_keys=True)
        first = seen.setdefault(key, time.monotonic())
        return time.monotonic() - first > self.ttl

    def acquire(self) -> "ShardLease":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        seen: dict[str, float] = {}
        while True:
            if self._create():
                break
            held = _read(self.path)
            if held is not None and self._stale(held, seen):
                self._write()
                time.sleep(min(self.poll, 0.2))  # another taker may have written at the same moment
                if (_read(self.path) or {}).get("token") == self.me["token"]:
                    self.taken_over = held
                    break
            time.sleep(self.poll)
        self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="randstruct-lease")
        self._thread.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.beat):
            if (_read(self.path) or {}).get("token") != self.me["token"]:
                return  # taken over (we looked dead); the new holder owns the folder now
            self.me["beat"] += 1
            self._write()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if (_read(self.path) or {}).get("token") == self.me["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "ShardLease":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def task_failure(what: str, err: BaseException) -> str:
    """The client's message for a shard task that raised on a worker or whose workers kept dying."""
    if type(err).__name__ == "KilledWorker":
        return (f"{what}: every worker that ran it died (out of memory or killed?); finished shards are kept, "
                f"rerun with --resume")
    return f"{what} failed on a worker: {named_line(err)}; finished shards are kept, rerun with --resume"
