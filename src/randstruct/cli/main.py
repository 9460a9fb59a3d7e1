"""The ``randstruct`` command: the parser of every verb and the one place errors become exit codes.

Every error a user can cause is reported as one line ``randstruct: error: ...`` with exit code 2,
before anything on disk is touched.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import traceback

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
    except (UsageError, RunError, ValueError) as err:
        print(f"randstruct: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        verb = getattr(args, "command", None)
        print(f"randstruct: interrupted; {AFTER_INTERRUPT.get(verb, 'run the same command again')}", file=sys.stderr)
        return 130
    except MemoryError:
        print("randstruct: error: out of memory; use fewer networks, a smaller N, shorter trials or a smaller batch",
              file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line for the user, the traceback in a log file
        log = _log_traceback()
        print(f"randstruct: internal error (a bug, please report it): {type(err).__name__}: {one_line(err)}; "
              f"details in {log}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _log_traceback() -> str:
    fd, path = tempfile.mkstemp(prefix="randstruct-error-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"randstruct {__version__}, argv {sys.argv}\n")
        traceback.print_exc(file=f)
    return path
