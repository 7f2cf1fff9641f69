"""report.html: the report document as one self-contained page.

Pictures are inlined as base64 data URIs and the style sheet is inline, so the page can be
mailed or attached to a ticket as a single file. Every value is escaped.
"""

from __future__ import annotations

import base64
from html import escape

from tuner.report.document import (
    Block,
    Bullets,
    Code,
    Document,
    Figure,
    Paragraph,
    Table,
    Text,
    plain,
)

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #1d232a; max-width: 1200px;
       margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em;
     margin-top: 2em; }
code { font: .92em ui-monospace, monospace; background: #f3f4f6; padding: 0 .25em;
       border-radius: 3px; }
.blocks { display: flex; flex-wrap: wrap; gap: 1em 2em; align-items: flex-start; }
.blocks > p, .blocks > ul { flex-basis: 100%; margin: 0; }
table { border-collapse: collapse; flex: 0 1 auto; }
th, td { border: 1px solid #d0d7de; padding: .3em .6em; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0; flex: 1 1 420px; max-width: 640px; }
figure img { width: 100%; height: auto; border: 1px solid #eaecef; }
figcaption { font-size: .9em; color: #57606a; }
.missing { color: #9a3412; }
section.lead { background: #f0f7ff; border: 1px solid #b6d4fe; border-radius: 6px;
               padding: 0 1em 1em; }
"""


def render(doc: Document) -> str:
    title = _text(doc.title)
    sections = "".join(
        f"<section{' class=lead' if s.lead else ''}><h2>{_text(s.title)}</h2>"
        f"<div class=blocks>{''.join(_block(b) for b in s.blocks)}</div></section>\n"
        for s in doc.sections
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(plain(doc.title))}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{title}</h1>\n{sections}</body></html>\n"
    )


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_text(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_text(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{escape(h)}</th>" for h in block.header)
        body = "".join(
            "<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in block.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return _figure(block)


def _cell(cell: Text) -> str:
    numeric = plain(cell).replace(",", "").replace(".", "").replace(" ms", "").isdigit()
    return f"<td{' class=num' if numeric else ''}>{_text(cell)}</td>"


def _figure(figure: Figure) -> str:
    if figure.path is None:
        why = escape(figure.missing or "not drawn")
        return f"<p class=missing>No picture {escape(figure.name)}: {why}</p>"
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    return (
        f"<figure><img alt='{escape(figure.caption)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
    )


def _text(parts: Text) -> str:
    return "".join(
        f"<code>{escape(p.text)}</code>" if isinstance(p, Code) else escape(p) for p in parts
    )
