"""The Optuna search: what is sampled, how a trial is scored, the stored study, shared runs."""

from __future__ import annotations
