"""After the study: bench runs, ablation of the best settings, and their confirmation."""

from __future__ import annotations
