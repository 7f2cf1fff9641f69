"""The group's rebalance protocol, named once: which settings apply, which client may run it,
what the settings files and the advice say, all depend on it."""

from __future__ import annotations

from typing import Literal

GroupProtocol = Literal["classic", "consumer"]
"""The group's rebalance protocol (Java's `group.protocol`): `classic` (join and sync rounds
the members run) or `consumer` (KIP-848, the broker assigns; its session and heartbeat are
group configs). Which settings apply depends on it, so it is named once, here."""
GROUP_PROTOCOLS: tuple[GroupProtocol, ...] = ("classic", "consumer")


def protocol_named(value: object) -> GroupProtocol:
    """`value` (a stored or configured name) as a `GroupProtocol`; ValueError names the two."""
    for protocol in GROUP_PROTOCOLS:
        if value == protocol:
            return protocol
    raise ValueError(f"group protocol {value!r} is neither of {', '.join(GROUP_PROTOCOLS)}")
