"""The user's handler inside a member: set up once, called with each polled batch, torn down.

An `async def` handler is awaited, so the event loop keeps serving heartbeats and prefetches
while it waits; a plain `def` runs on the loop and holds it until it returns, exactly as it
would in the user's service. A handler's exception becomes `HandlerFailed`, carrying the
traceback of the user's code, and fails the trial.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from tuner.config import HandlerSpec
from tuner.config import handler as refs

EXPECTED_DECAY = 0.8
"""Weight of the past in the expected seconds per record (the in-flight batch's credit)."""


class HandlerFailed(Exception):
    """The user's handler (or its setup/teardown) raised; `user_traceback` is its traceback,
    from the user's own code down."""

    def __init__(self, role: str, ref: str, exc: BaseException) -> None:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        frames = traceback.extract_tb(tb)
        last = frames[-1] if frames else None
        where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})" if last else ""
        self.summary = f"the {role} {ref} raised {type(exc).__name__}: {exc}{where}"
        self.user_traceback = "".join(traceback.format_exception(type(exc), exc, tb))
        super().__init__(self.summary)


class UserHandler:
    """The handler, setup and teardown that `spec` names, imported in this process."""

    def __init__(self, spec: HandlerSpec) -> None:
        self.spec = spec
        self.name = refs.short(spec.function)
        self.function = refs.load(spec.function)
        self._setup = refs.load(spec.setup) if spec.setup else None
        self._teardown = refs.load(spec.teardown) if spec.teardown else None
        self._per_record_s = 0.0

    async def setup(self) -> None:
        if self._setup is not None:
            await self._call("setup", self._setup)

    async def teardown(self) -> None:
        if self._teardown is not None:
            await self._call("teardown", self._teardown)

    def expected_s(self, records: int) -> float:
        """How long a batch of `records` should take, from the batches so far (0 at first):
        the parent credits a batch in flight over this time (see `member.Progress`)."""
        return self._per_record_s * records

    async def handle(self, batch: dict[TopicPartition, list[Any]] | list[Any]) -> float:
        """Call the handler with the batch's records as one list, as the client hands them to
        an application: aiokafka's `getmany()` dict flattened partition by partition into
        `ConsumerRecord`s, confluent-kafka's `consume()` list of `Message`s as it is. Returns
        the seconds it took."""
        records = batch if isinstance(batch, list) else [r for part in batch.values() for r in part]
        started = time.monotonic()
        await self._call("handler", self.function, records)
        took = time.monotonic() - started
        if records:
            per_record = took / len(records)
            self._per_record_s = (
                per_record
                if self._per_record_s <= 0
                else EXPECTED_DECAY * self._per_record_s + (1 - EXPECTED_DECAY) * per_record
            )
        return took

    async def _call(self, role: str, function: Callable[..., Any], *args: Any) -> None:
        ref = self.spec.function if role == "handler" else getattr(self.spec, role)
        try:
            result = function(*args)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            raise HandlerFailed(role, refs.short(ref), exc) from exc
