"""Analyses by reference: a registered name, ``package.module:ClassName`` or an entry point of the
group ``randstruct.analyses`` (``[project.entry-points."randstruct.analyses"] name = "pkg.mod:Cls"``),
as tasks are found (tasks/registry.py).

The built-in analyses are named here by reference and imported on first use, so this module
imports none of them (the dynamics analysis itself reads the analysis package).
"""

from __future__ import annotations

from randstruct.analysis.base import Analysis, check_analysis_class
from randstruct.errors import UserInputError
from randstruct.plugins import class_reference, entry_point, entry_point_names, import_reference

ENTRY_POINTS = "randstruct.analyses"
BUILTIN = {"connectivity": "randstruct.analysis.standard:Connectivity",
           "dynamics": "randstruct.dynamics.plugin:Dynamics",
           "alignment": "randstruct.analysis.regimes:Alignment",
           "regime": "randstruct.analysis.regimes:Regime",
           "similarity": "randstruct.analysis.similarity:Similarity",
           "noise": "randstruct.analysis.noise:Noise"}
DEFAULT = ("connectivity",)  # what `randstruct analyze` computes unless told otherwise
ANALYSES: dict[str, type[Analysis]] = {}


def register_analysis(cls: type[Analysis] | None = None, *, replace: bool = False):
    """Register an Analysis subclass under its ``name``; as ``@register_analysis`` or a plain call.

    A name already taken by another class is refused unless ``replace`` (built-in names never).
    """
    def add(c: type[Analysis]) -> type[Analysis]:
        check_analysis_class(c)
        old = ANALYSES.get(c.name)
        builtin = c.name in BUILTIN and class_reference(c) != BUILTIN[c.name]
        if builtin or (old is not None and old is not c and not replace):
            where = BUILTIN[c.name] if builtin else class_reference(old)
            raise UserInputError(f"analysis name {c.name!r} is already registered to {where}"
                                 + ("" if builtin else "; pass replace=True to override"))
        ANALYSES[c.name] = c
        return c

    return add if cls is None else add(cls)


def known_analyses() -> list[str]:
    return sorted(set(BUILTIN) | set(ANALYSES) | entry_point_names(ENTRY_POINTS))


def get_analysis(ref: str) -> type[Analysis]:
    """The Analysis class behind a name or a ``module:Class`` reference (one-line ValueError if none)."""
    if isinstance(ref, type):
        return check_analysis_class(ref)
    if not isinstance(ref, str) or not ref:
        raise UserInputError(f"unknown analysis {ref!r}; allowed: {', '.join(known_analyses())} or module:Class")
    if ref in ANALYSES:
        return ANALYSES[ref]
    if ref in BUILTIN:
        return register_analysis(import_reference(BUILTIN[ref], "analysis", check_analysis_class))
    if ":" in ref:
        cls = import_reference(ref, "analysis", check_analysis_class)
        return ANALYSES.get(cls.name) if ANALYSES.get(cls.name) is cls else register_analysis(cls)
    found = entry_point(ENTRY_POINTS, ref, "analysis")
    if found is None:
        raise UserInputError(f"unknown analysis {ref!r}; allowed: {', '.join(known_analyses())} or module:Class")
    return register_analysis(check_analysis_class(found))
