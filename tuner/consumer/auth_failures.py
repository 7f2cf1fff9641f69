"""Counting failed authentications, which aiokafka handles without telling its owner.

aiokafka raises `SaslAuthenticationFailed` inside its connection set-up, but its client catches
it where it connects and only logs it at ERROR on the logger `aiokafka` (aiokafka 0.14
`client.py`), the exception the last argument: at bootstrap 'Unable connect to "%s:%s": %s',
later 'Unable connect to node with id %s: %s'. A handler on that logger counts those records
and credits each to the consumer whose connection attempt logged it: the attempt runs inside
`attributed`, which sets a context variable the handler reads (a handler runs in the logging
call itself).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiokafka.errors import (
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

LOGGER = "aiokafka"
"""The logger aiokafka's client writes to (also the parent of its modules' loggers)."""
AUTH_ERRORS: tuple[type[BaseException], ...] = (
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
    ssl.SSLError,
)
"""What the Java client counts in failed-authentication-total: every AuthenticationException
while a connection is prepared (Selector), SASL refusals and TLS handshake failures alike."""

_credit: ContextVar[Callable[[], None] | None] = ContextVar("tuner_auth_credit", default=None)


class _Counting(logging.Handler):
    """Only the client's own ERROR records: `aiokafka.conn` also names the exception when it
    closes the refused connection (at DEBUG), which would count the same refusal twice."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        credit = _credit.get()
        args = record.args if isinstance(record.args, tuple) else ()
        if (
            credit is not None
            and record.name == LOGGER
            and any(isinstance(arg, AUTH_ERRORS) for arg in args)
        ):
            credit()


def install() -> bool:
    """Attach the counting handler to the `aiokafka` logger once per process; False if that
    logger drops ERROR records (its level, or disabled by a logging config): nothing is counted."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, _Counting) for h in logger.handlers):
        logger.addHandler(_Counting())
    return logger.isEnabledFor(logging.ERROR)


def quiet() -> None:
    """Keep aiokafka's records off the console while still counting refused logins: for a
    process that silences aiokafka (it logs every retry during joins at ERROR)."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    install()


def attributed(
    call: Callable[..., Awaitable[Any]], credit: Callable[[], None]
) -> Callable[..., Awaitable[Any]]:
    """`call` with every failed authentication it logs credited to `credit`. The variable is
    set in the awaiting task (and tasks `call` starts, which serve the same client) only, so
    concurrent clients in one process are told apart."""

    async def credited(*args: Any, **kwargs: Any) -> Any:
        token = _credit.set(credit)
        try:
            return await call(*args, **kwargs)
        finally:
            _credit.reset(token)

    return credited
