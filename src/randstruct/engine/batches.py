"""Training batches: one fresh batch per member per epoch, each from the member's own random stream.

On a CPU a batch is made when it is needed (a percent of an epoch). On an accelerator an epoch
of a large ensemble takes milliseconds and making its batch on the training thread would be the
bottleneck, so :class:`Prefetcher` makes batches ahead in worker processes: the members are split
between the workers, each worker owns its members' generators and writes their share of every
batch into shared memory. Processes, not threads: the draws are many small Python calls, and
threads that share the interpreter lock with the training thread starve each other.
"""

from __future__ import annotations

import collections
import os
import traceback
from collections.abc import Sequence

import numpy as np
import torch
import torch.multiprocessing as mp

from randstruct.engine.model import Ensemble, to_kernel_layout
from randstruct.engine.noise import NoiseSource
from randstruct.engine.seeding import member_rng
from randstruct.errors import Failure, UserInputError, user_code
from randstruct.errors import UserInputError
from randstruct.tasks import Batch, Task
from randstruct.tasks.base import check_values, task_owner


def batch_arrays(task: Task, batch: Batch) -> tuple[np.ndarray, ...]:
    """(inputs, targets, mask), plus the decision steps of a task with labels."""
    if not task.has_labels:
        return batch.inputs, batch.targets, batch.mask
    if batch.decision is None:
        raise UserInputError(f"task {task.name!r} has labels but its batch has no decision steps (Batch.decision)")
    return batch.inputs, batch.targets, batch.mask, batch.decision


def make_batch(task: Task, rngs: Sequence[np.random.Generator], batch_size: int, out=None,
               noise: NoiseSource | None = None, noise_rngs: Sequence[np.random.Generator] = ()):
    """(inputs, targets, mask[, decision]) for the members whose generators are ``rngs``, in kernel
    layout (E, K, B, C): each member draws its trials from its own generator, then all are built at
    once. Written into ``out`` (arrays of those shapes) when given. With ``noise``, the inputs get
    their noise and the other noise arrays follow, from the members' ``noise_rngs``."""
    owner = task_owner(task)
    with user_code(owner):
        parts = [task.draw(batch_size, rng) for rng in rngs]
        batch = task.build({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    check_values(owner, batch)
    arrays = []
    for i, a in enumerate(batch_arrays(task, batch)):
        a = a.reshape(len(rngs), batch_size, *a.shape[1:]).transpose(0, 2, 1, 3)
        if out is None:
            arrays.append(np.ascontiguousarray(a))
        else:
            out[i][...] = a
    if noise is not None:
        if out is None:
            arrays += noise.make(noise_rngs, arrays[0])
        else:
            noise.fill(noise_rngs, out[0], out[len(out) - len(noise.names()):])
    return out if out is not None else tuple(arrays)


MASK_PROBE_TRIALS = 16


def probe_task(task: Task, data: Batch | None = None) -> None:
    """Check what training will get before any of it: ``data`` (a given batch: its channels) or
    trials of the task drawn from a generator of its own, no member stream touched (their shape
    against the task's declared channels and step count). A task's own failure, a wrong shape and
    a mask that scores nothing or has negative or non-finite weights become one-line ValueErrors."""
    if data is None:
        try:  # a user's task failing is named by Task.sample (errors.user_code), a built-in one here
            probe = task.sample(MASK_PROBE_TRIALS, np.random.default_rng(0))
        except Failure:
            raise
        except Exception as err:
            raise UserInputError(f"task {task.name!r} could not make trials: {type(err).__name__}: {err}") from err
        check_shapes(task, probe, task.n_steps)
    else:
        probe = data
        check_shapes(task, data, np.shape(data.inputs)[1] if np.ndim(data.inputs) == 3 else -1)
    check_mask(task, probe, given=data is not None)


def check_mask(task: Task, data: Batch | None, given: bool | None = None) -> None:
    """Refuse training that could not change anything or a mask that is no weight: no scored entry,
    or negative or non-finite entries, in ``data`` or (None) in a probe of the task's own trials;
    ``given``: whether the caller's batch is checked (default: ``data`` is not None), for the message."""
    given = data is not None if given is None else given
    probe = data if data is not None else task.sample(MASK_PROBE_TRIALS, np.random.default_rng(0))
    mask = np.asarray(probe.mask)
    if not np.all(np.isfinite(mask)) or np.any(mask < 0):
        where = "the given batch" if given else f"task {task.name!r}"
        raise UserInputError(f"the mask of {where} has negative or non-finite entries (min {np.nanmin(mask):g}); "
                             "mask entries are weights >= 0 of the squared errors")
    if not np.any(mask):
        where = "the given batch" if given else f"{MASK_PROBE_TRIALS} trials of task {task.name!r}"
        raise UserInputError(f"the mask is zero everywhere in {where}: no step is scored, so training would change "
                             "nothing; check the task's timing parameters")


def check_shapes(task: Task, batch: Batch, k: int) -> None:
    """Refuse a batch whose arrays are not (batch, k, channels) with the task's declared channels."""
    b = np.shape(batch.inputs)[0] if np.ndim(batch.inputs) else -1
    want = {"inputs": (b, k, task.n_in), "targets": (b, k, task.n_out), "mask": (b, k, task.n_out)}
    if task.has_labels:
        want["decision"] = (b, k, 1)
    for name, shape in want.items():
        got = tuple(np.shape(getattr(batch, name)))
        if got != shape:
            raise UserInputError(f"task {task.name!r}: build() returned {name} of shape {got}, expected "
                                 f"(batch, n_steps, channels) = {shape} (n_steps = {task.n_steps}, n_in = {task.n_in}, "
                                 f"n_out = {task.n_out})")


def member_states(rngs, noise_rngs) -> list:
    """What a checkpoint holds per member: its batch generator's state, paired with its noise
    generator's state when the networks are noisy."""
    if not noise_rngs:
        return [rng.bit_generator.state for rng in rngs]
    return [(r.bit_generator.state, q.bit_generator.state) for r, q in zip(rngs, noise_rngs)]


def set_member_states(rngs, noise_rngs, states: list) -> None:
    for i, s in enumerate(states):
        if noise_rngs:
            rngs[i].bit_generator.state, noise_rngs[i].bit_generator.state = s
        else:
            rngs[i].bit_generator.state = s


class BatchStream:
    """The members' training batches in order, or one fixed batch (given data, deterministic task);
    with ``noise``, each batch carries fresh noise from the members' "noise" streams."""

    def __init__(self, task: Task, ensemble: Ensemble, batch_size: int, data: Batch | None = None,
                 noise: NoiseSource | None = None):
        self.task, self.batch_size, self.noise = task, batch_size, noise
        self.rngs = [member_rng(int(s), float(g), "train") for g, s in zip(ensemble.g, ensemble.seed)]
        self.noise_rngs = [] if noise is None else [
            member_rng(int(s), float(g), "noise") for g, s in zip(ensemble.g, ensemble.seed)]
        self.n_net, self.dtype, self.device = ensemble.size, ensemble.dtype, ensemble.device
        self._fixed = None
        probe_task(task, data)
        if data is None and not task.stochastic:
            data = task.sample(batch_size, self.rngs[0])
        if data is not None:
            self._fixed = tuple(to_kernel_layout(a, self.n_net, self.dtype, self.device)
                                for a in batch_arrays(task, data))

    @property
    def fixed(self) -> bool:
        return self._fixed is not None

    def names(self) -> list[str]:
        """What a batch holds, in order."""
        return (["inputs", "targets", "mask"] + (["decision"] if self.task.has_labels else [])
                + ([] if self.noise is None else self.noise.names()))

    def shapes(self) -> list[tuple[int, ...]]:
        """Kernel-layout shapes of the arrays of :meth:`names`."""
        k, t = self.task.n_steps, self.task
        channels = (t.n_in, t.n_out, t.n_out) + ((1,) if t.has_labels else ())
        noise = [] if self.noise is None else self.noise.shapes(self.n_net, k, self.batch_size)
        return [(self.n_net, k, self.batch_size, c) for c in channels] + noise

    def next(self) -> tuple[torch.Tensor, ...]:
        """The arrays of :meth:`names` on the networks' device in kernel layout (E, K, B, C)."""
        if self._fixed is not None and self.noise is None:
            return self._fixed
        if self._fixed is not None:  # the fixed trials with fresh noise
            inputs = self._fixed[0].cpu().numpy().copy()
            noise = self.noise.make(self.noise_rngs, inputs)
            arrays = (inputs, *self._fixed[1:], *noise)
        else:
            arrays = make_batch(self.task, self.rngs, self.batch_size, noise=self.noise, noise_rngs=self.noise_rngs)
        return tuple(torch.as_tensor(a, dtype=self.dtype, device=self.device) for a in arrays)

    def state(self) -> list:
        return member_states(self.rngs, self.noise_rngs)

    def set_state(self, states: list) -> None:
        set_member_states(self.rngs, self.noise_rngs, states)


def _generator(state: dict) -> np.random.Generator:
    rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
    rng.bit_generator.state = state
    return rng


def _work(task: Task, states: list, batch_size: int, slots, lo: int, hi: int, conn,
          noise: NoiseSource | None = None) -> None:
    """Worker process: members lo..hi-1 of every batch, on request, into the shared slots."""
    if noise is None:
        rngs, noise_rngs = [_generator(s) for s in states], []
    else:
        rngs, noise_rngs = [_generator(s) for s, _ in states], [_generator(q) for _, q in states]
    views = [[t[lo:hi].numpy() for t in slot] for slot in slots]
    while True:
        command, arg = conn.recv()
        if command == "stop":
            return
        try:
            if command == "seek":
                set_member_states(rngs, noise_rngs, arg)
                conn.send(("ok", None))
            else:
                make_batch(task, rngs, batch_size, out=views[arg], noise=noise, noise_rngs=noise_rngs)
                conn.send(("ok", member_states(rngs, noise_rngs)))
        except Failure as err:  # the user's task failed: the trainer re-raises the policy's error as is
            conn.send(("failure", err))
        except Exception:  # a bug: the trainer re-raises it with the worker's traceback
            conn.send(("error", traceback.format_exc()))


def _context():
    # fork: no re-import of the user's script (spawn and forkserver run it again in every worker,
    # which breaks scripts without a __main__ guard), and the shared slots are simply inherited.
    # The workers touch neither CUDA nor BLAS threads, the usual hazards of forking a trainer.
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def can_start_workers() -> bool:
    """Whether this process may start worker processes (a daemonic one, e.g. a Dask worker, may not)."""
    return not mp.current_process().daemon


class Prefetcher:
    """Batches made ``depth`` epochs ahead by worker processes, each owning a share of the members.

    Every member's generator lives in one worker and advances batch by batch, so every member
    sees the same random stream as without prefetching. :meth:`state` is the generators' state
    after the last batch handed out (what a checkpoint must hold), not after the last one made.
    """

    def __init__(self, stream: BatchStream, depth: int = 4, workers: int | None = None):
        if stream.fixed:
            raise UserInputError("a fixed batch needs no prefetching")
        for name, value in (("depth", depth), ("workers", workers)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserInputError(f"{name} must be an integer >= 1, got {value!r}")
        self.stream, self.depth = stream, depth
        n_net = stream.n_net
        workers = min(n_net, workers or _default_workers())
        self.slots = [tuple(torch.empty(s, dtype=stream.dtype).share_memory_() for s in stream.shapes())
                      for _ in range(depth)]
        bounds = np.linspace(0, n_net, workers + 1).round().astype(int)
        self.ranges = list(zip(bounds[:-1], bounds[1:]))
        states = stream.state()
        self.conns, self.procs = [], []
        ctx = _context()
        for lo, hi in self.ranges:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_work, daemon=True, name="randstruct-batches",
                               args=(stream.task, states[lo:hi], stream.batch_size, self.slots, lo, hi, theirs,
                                     stream.noise))
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        self.pending: collections.deque[int] = collections.deque()
        self.free = collections.deque(range(depth))
        self._after = states  # the generators after the last batch handed out
        self._broken = False

    def _replies(self) -> list:
        """One reply from every worker, in member order; a failure breaks the prefetcher for good."""
        out, failure = [], None
        for conn, proc in zip(self.conns, self.procs):
            try:
                status, value = conn.recv()
            except EOFError:
                status, value = "error", f"worker {proc.name} (pid {proc.pid}) died, exit code {proc.exitcode}"
            if status != "ok" and failure is None:
                failure = status, value
            out.append(value)
        if failure is not None:
            self._broken = True
            if failure[0] == "failure":
                raise failure[1]
            raise RuntimeError(f"making a training batch failed in a worker process:\n{failure[1]}")
        return out

    def _check(self) -> None:
        if self._broken:
            raise RuntimeError("an earlier batch failed in a worker process; this prefetcher is unusable")

    def _drain(self) -> None:
        """Wait for the batches in flight and return their slots unused."""
        while self.pending:
            self._replies()
            self.free.append(self.pending.popleft())

    def _fill(self) -> None:
        self._check()
        while self.free:
            slot = self.free.popleft()
            for conn in self.conns:
                conn.send(("make", slot))
            self.pending.append(slot)

    def next(self) -> tuple[torch.Tensor, ...]:
        """The next batch as host tensors in kernel layout (pinned when CUDA is available), owned
        by the caller: the shared slot is handed back to the workers at once."""
        self._fill()
        slot = self.pending.popleft()
        self._after = [s for part in self._replies() for s in part]
        pin = torch.cuda.is_available()
        batch = tuple(torch.empty(t.shape, dtype=t.dtype, pin_memory=pin).copy_(t) for t in self.slots[slot])
        self.free.append(slot)
        self._fill()
        return batch

    def state(self) -> list[dict]:
        """The generators' state after the last batch handed out."""
        return list(self._after)

    def reset(self, states: list[dict]) -> None:
        """Drop the batches made ahead and restart every generator from ``states``."""
        self._check()
        self._drain()
        for conn, (lo, hi) in zip(self.conns, self.ranges):
            conn.send(("seek", states[lo:hi]))
        self._replies()
        self._after = list(states)

    def close(self) -> None:
        """Stop the workers; the stream's own generators continue where the handed-out batches end."""
        if not self.procs:
            return
        try:
            if not self._broken:
                self._drain()
        finally:
            self.stream.set_state(self._after)
            for conn in self.conns:
                try:
                    conn.send(("stop", None))
                except (BrokenPipeError, OSError):
                    pass
            for proc in self.procs:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
            for conn in self.conns:
                conn.close()
            self.procs, self.conns = [], []


def _default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) // 2))
