"""``randstruct theory check``: random-matrix identities of the linear theory at finite N."""

from __future__ import annotations

import argparse
import math

from randstruct.cli.common import UsageError, Parser, parse_floats


def register(sub) -> None:
    th = sub.add_parser("theory", help="linear theory tools")
    th_sub = th.add_subparsers(dest="theory_command", required=True, parser_class=Parser)
    chk = th_sub.add_parser("check", help="Monte-Carlo check of the trace identities and first-order slopes",
                            description="Draw W0 at finite N and compare the random-matrix quantities the "
                                        "theory relies on with their N -> infinity limits.")
    chk.add_argument("--N", type=int, default=1000, help="network size; default 1000")
    chk.add_argument("--g", default="0,0.3,0.6,0.9", help="gains (< 1); default 0,0.3,0.6,0.9")
    chk.add_argument("--seeds", type=int, default=8, help="draws per g; default 8")
    chk.add_argument("--zhat", type=float, default=0.5, help="target; default 0.5")
    chk.set_defaults(handler=cmd_theory)


def cmd_theory(a: argparse.Namespace) -> int:
    from randstruct.theory import monte_carlo_check

    if a.N < 2:
        raise UsageError(f"--N must be >= 2, got {a.N}")
    if a.seeds < 2:
        raise UsageError(f"--seeds must be >= 2 (standard errors need two draws), got {a.seeds}")
    if not math.isfinite(a.zhat):
        raise UsageError(f"--zhat must be a finite number, got {a.zhat}")
    gs = parse_floats(a.g, "--g")
    rows = monte_carlo_check(a.N, gs, a.seeds, a.zhat)
    print(f"N = {a.N}, {a.seeds} draws per g; z = (mean - theory) / SE; |z| > 3 flags a finite-N deviation")
    print(f"{'quantity':>22s} {'g':>5s} {'theory':>12s} {'mean':>12s} {'SE':>10s} {'z':>7s}")
    for r in rows:
        flag = "  <-" if abs(r["z"]) > 3 else ""
        print(f"{r['quantity']:>22s} {r['g']:5.2f} {r['theory']:12.5g} {r['mean']:12.5g} {r['se']:10.3g} "
              f"{r['z']:7.2f}{flag}")
    return 0
