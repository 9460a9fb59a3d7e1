"""The ``randstruct`` command: the parser of every verb and the one place errors become exit codes.

The policy is :mod:`randstruct.errors`: a failure of the user's input, code, files, machine or
environment is one line ``randstruct: error: ...`` with exit code 2 (before anything on disk is
touched); anything else is a bug in randstruct: exit 1, one line, the traceback in a log file.
"""

from __future__ import annotations

import signal
import sys
import threading

from randstruct.version import __version__
from randstruct.cli import bench, dynamics, paper, plot, runs, theory, train
from randstruct.cli.common import Parser
from randstruct.errors import report
from randstruct.paper.sentiment import cli as sentiment_cli

VERBS = (train, runs, plot, dynamics, paper, bench, theory)


def build_parser() -> Parser:
    p = Parser(prog="randstruct", description="Train ensembles of RNNs and dissect the low-rank structure learning adds.")
    p.add_argument("--version", action="version", version=f"randstruct {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.register(sub)
    sentiment_cli.add_parser(sub).set_defaults(handler=sentiment_cli.run)
    return p


# what to do after an interruption, per verb: train and experiment resume; analyze starts over
# (its store update is atomic and nothing partial is kept), the rest simply runs again
AFTER_INTERRUPT = {
    "train": "continue with the same command plus --resume",
    "experiment": "run the same command again: completed runs are reused, interrupted ones resumed",
    "reproduce": "run the same command again: completed runs are reused, interrupted ones resumed",
    "analyze": "the run is unchanged; run the same analyze command again",
}


def _terminated(signum, frame):  # SIGTERM unwinds like Ctrl-C: locks released, staged files left unused
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = None
    previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except KeyboardInterrupt:
        verb = getattr(args, "command", None)
        print(f"randstruct: interrupted; {AFTER_INTERRUPT.get(verb, 'run the same command again')}", file=sys.stderr)
        return 130
    except Exception as err:
        return report(err, "randstruct", f"randstruct {__version__}, argv {sys.argv if argv is None else argv}")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
