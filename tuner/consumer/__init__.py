"""The instrumented consumer, the simulated processing, and the group that runs them."""

from __future__ import annotations

from tuner.consumer.group import ConsumerGroup, Group, GroupError, GroupMember
from tuner.consumer.instrumented import LAG_STALE_S, InstrumentedConsumer, count_records
from tuner.consumer.member import MemberSpec, run_member
from tuner.consumer.messages import Problem, ProblemKind
from tuner.consumer.processing import ProcessingModel

__all__ = [
    "LAG_STALE_S",
    "ConsumerGroup",
    "Group",
    "GroupError",
    "GroupMember",
    "InstrumentedConsumer",
    "MemberSpec",
    "Problem",
    "ProblemKind",
    "ProcessingModel",
    "count_records",
    "run_member",
]
