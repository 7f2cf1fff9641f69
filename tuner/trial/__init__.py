"""One trial: its phases, the window they measure, and the result they return."""

from __future__ import annotations
