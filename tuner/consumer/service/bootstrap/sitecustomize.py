"""The tuner's bootstrap, first on a service's PYTHONPATH: standard library only.

Python imports `sitecustomize` at start (the `site` module), before the service's code runs.
Only when `TUNER_SERVICE_PLAN` names a plan does this one act: it wraps the Kafka consumer
classes (`_tuner_bootstrap`) so the trial's cluster, group, topic and settings replace the
service's own. Whatever happens, the service's environment's own `sitecustomize` still runs.
It never imports the tuner: the service runs in its own interpreter and virtualenv.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

PLAN_ENV = "TUNER_SERVICE_PLAN"
"""The path of the plan (JSON) the tuner wrote for this process."""
BROKEN_EXIT = 78
"""The exit code when the bootstrap cannot do its job (EX_CONFIG): the service must not run
with its own group on the cluster because the plan could not be read."""


def chain() -> None:
    """Run the next `sitecustomize` on `sys.path` after this directory's (a virtualenv's own,
    a distribution's): Python imports only the first one it finds."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def main() -> None:
    """Install the wrappers when the tuner started this process, then chain. A plan that cannot
    be read stops the process: `site` would only print a warning for an exception, and the
    service would then run against its own group and topics."""
    plan = os.environ.get(PLAN_ENV)
    if plan:
        try:
            from _tuner_bootstrap import install  # noqa: PLC0415 - only when the tuner runs us

            install(plan)
        except Exception as error:
            sys.stderr.write(f"tuner: cannot apply the plan {plan!r}: {error!r}\n")
            sys.stderr.flush()
            os._exit(BROKEN_EXIT)
    chain()


main()
