"""The package's shape: no module grows past what one reader holds in mind, and the pipeline's
steps stay visible as subpackages instead of a flat heap of modules."""

from __future__ import annotations

from pathlib import Path

import tuner

MAX_LINES = 400
"""A module longer than this has more than one job: split it by what each part owns."""

FLAT = {"__init__.py", "children.py", "librdkafka.py", "protocol.py", "settings.py"}
"""The modules at the top of `tuner/`: what every step uses. A new module goes into the
subpackage of its step (cli, config, broker, cluster, load, consumer, metrics, trial, search,
recommend, report, advice, profile, payloads)."""

MAX_FLAT = 8
"""How many modules may sit at the top at all: past this, the top is a heap again."""


def test_no_module_is_over_the_line_limit() -> None:
    """Every module of the package is at most MAX_LINES lines long."""
    root = Path(tuner.__file__).parent
    sizes = {
        str(path.relative_to(root.parent)): len(path.read_text().splitlines())
        for path in sorted(root.rglob("*.py"))
    }
    over = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert over == {}, f"modules over {MAX_LINES} lines: {over}"


def test_only_the_shared_modules_sit_at_the_top_of_the_package() -> None:
    """The flat modules of `tuner/` are the known few; any other belongs to a step's package."""
    root = Path(tuner.__file__).parent
    flat = {path.name for path in root.glob("*.py")}
    assert len(flat) <= MAX_FLAT, f"{len(flat)} flat modules (at most {MAX_FLAT}): {sorted(flat)}"
    assert flat == FLAT, f"new flat modules {sorted(flat - FLAT)}, gone {sorted(FLAT - flat)}"
