"""The wrappers the bootstrap installs: when the service imports a client's module, its
consumer class is replaced by a subclass that runs inside the trial (standard library only).

The finder sits first on `sys.meta_path` and only wraps the loader of the modules that
define the consumer classes; the rest of the import is Python's own.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from _tuner_bootstrap import aiokafka, confluent, kafka_python
from _tuner_bootstrap.context import Context, Target
from _tuner_bootstrap.plan import Plan, load
from _tuner_bootstrap.report import Reporter

TARGETS = (
    Target(module="kafka.consumer.group", attribute="KafkaConsumer", client="kafka-python",
           distribution="kafka-python", wrap=kafka_python.wrap),
    Target(module="aiokafka.consumer.consumer", attribute="AIOKafkaConsumer", client="aiokafka",
           distribution="aiokafka", wrap=aiokafka.wrap),
    Target(module="confluent_kafka.cimpl", attribute="Consumer", client="confluent-kafka",
           distribution="confluent-kafka", wrap=confluent.wrap),
)  # fmt: skip
"""Every client the bootstrap wraps."""


class _Loader(importlib.abc.Loader):
    """The module's own loader, and the wrapper applied once the module has run."""

    def __init__(self, inner: importlib.abc.Loader, target: Target, ctx: Context) -> None:
        self.inner, self.target, self.ctx = inner, target, ctx

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        patch(module, self.target, self.ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # resources, code, is_package: the loader's own


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, targets: Mapping[str, Target], plan: Plan, reporter: Reporter) -> None:
        self.targets, self.plan, self.reporter = targets, plan, reporter

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        wanted = self.targets.get(fullname)
        if wanted is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            ctx = Context(plan=self.plan, reporter=self.reporter, target=wanted)
            spec.loader = _Loader(spec.loader, wanted, ctx)
        return spec


def patch(module: ModuleType, target: Target, ctx: Context) -> None:
    """Replace the module's consumer class by its wrapper (once)."""
    original = getattr(module, target.attribute)
    if not getattr(original, "_tuner_wrapped", False):
        wrapped = target.wrap(original, ctx)
        wrapped._tuner_wrapped = True
        setattr(module, target.attribute, wrapped)


def install(plan_path: str) -> None:
    """Read the plan and wrap each client's consumer class when (or if already) imported."""
    plan = load(plan_path)
    reporter = Reporter(plan.report_pipe())
    reporter.hold_on(plan.control_pipe())
    targets = {t.module: t for t in TARGETS}
    for name, target in targets.items():
        if name in sys.modules:  # imported before us (another sitecustomize, a .pth file)
            patch(sys.modules[name], target, Context(plan=plan, reporter=reporter, target=target))
    sys.meta_path.insert(0, _Finder(targets, plan, reporter))
