"""The one error a config can raise: every problem in it, each as `path: message`."""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(Exception):
    """The config has problems; `problems` lists each as `path: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))
