"""Live producer load: Locust in its own process, and the stats line it writes."""

from __future__ import annotations
