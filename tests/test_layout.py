"""The package's shape: no module grows past what one reader holds in mind."""

from __future__ import annotations

from pathlib import Path

import tuner

MAX_LINES = 450
"""A module longer than this has more than one job: split it by what each part owns."""


def test_no_module_is_over_the_line_limit() -> None:
    root = Path(tuner.__file__).parent
    sizes = {
        str(path.relative_to(root.parent)): len(path.read_text().splitlines())
        for path in sorted(root.rglob("*.py"))
    }
    over = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert over == {}, f"modules over {MAX_LINES} lines: {over}"
