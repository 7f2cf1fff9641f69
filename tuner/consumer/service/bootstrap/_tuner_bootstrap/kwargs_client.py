"""The constructor and subscription of the clients configured by keyword arguments, which
kafka-python and aiokafka share: `Consumer(*topics, **configs)`, `subscribe(topics=(),
pattern=None, listener=None)`, `assign(partitions)`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from _tuner_bootstrap.context import Context
from _tuner_bootstrap.report import Meter

METER = "_tuner_meter"
"""The instance attribute that holds a wrapped consumer's counters."""


def meter_of(consumer: object) -> Meter:
    meter: Meter = getattr(consumer, METER)
    return meter


def counting(listener_base: type[Any], meter: Meter, given: Any) -> Any:
    """A rebalance listener of the client's own class that counts each revoke and assignment
    in `meter`, then calls the service's `given` listener (None: none) and returns what it
    returns (aiokafka awaits a coroutine)."""

    class Counting(listener_base):  # type: ignore[misc, valid-type]
        def on_partitions_revoked(self, revoked: Any) -> Any:
            meter.revoked()
            return None if given is None else given.on_partitions_revoked(revoked)

        def on_partitions_assigned(self, assigned: Any) -> Any:
            meter.assigned(len(assigned))
            return None if given is None else given.on_partitions_assigned(assigned)

    return Counting()


def client_defaults(base: type[Any]) -> dict[str, Any]:
    """The client's own default of each keyword, from the version the service runs: aiokafka
    spells them in `__init__`'s signature, kafka-python in `DEFAULT_CONFIG`."""
    defaults: dict[str, Any] = dict(getattr(base, "DEFAULT_CONFIG", None) or {})
    try:
        parameters = inspect.signature(base.__init__).parameters.values()
    except (TypeError, ValueError):  # no signature to read: every keyword counts as set
        return defaults
    for p in parameters:
        if p.default is not inspect.Parameter.empty:
            defaults[p.name] = p.default
    return defaults


def split_defaults(
    configs: Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """(what the code passed that differs from the client's defaults, the names it passed at
    them). A framework passes every keyword (FastStream some 30, most at aiokafka's own
    defaults): the service's own settings are the ones that differ."""
    changed: dict[str, Any] = {}
    same: list[str] = []
    for name, value in configs.items():
        if name in defaults and _equal(value, defaults[name]):
            same.append(name)
        else:
            changed[name] = value
    return changed, same


def _equal(value: Any, default: Any) -> bool:
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        value, default = tuple(value), tuple(default)
    try:
        return bool(value == default)
    except Exception:  # an object whose comparison fails is not a default
        return False


def methods(
    base: type[Any], ctx: Context, listener_base: Callable[[], type[Any]]
) -> dict[str, Callable[..., Any]]:
    """`__init__`, `subscribe` and `assign` of a wrapped keyword-configured consumer whose
    rebalance listeners are instances of `listener_base()` (imported when first needed)."""
    name = base.__name__
    trial = ctx.config()
    defaults = client_defaults(base)

    def __init__(self: Any, *topics: str, **configs: Any) -> None:
        given = ctx.topics(topics, f"{name}()") if topics else []
        kwargs = {
            **configs, **trial,
            "bootstrap_servers": ctx.plan.bootstrap_servers, "group_id": ctx.plan.group_id,
        }  # fmt: skip
        meter = ctx.reporter.meter()
        setattr(self, METER, meter)
        base.__init__(self, **kwargs)
        if given:  # what the constructor does with topics, with a listener that counts
            base.subscribe(self, topics=given, listener=counting(listener_base(), meter, None))
        meter.assignment = self.assignment
        changed, same = split_defaults(configs, defaults)
        ctx.created(meter, topics=list(topics), kwargs=changed, at_defaults=same)

    def subscribe(self: Any, topics: Any = (), pattern: Any = None, listener: Any = None) -> Any:
        if pattern is not None:
            ctx.pattern(pattern, f"{name}.subscribe()")
        given = ctx.topics(topics, f"{name}.subscribe()")
        ours = counting(listener_base(), meter_of(self), listener)
        return base.subscribe(self, topics=given, listener=ours)

    def assign(self: Any, partitions: Any) -> Any:
        ctx.assigned(partitions, f"{name}.assign()")
        return base.assign(self, partitions)

    return {"__init__": __init__, "subscribe": subscribe, "assign": assign}


def subclass(base: type[Any], namespace: dict[str, Any]) -> type[Any]:
    """`base`'s subclass under its own name and module, so the service's `isinstance` checks,
    reprs and logs read as before."""
    cls = type(base.__name__, (base,), {**namespace, "__module__": base.__module__})
    cls.__qualname__ = base.__qualname__
    cls.__doc__ = base.__doc__
    return cls
