"""The ``randstruct`` command: the parser of every verb and the one place errors become exit codes.

Every error a user can cause is reported as one line ``randstruct: error: ...`` with exit code 2,
before anything on disk is touched.
"""

from __future__ import annotations

import sys

from randstruct import __version__
from randstruct.cli import bench, dynamics, paper, plot, runs, theory, train
from randstruct.cli.common import UsageError, Parser
from randstruct.paper.sentiment import cli as sentiment_cli
from randstruct.store import RunError

VERBS = (train, runs, plot, dynamics, paper, bench, theory)


def build_parser() -> Parser:
    p = Parser(prog="randstruct", description="Train ensembles of RNNs and dissect the low-rank structure learning adds.")
    p.add_argument("--version", action="version", version=f"randstruct {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.register(sub)
    sentiment_cli.add_parser(sub).set_defaults(handler=sentiment_cli.run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except (UsageError, RunError, ValueError) as err:
        print(f"randstruct: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("randstruct: interrupted; continue with the same command plus --resume", file=sys.stderr)
        return 130
