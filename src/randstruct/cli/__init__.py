"""Command-line interface: one module per verb, each a thin layer over the library."""

from randstruct.cli.common import Parser, UsageError, parse_floats, parse_task_params
from randstruct.cli.main import build_parser, main

__all__ = ["Parser", "UsageError", "build_parser", "main", "parse_floats", "parse_task_params"]
