"""The report's advisor section: the defaults' findings beside the recommendation's."""

from __future__ import annotations

from tuner.advice import Finding, StudyAdvice
from tuner.recommend.measured import MeasuredClient
from tuner.report.document import Block, Bullets, Cell, Code, Paragraph, Section, table, text


def _cell(finding: Finding | None) -> str:
    return "—" if finding is None else f"{finding.severity.value}: {finding.title}"


def section(advice: StudyAdvice, measured: MeasuredClient | None = None) -> Section:
    """One row per finding code on either side; then the recommendation's findings in full
    (the defaults are the `measured` client's, aiokafka's when None)."""
    defaults = {f.code: f for f in advice.defaults}
    chosen = {f.code: f for f in advice.recommended}
    codes = sorted({*defaults, *chosen})
    blocks: list[Block] = []
    if not codes:
        blocks.append(Paragraph(text=text("No finding for the defaults or the recommendation.")))
        return Section(title=text("What the advisor says"), blocks=tuple(blocks))
    blocks.append(
        Paragraph(
            text=text(
                "The advisor's findings (",
                Code("tuner advise"),
                f") for {(measured or MeasuredClient()).client}'s defaults with your fixed "
                "settings, "
                "and for the recommendation, "
                "each from the config's workload and the runs measured with those settings:",
            )
        )
    )
    rows: list[list[Cell]] = [
        [Code(code), (defaults.get(code) or chosen[code]).rule,
         _cell(defaults.get(code)), _cell(chosen.get(code))]
        for code in codes
    ]  # fmt: skip
    blocks.append(table(["code", "rule", "defaults", "recommendation"], rows))
    if advice.recommended:
        blocks.append(Paragraph(text=text("The recommendation's findings in full:")))
        blocks.append(
            Bullets(
                items=tuple(
                    text(
                        f"{f.severity.value} ",
                        Code(f.code),
                        f" {f.title}: {f.arithmetic}. {f.semantics} Change: {f.change}.",
                    )
                    for f in advice.recommended
                )
            )
        )
    return Section(title=text("What the advisor says"), blocks=tuple(blocks))
