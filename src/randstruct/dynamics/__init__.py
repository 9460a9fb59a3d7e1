"""Dynamics after training: batched fixed points of whole ensembles, read in dW's coordinates;
outlier eigenvalues of W; alignment of dW with the linear theory's directions."""

from randstruct.dynamics.fixed_points import DEFAULTS, FixedPoints, Search, find_fixed_points, search
from randstruct.dynamics.plugin import DESCRIPTIONS, VARIABLES, Dynamics, DynamicsParams, dynamics_run

__all__ = ["DEFAULTS", "DESCRIPTIONS", "Dynamics", "DynamicsParams", "FixedPoints", "Search", "VARIABLES", "dynamics_run",
           "find_fixed_points", "search"]
