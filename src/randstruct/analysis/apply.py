"""Running analysis plug-ins on runs: compute, label, store once per (name, parameters).

Every stored variable records its plug-in and parameters in its ``analysis`` attribute (JSON), so
a request whose variables are all stored under the same record computes nothing; one whose
parameters changed replaces them. Where the work runs is the caller's choice: an executor object
(``randstruct.executors``) with ``compute_analyses(items, device, progress)``, or this process.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Iterable

import torch
import xarray as xr

from randstruct import store
from randstruct.analysis.base import DEFAULT_CHUNK_BYTES, Analysis, check_output, key, make_params
from randstruct.analysis.registry import DEFAULT, get_analysis
from randstruct.engine.device import check_device
from randstruct.errors import UserInputError, owner, user_code
from randstruct.runs import Run, load

Request = tuple  # (Analysis subclass, its Params instance)


def requests(analyses: Iterable[str | type] | None = None, params: dict | None = None) -> list[Request]:
    """(class, Params) of each named analysis (default: ``DEFAULT``); ``params`` maps a name to its
    keyword values. A name given twice counts once."""
    classes = [get_analysis(a) for a in (DEFAULT if analyses is None else analyses)]
    classes = list(dict.fromkeys(classes))
    params = dict(params or {})
    unknown = sorted(set(params) - {c.name for c in classes})
    if unknown:
        raise UserInputError(f"parameters given for {unknown[0]!r}, which is not among the analyses asked for "
                             f"({', '.join(c.name for c in classes)})")
    return [(c, make_params(c, params.get(c.name))) for c in classes]


def resolve_device(run: Run, device: str | None) -> str:
    """``device``, checked; by default the run's own device where this machine has it, else the CPU."""
    if device is not None:
        check_device(device)
        return device
    device = run.spec.device
    return device if torch.cuda.is_available() or not device.startswith("cuda") else "cpu"


def label(analysis: Analysis, out: xr.Dataset, task, data: xr.Dataset, params) -> xr.Dataset:
    """Each variable's attributes: its description, the parameters and the ``analysis`` record."""
    names = analysis.variables_for(task)
    identity = analysis.identity(params, task, data)
    record = key(analysis.name, identity)  # as stored_key
    for name in names:
        out[name].attrs = {"description": names[name], **identity, "analysis": record, **out[name].attrs}
    return out[list(names)]


def compute(run: Run, request: Request, device: str = "cpu", progress: bool = False,
            chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> xr.Dataset:
    """The labelled variables of one analysis of the members ``run.data`` holds; writes nothing."""
    cls, params = request
    analysis = cls(progress=progress, chunk_bytes=chunk_bytes)
    task, ens = run.task(), run.ensemble("final", device=device)
    with user_code(owner(cls, "analysis")):  # a user's plug-in failing is named as such
        out = analysis.compute(ens, task, run.data, params)
    check_output(analysis, out, analysis.variables_for(task), ens.size)
    return label(analysis, out, task, run.data, params)


def stored_key(run: Run, request: Request) -> str:
    """The ``analysis`` record the variables of ``request`` carry once stored."""
    cls, params = request
    return key(cls.name, cls().identity(params, run.task(), run.data))


def stored(run: Run, request: Request) -> xr.Dataset | None:
    """The stored variables of ``request`` if every one was computed with these parameters, else None."""
    cls, params = request
    analysis, task, data = cls(), run.task(), run.data
    record = stored_key(run, request)
    names = list(analysis.variables_for(task))
    if not all(name in data and data[name].attrs.get("analysis") == record for name in names):
        return None
    out = data[names]
    out.attrs = {}  # the run's own attributes stay with the run
    return out


def _with_requirements(run: Run, wanted: list[Request]) -> list[Request]:
    """``wanted`` preceded by the analyses they read whose variables the run lacks (default parameters)."""
    out, names = [], {cls.name for cls, _ in wanted}
    for cls, _ in wanted:
        for need in cls.requires:
            dep = get_analysis(need)
            if need not in names and not all(v in run.data for v in dep.variables):
                out.append((dep, make_params(dep)))
                names.add(need)
    return out + wanted


def _waves(todo: list[Request]) -> list[list[Request]]:
    """Consecutive requests that may be computed together: a run of analyses that read nothing of
    another, then one that does (``requires``) on its own."""
    waves: list[list[Request]] = []
    for request in todo:
        if request[0].requires or not waves or waves[-1][-1][0].requires:
            waves.append([request])
        else:
            waves[-1].append(request)
    return waves


def run_analyses_many(items: list[tuple[Run, list[Request]]], force: bool = False, progress: bool = True,
                      device: str | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                      executor=None) -> list[xr.Dataset]:
    """Analyse several runs at once (an executor may spread all their work over a cluster); per run
    the union of its requested variables. Nothing already stored with the same parameters is
    recomputed unless ``force``; each run is locked while its analyses are computed and stored."""
    results: list[list[xr.Dataset]] = [[] for _ in items]
    with ExitStack() as locks:
        todo = []
        for i, (run, wanted) in enumerate(items):
            dev = resolve_device(run, device)
            missing = []
            for request in _with_requirements(run, wanted):
                done = None if force else stored(run, request)
                if done is None:
                    missing.append(request)
                else:
                    results[i].append(done)
            if missing:
                locks.enter_context(store.run_lock(run.path, "analyze"))
                todo.append((i, run, missing, dev))
        for i, run, missing, dev in todo:
            for wave in _waves(missing):  # stored wave by wave: a later analysis may read an earlier one
                if executor is None:
                    outs = [compute(run, request, dev, progress, chunk_bytes) for request in wave]
                else:
                    outs = executor.compute_analyses([(run, wave)], dev, progress)[0]
                results[i] += [store_analysis(run, out) for out in outs]
    return [_union(parts) for parts in results]


def _union(parts: list[xr.Dataset]) -> xr.Dataset:
    """The variables of several analyses as one Dataset, each with its own attributes."""
    if not parts:
        return xr.Dataset()
    out = parts[0] if len(parts) == 1 else xr.merge(parts, combine_attrs="override", compat="override")
    out.attrs = {}
    return out


def run_analyses(run_or_path: Run | str | Path, analyses: Iterable[str | type] | None = None,
                 params: dict | None = None, force: bool = False, progress: bool = True,
                 device: str | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES, executor=None) -> xr.Dataset:
    """Compute the ``analyses`` (names, ``module:Class`` references or classes; default: the
    standard set) of a run with ``params`` ({name: {parameter: value}}) and store them beside its
    results; returns their variables. See :func:`run_analyses_many`."""
    wanted = requests(analyses, params)  # bad names and parameters first, before the run is read
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    return run_analyses_many([(run, wanted)], force, progress, device, chunk_bytes, executor)[0]


def store_analysis(run: Run, out: xr.Dataset) -> xr.Dataset:
    """Write the variables ``out`` beside ``run``'s results (hold its lock) and refresh ``run.data``.

    They go to the run's additions store, swapped in whole (store.add_results): an interruption
    leaves the previous analysis readable and never touches the training arrays. Stored variables
    of the same names, or on a dimension whose size changed, are replaced."""
    store.add_results(run.path, out)
    run.data = store.open_results(run.path)
    return out


# ----------------------------------------------------------------------- the standard analysis
def _standard(ranks, shuffles, eval_trials, eval_policy, threshold) -> Request:
    cls = get_analysis("connectivity")
    return cls, make_params(cls, {"ranks": ranks, "shuffles": shuffles, "eval_trials": eval_trials,
                                  "eval_policy": eval_policy, "threshold": threshold})


def analyze(run: Run, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512, eval_policy: str = "fixed",
            threshold: float = 0.05, progress: bool = True, device: str | None = None,
            chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> xr.Dataset:
    """The standard (``connectivity``) analysis of ``run`` as one labelled Dataset; writes nothing."""
    request = _standard(ranks, shuffles, eval_trials, eval_policy, threshold)
    return compute(run, request, resolve_device(run, device), progress, chunk_bytes)


def stored_analysis(run_or_path: Run | str | Path, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512,
                    eval_policy: str = "fixed", threshold: float = 0.05) -> xr.Dataset | None:
    """The stored standard analysis if every variable was computed with these parameters, else None."""
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    return stored(run, _standard(ranks, shuffles, eval_trials, eval_policy, threshold))


def analyze_run(run_or_path: Run | str | Path, ranks: int = 25, shuffles: int = 10, eval_trials: int = 512,
                eval_policy: str = "fixed", threshold: float = 0.05, force: bool = False,
                progress: bool = True, device: str | None = None,
                chunk_bytes: int = DEFAULT_CHUNK_BYTES, executor=None) -> xr.Dataset:
    """Compute and store the standard analysis of a run (idempotent, see :func:`run_analyses_many`)."""
    run = run_or_path if isinstance(run_or_path, Run) else load(run_or_path)
    request = _standard(ranks, shuffles, eval_trials, eval_policy, threshold)
    return run_analyses_many([(run, [request])], force, progress, device, chunk_bytes, executor)[0]
