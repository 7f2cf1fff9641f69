"""report.md: the report document as GitHub-flavoured Markdown."""

from __future__ import annotations

from tuner.report.document import Block, Bullets, Code, Document, Figure, Paragraph, Table, Text


def render(doc: Document) -> str:
    lines = [f"# {_text(doc.title)}"]
    for section in doc.sections:
        lines += ["", f"## {_text(section.title)}"]
        for block in section.blocks:
            lines += ["", *_block(block)]
    return "\n".join(lines) + "\n"


def _block(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        return [_text(block.text)]
    if isinstance(block, Bullets):
        return [f"- {_text(item)}" for item in block.items]
    if isinstance(block, Table):
        return [
            _row(block.header),
            "|" + "---|" * len(block.header),
            *(_row([_text(cell) for cell in row]) for row in block.rows),
        ]
    return [_figure(block)]


def _figure(figure: Figure) -> str:
    if figure.path is None:
        return f"*No picture {figure.name}: {figure.missing}*"
    return f"![{figure.caption}]({figure.name})"


def _row(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _text(parts: Text) -> str:
    return "".join(f"`{p.text}`" if isinstance(p, Code) else p for p in parts)
