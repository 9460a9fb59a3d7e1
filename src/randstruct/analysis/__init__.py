"""Analyses of trained networks, as plug-ins (docs/analyses.md).

The standard plug-in, ``connectivity`` (analysis/standard.py, SPEC 3.2, 10.6-10.8, 11.6): rank
truncation, W0 shuffles, spectra, functional rank and convergence epoch. Every loss is an
ensemble evaluation: the (network, rank) and (network, shuffle) pairs become the members of one
:class:`~randstruct.engine.model.Ensemble` -- the network's final input/output weights, bias and
initial state with a modified recurrent matrix -- evaluated in memory-bounded chunks through
:meth:`Ensemble.loss`. Recurrent matrices are built in float64 from one SVD per network and
rounded once to the run's precision, so a full-rank truncation reproduces W exactly.

Evaluation sets (``eval_policy``):

- ``"fixed"`` (default): one set of ``eval_trials`` trials per network, drawn from
  ``member_rng(seed, g, "eval")`` and shared by every evaluation of that network, so truncation
  curves carry no batch noise. A documented deviation from the paper (SPEC 10.8).
- ``"fresh"``: the paper's policy, a new set for every evaluation, from
  ``member_rng(seed, g, "eval", code, index)`` with ``code`` from ``EVAL_CODES`` and ``index`` the
  rank or shuffle number. Keys never end in a bare 0 after the stream name: SeedSequence pads
  short entropy with zeros, so ``("eval", 0)`` would repeat the fixed set.

Shuffle k of variant v draws from ``member_rng(seed, g, "shuffle", SHUFFLE_CODES[v], k)``.
"""

from randstruct.analysis.apply import (analyze, analyze_run, compute, requests, run_analyses, run_analyses_many,
                                       store_analysis, stored, stored_analysis)
from randstruct.analysis.base import Analysis
from randstruct.analysis.connectivity import (SHUFFLE_CODES, SHUFFLE_VARIANTS, connectivity_spectra,
                                              convergence_epoch, functional_rank, shuffle_w0, sv_stats)
from randstruct.analysis.evaluation import (EVAL_CODES, EVAL_POLICIES, eval_batch, final_losses, shuffle_losses,
                                            truncation_losses)
from randstruct.analysis.registry import ANALYSES, DEFAULT, get_analysis, known_analyses, register_analysis
from randstruct.analysis.standard import DESCRIPTIONS, VARIABLES

__all__ = ["ANALYSES", "Analysis", "DEFAULT", "DESCRIPTIONS", "EVAL_CODES", "EVAL_POLICIES", "SHUFFLE_CODES",
           "SHUFFLE_VARIANTS", "VARIABLES", "analyze", "analyze_run", "compute", "connectivity_spectra",
           "convergence_epoch", "eval_batch", "final_losses", "functional_rank", "get_analysis", "known_analyses",
           "register_analysis", "requests", "run_analyses", "run_analyses_many", "shuffle_losses", "shuffle_w0",
           "store_analysis", "stored", "stored_analysis", "sv_stats", "truncation_losses"]
