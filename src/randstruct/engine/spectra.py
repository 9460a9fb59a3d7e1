"""Spectra of batches of matrices, cheap enough to take at every recorded epoch.

Full singular spectra of 1024 x 1024 matrices at every epoch of 150 networks would cost hours on a
CPU, while the learned dW has a handful of relevant singular values. ``SubspaceTracker`` follows
the top singular subspace with a few warm-started block power iterations per call: dW changes
little between records, so the previous subspace is an excellent start and one or two iterations
keep the leading singular values at full float precision.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch

from randstruct.errors import UserInputError


def leading_eigenvalues(w: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Eigenvalues of each (E, N, N) matrix sorted by real part, then imaginary part, descending."""
    ev = torch.linalg.eigvals(w)
    order = _lexsort_desc(ev.real, ev.imag)
    ev = torch.gather(ev, -1, order)
    return ev if k is None else ev[..., :k]


def _lexsort_desc(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """Indices sorting by ``primary`` descending, ties broken by ``secondary`` descending."""
    by_secondary = torch.argsort(secondary, dim=-1, descending=True, stable=True)
    prim = torch.gather(primary, -1, by_secondary)
    return torch.gather(by_secondary, -1, torch.argsort(prim, dim=-1, descending=True, stable=True))


class SubspaceTracker:
    """Top-``k`` singular values of a slowly changing batch of matrices (E, N, N).

    Keeps p >= k orthonormal right vectors per matrix; each call runs ``iterations``
    block power steps (A A^T) from the previous subspace, then a Rayleigh-Ritz step (the exact
    singular values of the small (N, p) matrix A Q).
    """

    def __init__(self, k: int, start: torch.Tensor, iterations: int = 2):
        """``start`` (E, N, p) with p >= k spans the initial guess (random is fine)."""
        if start.shape[-1] < k:
            raise UserInputError(f"the start subspace needs at least k = {k} columns, got {start.shape[-1]}")
        self.k = k
        self.q = torch.linalg.qr(start).Q
        self.iterations = iterations

    def __call__(self, a: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Top-k singular values of ``a`` (descending); ``members`` selects rows of the state."""
        q = self.q if members is None else self.q[members]
        for _ in range(self.iterations):
            y = torch.linalg.qr(torch.bmm(a, q)).Q
            q = torch.linalg.qr(torch.bmm(a.transpose(1, 2), y)).Q
        sv = torch.linalg.svdvals(torch.bmm(a, q))
        if members is None:
            self.q = q
        else:
            self.q[members] = q
        return sv[:, : self.k]


class HostSingularValues:
    """Full singular spectra of a batch of device matrices, computed on host threads.

    cuSOLVER takes a batch of small matrices one after another, so full spectra at every record
    would dominate a GPU run (docs/performance.md). Here the matrices are copied to pinned
    host memory asynchronously and split over worker threads, while the device trains on.
    """

    def __init__(self, workers: int | None = None):
        self.workers = workers or max(1, min(8, os.cpu_count() or 1))
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="randstruct-spectra")
        self.pending: list = []

    def submit(self, m: torch.Tensor, done: Callable[[slice, np.ndarray], None]) -> None:
        """Start the singular values of each matrix of ``m`` (E, N, N); ``done(rows, values)``
        receives them (descending) for each block of rows, on a worker thread."""
        if m.device.type == "cuda":
            host = torch.empty(m.shape, dtype=m.dtype, pin_memory=True)
            host.copy_(m, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
        else:
            host, ready = m.clone(), None
        size = -(-len(host) // self.workers)
        for start in range(0, len(host), size):
            rows = slice(start, start + size)
            self.pending.append(self.pool.submit(self._job, host[rows], ready, rows, done))

    @staticmethod
    def _job(chunk: torch.Tensor, ready, rows: slice, done) -> None:
        if ready is not None:
            ready.synchronize()
        done(rows, torch.linalg.svdvals(chunk).numpy())

    def wait(self) -> None:
        """Block until every submitted spectrum has been delivered (re-raising a worker's error)."""
        pending, self.pending = self.pending, []
        for fut in pending:
            fut.result()

    def close(self) -> None:
        self.wait()
        self.pool.shutdown(wait=True)
