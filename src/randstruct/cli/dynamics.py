"""``randstruct dynamics``: fixed points, outlier eigenvalues and alignment of a trained run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from randstruct.cli.common import UsageError, check_writable, parse_floats


def register(sub) -> None:
    d = sub.add_parser("dynamics", help="fixed points of W, W0 + dW_r and shuffled W0 + dW; outlier eigenvalues; "
                                        "alignment of dW with the theory's directions",
                       description="Find the fixed points of every network of a run in one batched search (from "
                                   "states on its own task trajectories), read them in dW's singular coordinates, "
                                   "track outlier eigenvalues of W over the recorded epochs and the alignment of dW's "
                                   "singular vectors; store it all in the run (idempotent) and draw a figure. The truncated "
                                   "variant needs the functional rank of 'randstruct analyze RUN'.")
    d.add_argument("run", help="run directory")
    d.add_argument("--inputs", default=None, metavar="U[;U...]",
                   help="constant inputs, each N_in comma-separated numbers, separated by ';' (default: zero input)")
    d.add_argument("--inits", type=int, default=256, help="initial states per network and input; default 256")
    d.add_argument("--seed", type=int, default=0, help="seed of the trials and picked initial states; default 0")
    d.add_argument("--trunc-rank", type=int, default=None, metavar="R",
                   help="rank r of the truncated variant W0 + dW_r for every network; default: each network's "
                        "functional rank (from 'randstruct analyze'; n/a where it has none)")
    d.add_argument("--figure", default=None, help="figure path (.png; default RUN/dynamics.png)")
    d.add_argument("--force", action="store_true", help="recompute even if stored with the same parameters")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(handler=cmd_dynamics)


def cmd_dynamics(a: argparse.Namespace) -> int:
    from randstruct.dynamics.plot import figure
    from randstruct.dynamics.plugin import dynamics_run
    from randstruct.dynamics.summary import format_dynamics
    from randstruct.runs import load

    if a.inits < 1:
        raise UsageError(f"--inits must be >= 1, got {a.inits}")
    if a.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {a.seed}")
    if a.trunc_rank is not None and a.trunc_rank < 0:
        raise UsageError(f"--trunc-rank must be >= 0, got {a.trunc_rank}")
    inputs = None if a.inputs is None else [parse_floats(part, "--inputs") for part in a.inputs.split(";")]
    run = load(a.run)
    path = check_writable(Path(a.figure) if a.figure else run.path / "dynamics.png", "--figure")
    if "weights" not in run.data:
        print("note: the run recorded no weights (train with --record-weights): outlier eigenvalues and alignment "
              "are for the final W only")
    if a.trunc_rank is not None and a.trunc_rank > run.spec.n:
        raise UsageError(f"--trunc-rank must be <= N = {run.spec.n}, got {a.trunc_rank}")
    if "functional_rank" not in run.data and a.trunc_rank is None:
        print(f"note: {run.path} has no functional rank yet: the truncated variant W0 + dW_r is not searched "
              f"(run 'randstruct analyze {run.path}' first for it, or pick r with --trunc-rank)")
    start = time.perf_counter()
    out = dynamics_run(run, inputs=inputs, inits=a.inits, seed=a.seed, force=a.force, progress=not a.no_progress,
                       trunc_rank=a.trunc_rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure(load(a.run), path)
    print(format_dynamics(out))
    print(f"dynamics stored in {run.path / 'additions.zarr'} ({time.perf_counter() - start:.1f} s); figure {path}")
    return 0
