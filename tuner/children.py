"""Child processes that die with the tuner, and how a child's end is said in words.

A `tuner` killed with SIGKILL runs no cleanup, so its children must notice on their own: the
kernel sends them a signal when their parent dies (Linux `prctl(PR_SET_PDEATHSIG)`). Group
members ask for it themselves; a command like Locust is started through this module
(`python tuner/children.py PARENT_PID SIGNAL -- COMMAND…`), which asks for it and then execs
the command (the request survives `exec`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""


def die_with_parent(sig: int = signal.SIGTERM, *, parent: int | None = None) -> None:
    """Have the kernel send `sig` to this process when its parent exits (Linux; elsewhere
    nothing). With `parent`, a parent already gone before the request took effect (this
    process was reparented) sends `sig` now.

    The kernel means the parent *thread* that forked this process: the caller must fork its
    children from a thread that lives as long as the process (the main thread does).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal test above is all there is
    return stat.rpartition(")")[2].split()[0] != "Z"


def guarded(argv: Sequence[str], sig: int = signal.SIGTERM) -> list[str]:
    """`argv` started through this module, so the command gets `sig` if this process dies.

    The module runs as a script (it needs nothing but the standard library), so the child
    finds it wherever it starts, even where the `tuner` package is not on the path.
    """
    here = str(Path(__file__).resolve())
    return [sys.executable, "-P", here, str(os.getpid()), str(int(sig)), "--", *argv]


def describe_exit(returncode: int) -> str:
    """`exited with code 3`, or `was killed by SIGKILL` for a negative (signal) return code."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"


def _exec(args: Sequence[str]) -> None:
    parent, sig, separator, *command = args
    if separator != "--" or not command:
        raise SystemExit("usage: children.py PARENT_PID SIGNAL -- COMMAND [ARG…]")
    die_with_parent(int(sig), parent=int(parent))
    os.execvp(command[0], command)  # noqa: S606 - the tuner's own argv, never a shell string


if __name__ == "__main__":
    _exec(sys.argv[1:])
