"""Turns on a cluster and the study's trial budget, kept beside the study in its storage.

Several `tuner optimize --worker` processes share one study. Two rules keep their numbers
honest: a cluster measures one trial at a time (trials on one cluster would measure each
other's load), and `search.trials` is the study's budget, not each worker's. Both live in
two small tables of the study's own database (for `journal:FILE`, an SQLite file beside it),
changed only by compare-and-set updates, so they hold across machines without a lock server.

A lease names its holder and expires `LEASE_S` after its last renewal; the holder renews it
from a thread while its trial runs. A worker killed mid-trial stops renewing: the next worker
takes the lease over and is told which trial was left running, so it can mark it failed.
Expiry uses each machine's wall clock: hosts sharing a study must keep their clocks in sync
(NTP) to well under `LEASE_S`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from tuner.search.study import database_url

log = logging.getLogger(__name__)

LEASE_S = 20.0
"""How long a lease outlives its holder's last renewal: the wait after a worker is killed."""
POLL_S = 0.5
"""How often a worker waiting for a cluster asks again."""

_META = MetaData()
LEASES = Table(
    "tuner_cluster_leases",
    _META,
    Column("cluster", String(1024), primary_key=True),
    Column("holder", String(256), nullable=True),
    Column("study", String(512), nullable=True),
    Column("trial_number", Integer, nullable=True),
    Column("expires_at", Float, nullable=False),
    Column("waiter", String(256), nullable=True),
    Column("waiting_at", Float, nullable=True),
)
_BUDGETS = Table(
    "tuner_trial_budgets",
    _META,
    Column("study", String(512), primary_key=True),
    Column("taken", Integer, nullable=False),
)


def coordination_url(storage_url: str) -> str:
    """The database holding the leases: the study's own, or an SQLite file beside a journal."""
    if storage_url.startswith("journal:"):
        return f"sqlite:///{storage_url.removeprefix('journal:')}.leases.db"
    return database_url(storage_url)


@dataclass(frozen=True, slots=True, kw_only=True)
class TakenOver:
    """An expired lease this worker took: its holder stopped renewing it mid-trial."""

    holder: str
    study: str | None
    trial_number: int


class Coordinator:
    """One worker's view of the leases and the budget of one study (see module doc)."""

    def __init__(self, storage_url: str, *, study: str, lease_s: float = LEASE_S) -> None:
        self.study = study
        self.lease_s = lease_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._engine: Engine = create_engine(coordination_url(storage_url), poolclass=NullPool)
        try:
            _META.create_all(self._engine)
        except (IntegrityError, OperationalError, ProgrammingError):
            _META.create_all(self._engine)  # another worker created them at the same moment

    def close(self) -> None:
        self._engine.dispose()

    # --- the budget ---------------------------------------------------------------------------

    def claim(self, *, budget: int, taken: int) -> bool:
        """Take one trial of the study's `budget`, if any is left; `taken` is what the study
        itself holds (finished and running trials), which the count never falls below."""
        with self._engine.begin() as db:
            try:
                with db.begin_nested():
                    db.execute(insert(_BUDGETS).values(study=self.study, taken=taken))
            except IntegrityError:
                pass
            row = _BUDGETS.c
            db.execute(
                update(_BUDGETS)
                .where(row.study == self.study, row.taken < taken)
                .values(taken=taken)
            )
            claimed = db.execute(
                update(_BUDGETS)
                .where(row.study == self.study, row.taken < budget)
                .values(taken=row.taken + 1)
            )
            return claimed.rowcount == 1

    def unclaim(self) -> None:
        """Give back a trial claimed but never asked (Ctrl-C while waiting for the cluster)."""
        with self._engine.begin() as db:
            db.execute(
                update(_BUDGETS)
                .where(_BUDGETS.c.study == self.study, _BUDGETS.c.taken > 0)
                .values(taken=_BUDGETS.c.taken - 1)
            )

    # --- the lease per cluster ----------------------------------------------------------------

    def _try_acquire(self, cluster: str) -> tuple[bool, TakenOver | None]:
        now = time.time()
        expires = now + self.lease_s
        c = LEASES.c
        with self._engine.begin() as db:
            try:
                with db.begin_nested():
                    db.execute(
                        insert(LEASES).values(
                            cluster=cluster,
                            holder=self.holder,
                            study=self.study,
                            trial_number=None,
                            expires_at=expires,
                        )
                    )
                return True, None
            except IntegrityError:
                pass
            held = db.execute(select(LEASES).where(c.cluster == cluster)).one()
            free = held.holder is None or held.holder == self.holder
            if not free and held.expires_at > now:
                db.execute(
                    update(LEASES)
                    .where(c.cluster == cluster)
                    .values(waiter=self.holder, waiting_at=now)
                )
                return False, None
            if held.waiter not in {None, self.holder} and held.waiting_at > now - 3 * POLL_S:
                # Another worker asked while it was held: its turn first, or the worker that
                # just released it would take it again before the waiter's next poll.
                return False, None
            # Compare-and-set on what was read: of two workers taking the same lease, one wins.
            taken = db.execute(
                update(LEASES)
                .where(
                    c.cluster == cluster,
                    c.expires_at == held.expires_at,
                    c.holder.is_(None) if held.holder is None else c.holder == held.holder,
                )
                .values(
                    holder=self.holder,
                    study=self.study,
                    trial_number=None,
                    expires_at=expires,
                    waiter=None,
                    waiting_at=None,
                )
            )
        if taken.rowcount != 1:
            return False, None
        if free or held.trial_number is None:
            return True, None
        log.warning("took over the expired lease on %s from %s", cluster, held.holder)
        return True, TakenOver(holder=held.holder, study=held.study, trial_number=held.trial_number)

    def _renew(self, cluster: str, trial_number: int | None = None) -> bool:
        values: dict[str, object] = {"expires_at": time.time() + self.lease_s}
        if trial_number is not None:
            values["trial_number"] = trial_number
        with self._engine.begin() as db:
            renewed = db.execute(
                update(LEASES)
                .where(LEASES.c.cluster == cluster, LEASES.c.holder == self.holder)
                .values(**values)
            )
        return renewed.rowcount == 1

    def _release(self, cluster: str) -> None:
        with self._engine.begin() as db:
            db.execute(
                update(LEASES)
                .where(LEASES.c.cluster == cluster, LEASES.c.holder == self.holder)
                .values(holder=None, trial_number=None, expires_at=0.0)
            )

    @contextlib.contextmanager
    def turn(self, cluster: str) -> Iterator[Turn]:
        """Wait until this worker holds `cluster`'s lease, keep it renewed, release it at the end.

        Yields a `Turn`: `taken_over` names the trial a killed holder left running, and
        `measuring(number)` records the trial this turn runs (for whoever takes over next)."""
        while True:
            acquired, taken_over = self._try_acquire(cluster)
            if acquired:
                break
            time.sleep(POLL_S)
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(self.lease_s / 4):
                if not self._renew(cluster):
                    log.error("lost the lease on %s: another worker took it over", cluster)
                    return

        renewer = threading.Thread(target=keep, name=f"lease {cluster}", daemon=True)
        renewer.start()
        try:
            yield Turn(taken_over=taken_over, measuring=lambda n: self._renew(cluster, n))
        finally:
            stop.set()
            renewer.join()
            self._release(cluster)


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """A held lease: what it took over, and how to record the trial it runs."""

    taken_over: TakenOver | None
    measuring: Callable[[int], bool]
