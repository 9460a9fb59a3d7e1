"""Dynamics after training: batched fixed points of whole ensembles, read in dW's coordinates;
outlier eigenvalues of W; alignment of dW with the linear theory's directions."""

from randstruct.dynamics.fixed_points import DEFAULTS, FixedPoints, Search, find_fixed_points, search
from randstruct.dynamics.run import DESCRIPTIONS, VARIABLES, dynamics, dynamics_run

__all__ = ["DEFAULTS", "DESCRIPTIONS", "FixedPoints", "Search", "VARIABLES", "dynamics", "dynamics_run",
           "find_fixed_points", "search"]
