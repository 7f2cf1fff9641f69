"""The report as data: sections of paragraphs, bullet lists, tables and pictures.

Built once by `content` and rendered twice (`markdown`, `html`), so the page and report.md
say the same thing and neither renderer has to parse the other's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Code:
    """A setting name or value, shown in a code font."""

    text: str


Inline = str | Code
Text = tuple[Inline, ...]
Cell = Inline | Text
"""A table cell: one piece of text or several."""


def text(*parts: Inline) -> Text:
    return parts


def plain(parts: Text) -> str:
    """The text without its markup (for alt texts and logs)."""
    return "".join(p.text if isinstance(p, Code) else p for p in parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Paragraph:
    text: Text


@dataclass(frozen=True, slots=True, kw_only=True)
class Bullets:
    items: tuple[Text, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Text, ...], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """A PNG beside the numbers it explains, or why it could not be drawn."""

    name: str
    caption: str
    path: Path | None
    missing: str | None = None


Block = Paragraph | Bullets | Table | Figure


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    title: Text
    blocks: tuple[Block, ...]
    lead: bool = False
    """Part of the report's first part (the recommendation), which the page sets apart."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    title: Text
    sections: tuple[Section, ...]


def table(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Table:
    """A table from cells given as one piece of text or a tuple of pieces."""
    return Table(
        header=tuple(header),
        rows=tuple(tuple(c if isinstance(c, tuple) else (c,) for c in row) for row in rows),
    )
