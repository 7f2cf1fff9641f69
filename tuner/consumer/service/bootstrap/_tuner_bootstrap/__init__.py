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

from _tuner_bootstrap import aiokafka, confluent, guard, kafka_python
from _tuner_bootstrap.context import Context, Target
from _tuner_bootstrap.plan import load, stop
from _tuner_bootstrap.report import Reporter

CLASSES = (
    ("kafka.consumer.group", "KafkaConsumer", "kafka-python", kafka_python.wrap),
    ("aiokafka.consumer.consumer", "AIOKafkaConsumer", "aiokafka", aiokafka.wrap),
    ("confluent_kafka.cimpl", "Consumer", "confluent-kafka", confluent.wrap),
    ("kafka.producer.kafka", "KafkaProducer", "kafka-python", guard.kwargs_producer),
    ("kafka.admin.client", "KafkaAdminClient", "kafka-python", guard.kwargs_admin),
    ("aiokafka.producer.producer", "AIOKafkaProducer", "aiokafka", guard.kwargs_producer),
    ("aiokafka.admin.client", "AIOKafkaAdminClient", "aiokafka", guard.kwargs_admin),
    ("confluent_kafka.cimpl", "Producer", "confluent-kafka", guard.confluent_producer),
    ("confluent_kafka.admin", "AdminClient", "confluent-kafka", guard.confluent_admin),
)
"""(module, class, client, wrapper): the client's name is also its distribution's."""
TARGETS = tuple(
    Target(module=m, attribute=a, client=c, distribution=c, wrap=w) for m, a, c, w in CLASSES
)
"""Every class the bootstrap wraps: each client's consumer, and its producer and admin client
(`guard`), so nothing the service makes reaches its own cluster or writes there."""
REFUSED = {
    "quixstreams": (
        "Quix Streams looks each record, partition assignment, commit and checkpoint up by its "
        "topic's name, and checks and creates its topics (and a stateful dataframe's changelog "
        "topics) by name through its admin client, so the trial's topic cannot stand in for "
        "service.topic; measure the dataframe's work as a `consumer.handler` instead"
    ),
    "faust": (
        "faust-streaming creates topics of its own through its client's protocol requests, "
        "not an admin client (`<app id>-__assignor-__leader`, each table's changelog, every "
        "topic it declares) and produces to them, which the tuner can neither redirect nor "
        "refuse one by one; measure the agent's work as a `consumer.handler` instead"
    ),
}
"""The frameworks refused at import, and why."""


class _Loader(importlib.abc.Loader):
    """The module's own loader, and the wrappers applied once the module has run."""

    def __init__(self, inner: importlib.abc.Loader, wrapped: Sequence[Context]) -> None:
        self.inner, self.wrapped = inner, wrapped

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        for ctx in self.wrapped:
            patch(module, ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # resources, code, is_package: the loader's own


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, wrapped: Mapping[str, Sequence[Context]], reporter: Reporter) -> None:
        self.wrapped, self.reporter = wrapped, reporter

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in REFUSED:
            refuse_framework(fullname, self.reporter)
        wanted = self.wrapped.get(fullname)
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
            spec.loader = _Loader(spec.loader, wanted)
        return spec


def refuse_framework(name: str, reporter: Reporter) -> None:
    """Stop a service that imports a framework the tuner cannot run safely, saying why."""
    stop(
        f"the service imports {name}, which the tuner does not run: {REFUSED[name]}",
        lambda text: reporter.event(None, "refused", message=text),
    )


def patch(module: ModuleType, ctx: Context) -> None:
    """Replace the module's class by its wrapper (once)."""
    original = getattr(module, ctx.target.attribute)
    if not getattr(original, "_tuner_wrapped", False):
        wrapped = ctx.target.wrap(original, ctx)
        wrapped._tuner_wrapped = True
        setattr(module, ctx.target.attribute, wrapped)


def install(plan_path: str) -> None:
    """Read the plan and wrap each client's classes when (or if already) imported."""
    plan = load(plan_path)
    reporter = Reporter(plan.report_pipe())
    reporter.hold_on(plan.control_pipe())
    wrapped: dict[str, list[Context]] = {}
    for target in TARGETS:
        ctx = Context(plan=plan, reporter=reporter, target=target)
        wrapped.setdefault(target.module, []).append(ctx)
    for name in REFUSED:
        if name in sys.modules:
            refuse_framework(name, reporter)
    for name, contexts in wrapped.items():
        if name in sys.modules:  # imported before us (another sitecustomize, a .pth file)
            for ctx in contexts:
                patch(sys.modules[name], ctx)
    sys.meta_path.insert(0, _Finder(wrapped, reporter))
