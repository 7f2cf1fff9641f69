"""What can go wrong with the embedded broker, split by whose move it is to fix it."""

from __future__ import annotations


class BrokerError(Exception):
    """The broker cannot be set up or started; the message says what to do about it."""


class BrokerSetupError(BrokerError):
    """This machine cannot run the broker as set up (no Java, no Maven, a bad KAFKA_HOME, a
    busy port): bad input, fixed by the user, not by trying again."""


class BrokerFailure(BrokerError):
    """The broker was set up but failed: it died on start or did not answer in time."""
