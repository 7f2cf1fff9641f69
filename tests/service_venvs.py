"""Each example service's own virtualenv, built from its `requirements.txt` as a team's would
be (a framework may pin another client version than the tuner does), kept under the repository's
git-ignored `.services-venvs/<example>` and reused until its requirements change."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "services"
VENVS = ROOT / ".services-venvs"
STAMP = ".requirements-sha256"
"""The file in a built venv that holds the hash of what it was built from."""
BUILD_TIMEOUT_S = 600


def _digest(requirements: Path) -> str:
    """What the venv depends on: the requirements and the interpreter that makes it."""
    return hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()


def service_python(example: str) -> tuple[Path, float]:
    """The interpreter of `example`'s virtualenv, and the seconds it took to build (0.0: it
    was built already from the same requirements). A lock keeps parallel sessions from
    building the same venv at once."""
    requirements = EXAMPLES / example / "requirements.txt"
    venv = VENVS / example
    python = venv / "bin" / "python"
    digest = _digest(requirements)
    VENVS.mkdir(exist_ok=True)
    with (VENVS / f"{example}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = venv / STAMP
        if stamp.exists() and stamp.read_text() == digest and python.exists():
            return python, 0.0
        started = time.monotonic()
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(requirements)],
            check=True, timeout=BUILD_TIMEOUT_S,
        )  # fmt: skip
        stamp.write_text(digest)
        return python, time.monotonic() - started
