"""What every verb shares: the one-line parser, the usage error and the value parsers."""

from __future__ import annotations

import argparse
import json

import numpy as np


class UsageError(Exception):
    """Bad command-line input."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message}")


def parse_floats(text: str, option: str) -> list[float]:
    """'0,0.9,1.8' or an inclusive range 'start:stop:step' such as '0:2.1:0.3'."""
    example = "expected comma-separated numbers like 0,0.9,1.8 or a range start:stop:step like 0:2.1:0.3"
    try:
        if ":" in text:
            start, stop, step = (float(p) for p in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            values = np.arange(start, stop + step / 2, step)
            return [round(float(v), 12) for v in values]
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise UsageError(f"invalid {option} value {text!r}: {example}") from None
    if not all(np.isfinite(values)):
        raise UsageError(f"invalid {option} value {text!r}: numbers must be finite")
    return values


def parse_task_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --task-param {item!r}: expected NAME=VALUE, e.g. T=100")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params
