"""SIGTERM handled as Ctrl-C for the `tuner` command, so every way a run is stopped cleans up."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


class SigtermAsCtrlC:
    """`with` it, SIGTERM (what `timeout`, systemd and Kubernetes send) does what Ctrl-C does:
    the SIGINT handler in force is called (asyncio's cancels the trial's task, Python's raises
    KeyboardInterrupt), so consumers, Locust and an embedded broker stop, and the study is
    left resumable. `received` tells the exit code apart (143, not 130)."""

    def __init__(self) -> None:
        self.received = False
        self._previous: signal.Handlers | Callable[..., object] | int | None = None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        on_sigint = signal.getsignal(signal.SIGINT)
        if callable(on_sigint):
            on_sigint(signal.SIGINT, frame)
        else:  # SIGINT ignored (started in the background by a shell): interrupt all the same
            raise KeyboardInterrupt

    def __enter__(self) -> SigtermAsCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
