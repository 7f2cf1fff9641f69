"""`tuner profile`: a study config from what a consumer group already exports.

From `tuner run --json` results (`from_runs`) or a live Prometheus (`from_prometheus`), our
metric names or the Java client's: the group's shape, record size, load, and the processing
model (`cost.fit`); `render` writes it as a commented study config.
"""

from __future__ import annotations

from tuner.profile.cost import CostFit, Estimate, WorkSample, fit
from tuner.profile.observed import Profile, ProfileError, from_runs
from tuner.profile.prometheus import from_prometheus
from tuner.profile.write import check, render

__all__ = [
    "CostFit", "Estimate", "Profile", "ProfileError", "WorkSample", "check", "fit",
    "from_prometheus", "from_runs", "render",
]  # fmt: skip
