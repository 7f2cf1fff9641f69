"""What a stored study holds: where it lives, what each trial measured, which trials count,
and the one it recommends. `outcome_of` is the one reader that turns a study into the typed
`StudyOutcome` the recommendation and the report take.
"""

from __future__ import annotations

import collections
import logging
import shlex
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.pool import NullPool

from tuner.config import ConsumerSpec, SettingValue, StudySpec
from tuner.protocol import protocol_named
from tuner.search.events import StudyOutcome
from tuner.trial.result import TrialResult

log = logging.getLogger(__name__)

RESULT_ATTR = "result"
"""Trial attribute: the trial's `TrialResult.to_dict()`."""
FIXED_ATTR = "fixed_settings"
"""Study attribute: the config's `consumer.settings`, which the study kept fixed."""
CLIENT_ATTR = "client"
"""Study attribute: the measured client, group protocol and service (`client_attr`)."""
BACKLOG_ATTR = "backlog_records"
"""Study attribute: the largest backlog any trial needed, so a resumed study starts there."""
SETTINGS_ATTR = "settings"
"""Trial attribute: the settings the trial was given (Java names), as the sampler drew them."""
FAIL_REASON_ATTR = "fail_reason"
"""Trial attribute: why a failed trial has no measurement, in words ("interrupted" on Ctrl-C)."""
ABANDONED_ATTR = "abandoned"
"""Study attribute prefix: `abandoned.<number>` says why a trial whose worker was killed was
told FAIL by the worker that took its cluster over (a trial's own attributes are written only
by its own worker, as Optuna requires); `fail_reason` reads both."""
PRUNED_ATTR = "pruned"
"""Trial attribute: why the pruner stopped the trial, in words."""
TRIAL_BACKLOG_ATTR = "backlog_records"
"""Trial attribute: the backlog (records) the trial's last attempt ran on."""
CLUSTER_ATTR = "cluster"
"""Trial attribute: the bootstrap address of the cluster the trial was measured on."""
WORKER_ATTR = "worker"
"""Trial attribute: the worker (host and process) that measured the trial."""


def client_attr(consumer: ConsumerSpec) -> dict[str, str | None]:
    """What `CLIENT_ATTR` holds: the client, group protocol and service command (None: the
    tuner's own members) every trial of the study measured."""
    service = None if consumer.service is None else shlex.join(consumer.service.command)
    return {
        "client": consumer.client,
        "group_protocol": consumer.group_protocol,
        "service": service,
    }


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{out_dir / 'study.db'}"


def study_url(spec: StudySpec, out_dir: Path, storage: str | None = None) -> str:
    """Where `optimize` keeps the study: `storage`, else the config's, else under `out_dir`."""
    return storage or spec.study.storage or default_storage(out_dir)


class StorageError(Exception):
    """The storage URL is malformed or names a database whose driver is not installed."""


class StorageUnreachableError(StorageError):
    """The storage's database did not let the tuner in: nothing listens at its address, or
    it refused the user. A failure (exit 1), as a cluster that does not answer is."""


class UnknownStudyError(StorageError):
    """The storage holds no study of the name asked for (bad input, as a malformed URL is)."""


CONNECT_TIMEOUT_S = 10
"""How long `reach_storage` waits for the database: an address that drops packets would
otherwise hang for the driver's own timeout (none for libpq)."""


POSTGRES_EXTRA = "pip install 'kafka-tuner[postgres]'"


def database_url(url: str) -> str:
    """`postgresql://` with the driver the `postgres` extra installs (psycopg 3), whichever
    default the installed SQLAlchemy picks (psycopg2 before 2.1); an explicit driver stays."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def check_storage(url: str) -> None:
    """Raise StorageError unless this install can open `url`: without it Optuna fails later
    with "Failed to import DB access module", after a broker and a topic were set up."""
    if url.startswith("journal:"):
        return
    try:
        dialect = make_url(database_url(url)).get_dialect()
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StorageError(f"storage {url!r} is not a database URL Optuna can open: {exc}") from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        driver = f"{dialect.name}+{dialect.driver}"
        fix = POSTGRES_EXTRA if dialect.name == "postgresql" else f"install its driver ({exc.name})"
        raise StorageError(
            f"storage {url!r} needs the {driver} driver, which is not installed: {fix}"
        ) from exc


def _unreachable(url: str, exc: OperationalError, field: str) -> StorageUnreachableError:
    """The driver's first line (which names the address it tried and why it failed), without
    SQLAlchemy's wrapping and its link, and what to check."""
    said = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else repr(exc.orig)
    for prefix in ("connection is bad: ", "connection failed: "):  # psycopg 3's wrapping
        said = said.removeprefix(prefix)
    shown = make_url(url).render_as_string(hide_password=True)
    what = (
        "(its directory must exist and be writable)"
        if database_url(url).startswith("sqlite")
        else "(host, port, user, database) and that the database server is up and accepts "
        "connections"
    )
    return StorageUnreachableError(
        f"{field}: cannot open the study storage {shown!r}: {said}: check {field} {what}"
    )


def reach_storage(url: str, *, field: str = "study.storage") -> None:
    """Connect to `url`'s database once, so that a server that is not there is said before a
    broker, a topic or a trial is started (StorageUnreachableError naming `field`). Files
    (`sqlite:`, `journal:`) are made on first use and need no check."""
    check_storage(url)
    db = database_url(url)
    if url.startswith("journal:") or db.startswith("sqlite"):
        return
    args = {"connect_timeout": CONNECT_TIMEOUT_S} if db.startswith("postgresql") else {}
    engine = create_engine(db, poolclass=NullPool, connect_args=args)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise _unreachable(url, exc, field) from None
    finally:
        engine.dispose()


def open_storage(url: str, *, field: str = "study.storage") -> str | optuna.storages.BaseStorage:
    """An SQLAlchemy URL (`postgresql://` through psycopg 3); `journal:PATH` is Optuna's journal
    file (for several workers on one machine). Raises StorageError as `check_storage` does, and
    StorageUnreachableError (naming `field`) when the database does not let the tuner in."""
    if url.startswith("journal:"):
        backend = JournalFileBackend(url.removeprefix("journal:"))
        return optuna.storages.JournalStorage(backend)
    check_storage(url)
    db = database_url(url)
    if db.startswith("sqlite"):
        return db
    try:
        for _ in range(2):
            try:
                return optuna.storages.RDBStorage(db)
            except (IntegrityError, ProgrammingError):
                # Workers starting together on a fresh database race to create Optuna's schema;
                # the loser sees the winner's types or tables half made, and finds them done
                # later.
                time.sleep(1.0)
        return optuna.storages.RDBStorage(db)
    except OperationalError as exc:
        raise _unreachable(url, exc, field) from None


def recommended(study: optuna.Study) -> FrozenTrial | None:
    """The best feasible trial; in a two-objective study, the front's highest throughput.

    Optuna (>= 5) picks among feasible trials only, for `best_trial` and the Pareto front alike.
    """
    if len(study.directions) > 1:
        return max(study.best_trials, key=lambda t: t.values[0], default=None)
    try:
        return study.best_trial
    except ValueError:
        return None


def stored_result(trial: FrozenTrial) -> TrialResult | None:
    """What the trial measured, as `optimize` stored it (None: it measured nothing)."""
    stored = trial.user_attrs.get(RESULT_ATTR)
    return None if stored is None else TrialResult.from_dict(stored)


def abandoned_attr(number: int) -> str:
    """The study attribute that holds why trial `number` was told FAIL by another worker."""
    return f"{ABANDONED_ATTR}.{number}"


def fail_reason(trial: FrozenTrial, study_attrs: Mapping[str, object]) -> str | None:
    """Why the trial measured nothing, in words, from its own attribute or, for a trial a
    killed worker left, the study's (`abandoned_attr`); None when nothing was said."""
    said = trial.user_attrs.get(FAIL_REASON_ATTR, study_attrs.get(abandoned_attr(trial.number)))
    return None if said is None else str(said)


def outcome_of(
    study: optuna.Study,
    *,
    storage: str = "",
    held: Mapping[int, TrialResult] | None = None,
    interrupted: bool = False,
) -> StudyOutcome:
    """The study as the recommendation and the report take it, from one read of its trials and
    attributes. A trial's result is the typed one in `held` (what this process measured) when
    there is one, else read back from its attribute (a trial of another worker or an earlier
    run); the recommended trial is chosen here, once."""
    trials = study.get_trials(deepcopy=False)
    attrs = study.user_attrs
    copy = optuna.create_study(study_name=study.study_name, directions=study.directions)
    copy.add_trials(trials)
    held = held or {}
    read = {t.number: held[t.number] if t.number in held else stored_result(t) for t in trials}
    reasons = {t.number: said for t in trials if (said := fail_reason(t, attrs)) is not None}
    measured = attrs.get(CLIENT_ATTR, {})
    return StudyOutcome(
        study_name=study.study_name,
        storage=storage,
        study=copy,
        best=recommended(copy),
        results={number: result for number, result in read.items() if result is not None},
        fail_reasons=reasons,
        fixed=dict(attrs.get(FIXED_ATTR, {})),
        client=str(measured.get("client", "aiokafka")),
        group_protocol=protocol_named(measured.get("group_protocol", "classic")),
        service=None if measured.get("service") is None else str(measured["service"]),
        backlog_records=int(attrs.get(BACKLOG_ATTR, 0)),
        interrupted=interrupted,
    )


def read_outcome(url: str, name: str, *, field: str = "--storage") -> StudyOutcome:
    """`tuner report`'s reader: the stored study `name` as `outcome_of` hands it over. Raises
    UnknownStudyError for a name the storage does not hold, and StorageError or
    StorageUnreachableError (naming `field`) as `open_storage` does."""
    storage = open_storage(url, field=field)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # what Optuna's storages raise for a study name they do not hold
        raise UnknownStudyError(f"no study {name!r} in {url}") from None
    return outcome_of(study, storage=url)


def is_feasible(trial: FrozenTrial) -> bool:
    """A complete trial whose every constraint value is <= 0 (Optuna's convention)."""
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values())


def violations(study: optuna.Study) -> collections.Counter[str]:
    """Why trials were not feasible: each violated constraint, plus `failed` and `pruned`."""
    counts: collections.Counter[str] = collections.Counter()
    for t in study.trials:
        if t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.COMPLETE:
            counts.update(name for name, value in t.constraints.items() if value > 0)
    return counts


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The feasible trials no other trial beats on both objectives, fastest first."""
    if len(study.directions) == 1:
        return []
    return sorted(study.best_trials, key=lambda t: -t.values[0])


def best_settings(trial: FrozenTrial) -> dict[str, SettingValue]:
    """The settings a stored trial ran with (its parameters resolved to Java names)."""
    return dict(trial.user_attrs[SETTINGS_ATTR])


def importance_target(study: optuna.Study) -> Callable[[FrozenTrial], float] | None:
    """None for one objective; else minus throughput, as Optuna's PED-ANOVA ranks the settings
    that reach *low* target values."""
    if len(study.directions) == 1:
        return None
    return lambda t: -t.values[0]


def importances(study: optuna.Study) -> dict[str, float] | None:
    """Optuna's default (PED-ANOVA) importances for throughput, most important first; None
    when the study has too few complete trials (or a single value) to tell."""
    try:
        with warnings.catch_warnings():  # the "low target values" note: the target is negated
            warnings.filterwarnings("ignore", "PedAnovaImportanceEvaluator")
            return optuna.importance.get_param_importances(study, target=importance_target(study))
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        log.info("no importances: %s", exc)
        return None
