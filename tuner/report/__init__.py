"""The recommendation: the best feasible settings, confirmed against the defaults, written out.

`confirmation` runs and judges the comparison, `content` decides what the report says as a
`document`, `markdown` and `html` render it, `files` writes every output.
"""

from __future__ import annotations

from tuner.recommend.confirmation import DEFAULTS, Candidate, Confirmation, Gain, candidates
from tuner.recommend.measured import MeasuredClient
from tuner.recommend.recommendation import Recommendation
from tuner.report.files import Written, write
from tuner.search.study import best_settings

__all__ = [
    "DEFAULTS",
    "Candidate",
    "Confirmation",
    "Gain",
    "MeasuredClient",
    "Recommendation",
    "Written",
    "best_settings",
    "candidates",
    "write",
]
