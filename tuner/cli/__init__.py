"""The `tuner` command: one module per subcommand; only this package prints and exits."""

from __future__ import annotations

from tuner.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
