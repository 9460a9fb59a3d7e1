"""The analysis plug-in contract (docs/analyses.md), checked like the task contract.

An analysis is a class with

- ``name``: what it is stored and selected under;
- ``Params``: a dataclass of its parameters with defaults (validated in its ``__post_init__``);
  the parameters are part of what "already stored" means;
- ``variables``: ``{variable: description}`` of every variable it returns (``variables_for(task)``
  may vary them with the task);
- ``compute(ensemble, task, data, params) -> xarray.Dataset``: ``ensemble`` holds the trained
  members it is given, in the run's member order, ``data`` is the run's stored Dataset for those
  members (training results and earlier analyses), and every returned variable has the ``net``
  dimension of length ``ensemble.size`` first, plus dimensions of its own.

Optional: ``requires`` (analyses whose stored variables ``compute`` reads from ``data``; run first
with their default parameters when missing), ``shardable`` (False: never cut into shards, e.g. a
result padded to the largest member) and ``identity(params, task, data)`` (the JSON-able record of
the parameters, when it should say more than the dataclass fields).

Execution options that do not change the values (a progress bar, a memory budget) are the
instance's ``progress`` and ``chunk_bytes``, set by whoever runs it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import xarray as xr

from randstruct.errors import UserInputError

DEFAULT_CHUNK_BYTES = 1 << 28


class Analysis:
    """Base of the analysis plug-ins (see the module docstring)."""

    name: ClassVar[str]
    Params: ClassVar[type]
    variables: ClassVar[dict[str, str]]
    requires: ClassVar[tuple[str, ...]] = ()
    shardable: ClassVar[bool] = True

    def __init__(self, progress: bool = False, chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        self.progress, self.chunk_bytes = progress, chunk_bytes

    def compute(self, ensemble, task, data: xr.Dataset, params) -> xr.Dataset:
        raise NotImplementedError

    def variables_for(self, task) -> dict[str, str]:
        return dict(self.variables)

    def identity(self, params, task, data: xr.Dataset) -> dict[str, Any]:
        return dataclasses.asdict(params)


def check_analysis_class(cls: Any) -> type[Analysis]:
    """``cls`` if it is an Analysis subclass that fulfils the contract, else a one-line ValueError."""
    label = getattr(cls, "__qualname__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Analysis)):
        raise UserInputError(f"{label} is not a randstruct.analysis.Analysis subclass (see docs/analyses.md)")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or ":" in name or "," in name:
        raise UserInputError(f"analysis class {label}: name must be a non-empty string without ':' or ',', "
                             f"got {name!r}")
    if not dataclasses.is_dataclass(getattr(cls, "Params", None)):
        raise UserInputError(f"analysis class {label}: Params must be a dataclass of its parameters "
                             "(see docs/analyses.md)")
    missing = [f.name for f in dataclasses.fields(cls.Params) if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserInputError(f"analysis class {label}: every parameter needs a default, {', '.join(missing)} has none")
    variables = getattr(cls, "variables", None)
    if not isinstance(variables, dict) or not variables or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in variables.items()):
        raise UserInputError(f"analysis class {label}: variables must map each returned variable to its description")
    if cls.compute is Analysis.compute:
        raise UserInputError(f"analysis class {label} does not implement compute (see docs/analyses.md)")
    return cls


def make_params(cls: type[Analysis], given: dict | None = None):
    """``cls.Params`` from keyword values; an unknown name is a one-line ValueError."""
    given = dict(given or {})
    allowed = [f.name for f in dataclasses.fields(cls.Params)]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise UserInputError(f"unknown parameter {unknown[0]!r} for analysis {cls.name!r}; allowed: "
                             f"{', '.join(allowed) or 'none'}")
    return cls.Params(**given)


def key(name: str, identity: dict) -> str:
    """What a stored variable records as its ``analysis`` attribute: name and parameters."""
    return json.dumps({"analysis": name, **identity}, sort_keys=True)


def check_output(analysis: Analysis, out: xr.Dataset, names: dict[str, str], size: int) -> None:
    """The plug-in kept its contract: exactly its variables, each with ``net`` first of the members' length."""
    label = f"analysis {analysis.name!r} ({type(analysis).__module__}.{type(analysis).__qualname__})"
    if not isinstance(out, xr.Dataset):
        raise UserInputError(f"{label}: compute must return an xarray.Dataset, got {type(out).__name__}")
    got, want = set(out.data_vars), set(names)
    if got != want:
        extra, lacking = sorted(got - want), sorted(want - got)
        raise UserInputError(f"{label}: compute returned variables that do not match its declared ones "
                             f"(missing: {', '.join(lacking) or 'none'}; undeclared: {', '.join(extra) or 'none'})")
    for name, var in out.data_vars.items():
        if not var.dims or var.dims[0] != "net" or var.shape[0] != size:
            raise UserInputError(f"{label}: variable {name!r} must have the dimension net (length {size}) first, "
                                 f"got dims {var.dims} of shape {var.shape}")
