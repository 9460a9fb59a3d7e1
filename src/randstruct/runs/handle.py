"""The handle of a completed run directory: its spec, task, results and networks."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
import xarray as xr

from randstruct import store
from randstruct.engine.model import Ensemble
from randstruct.errors import UserInputError
from randstruct.runs.spec import DTYPES, KIND, RunSpec
from randstruct.tasks import Task


@dataclass
class Run:
    """A completed run directory: its spec and its results as an xarray Dataset."""

    path: Path
    config: dict
    data: xr.Dataset

    @functools.cached_property
    def spec(self) -> RunSpec:
        return RunSpec.stored(self.config["spec"])

    def task(self) -> Task:
        """The run's task, built once per handle (a NeuroGym task costs gym.make and a trial); this
        needs the task's code, reading the run does not."""
        if "_task" not in self.__dict__:
            try:
                self.__dict__["_task"] = self.spec.make_task()
            except ValueError as err:
                raise UserInputError(f"{self.path} can be read without its task's code, but this needs it: "
                                     f"{err}") from None
        return self.__dict__["_task"]

    def ensemble(self, which: str = "final", device: str = "cpu", dtype: torch.dtype | None = None) -> Ensemble:
        """The stored networks as an :class:`Ensemble` (``which``: "final" or "initial")."""
        if which not in ("final", "initial"):
            raise UserInputError(f"which must be 'final' or 'initial', got {which!r}")
        ds, spec = self.data, self.spec
        dtype = dtype or DTYPES[spec.dtype]
        final = which == "final"
        ens = Ensemble.from_arrays(
            wrec=ds.w.values if final else ds.w0.values, wi=ds.wi.values if final else ds.wi0.values,
            wo=ds.wo.values if final else ds.wo0.values, b=ds.b.values if final else None,
            # the store keeps the final x0 only; the initial one is 0 or the input vector (SPEC 7.1)
            x0=ds.x0.values if final else (ds.wi0.values[:, 0] if spec.x0_from_input else None),
            w0=ds.w0.values, g=ds.g.values, seed=ds.seed.values,
            nonlinearity=spec.nonlinearity, dtype=dtype, device=device, options=spec.options)
        return ens

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, task={self.data.attrs.get('task')}, nets={self.data.sizes['net']})"


def load(path: str | Path) -> Run:
    """Open a completed run directory."""
    path = Path(path)
    config = store.read_config(path)
    if config["kind"] != KIND:
        raise store.RunError(f"{path} is a {config['kind']} run, not an RNN ensemble; "
                             f"use the {config['kind']} tools (randstruct {config['kind']} ...) for it")
    try:
        spec = RunSpec.stored(config["spec"])
    except (KeyError, TypeError, ValueError) as err:
        raise store.RunError(f"{path / store.CONFIG} holds no valid run spec ({err})") from None
    data = store.open_results(path)
    n_net = len(spec.g) * len(spec.seeds)
    if data.sizes.get("unit") != spec.n or data.sizes.get("net") != n_net:
        raise store.RunError(f"{path / store.CONFIG} does not match {path / store.RESULTS}: N = {spec.n} and "
                             f"{n_net} networks in the config, N = {data.sizes.get('unit')} and "
                             f"{data.sizes.get('net')} networks in the store")
    return Run(path, config, data)
