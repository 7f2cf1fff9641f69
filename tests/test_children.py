"""Children that die with the tuner, and how a child's end is said."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from tests.helpers import Process, alive, cmdline, descendants, wait_all_gone
from tuner import children
from tuner.children import describe_exit


def test_exit_codes_and_signals_are_said_in_words() -> None:
    """A return code is `exited with code N`; a negative one names the signal."""
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(-15) == "was killed by SIGTERM"


def test_a_guarded_command_dies_when_its_parent_is_killed() -> None:
    """A command started through `guarded` gets SIGTERM when the process that started it is
    SIGKILLed (no cleanup of its own runs), and is gone within a second."""
    starter = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, time\n"
         "from tuner.children import guarded\n"
         "subprocess.Popen(guarded(['sleep', '60']))\n"
         "time.sleep(60)\n"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    below: set[Process] = set()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            below = descendants(starter.pid)
            if any(cmdline(pid).startswith("sleep") for pid, _ in below):
                break
            time.sleep(0.05)
        (sleeper,) = alive(below)
        starter.kill()
        starter.wait()
        assert wait_all_gone({sleeper}, timeout_s=1.0) == set()
    finally:
        starter.kill()
        for pid, _ in alive(below):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_parent_gone_before_the_request_took_effect_is_noticed() -> None:
    """If the parent named on the command line is no longer the parent (it died while the
    child started), the child signals itself at once instead of running orphaned."""
    done = subprocess.run(
        [sys.executable, "-P", children.__file__, "1", str(int(signal.SIGTERM)), "--",
         "sleep", "60"],
        timeout=10, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGTERM


def test_running_tells_a_zombie_and_a_reaped_child_from_a_live_one() -> None:
    """A member forked as the tuner dies checks the tuner with `running`: a killed process not
    yet reaped (a zombie) counts as gone, as does one reaped."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert children.running(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while children.running(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # not waited for yet: a zombie
        assert not children.running(child.pid)
        assert os.waitpid(child.pid, os.WNOHANG)[0] == child.pid  # it was a zombie until now
        child.returncode = -signal.SIGKILL
        assert not children.running(child.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
    assert children.running(os.getpid())
