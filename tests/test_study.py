"""Where a study is stored: PostgreSQL for real, and a clear error when its driver is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest

from tuner.broker import free_port
from tuner.cli import main
from tuner.search.study import CLUSTER_ATTR, StorageError, check_storage, open_storage


def test_postgres_storage_holds_a_study(postgres_url: str) -> None:
    """A plain `postgresql://` URL opens through the installed driver; a study written there
    reads back from a second connection with its trials, values and attributes."""
    study = optuna.create_study(
        study_name="pg-round-trip", storage=open_storage(postgres_url), direction="maximize"
    )
    for x in (1.0, 2.0):
        trial = study.ask()
        trial.set_user_attr(CLUSTER_ATTR, f"127.0.0.1:{int(x)}")
        study.tell(trial, x)
    again = optuna.load_study(study_name="pg-round-trip", storage=open_storage(postgres_url))
    assert [t.value for t in again.trials] == [1.0, 2.0]
    assert again.best_trial.user_attrs[CLUSTER_ATTR] == "127.0.0.1:2"


def test_missing_postgres_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg (hidden here) a `postgresql://` storage is refused naming the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StorageError, match=r"pip install 'kafka-tuner\[postgres\]'"):
        check_storage("postgresql://u@127.0.0.1:1/db")


def test_optimize_without_the_driver_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tuner optimize --storage postgresql://…` without its driver exits 2 with the fix, not
    Optuna's "Failed to import DB access module", before any broker starts."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    config = tmp_path / "c.yaml"
    config.write_text("cluster: {bootstrap_servers: '127.0.0.1:1'}\n")
    argv = ["optimize", str(config), "--storage", "postgresql://u@127.0.0.1:1/db", "--worker"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs the postgresql+psycopg driver, which is not installed" in err
    assert "pip install 'kafka-tuner[postgres]'" in err
    assert "Traceback" not in err
    assert "Failed to import DB access module" not in err


def test_a_malformed_storage_url_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A storage URL SQLAlchemy cannot parse is bad input, naming the URL."""
    config = tmp_path / "c.yaml"
    config.write_text("cluster: {bootstrap_servers: '127.0.0.1:1'}\n")
    assert main(["optimize", str(config), "--storage", "nosuchdb://x/y"]) == 2
    assert "storage 'nosuchdb://x/y' is not a database URL" in capsys.readouterr().err


@pytest.mark.parametrize("by_flag", [False, True], ids=["study.storage", "--storage"])
def test_a_postgres_storage_nothing_listens_on_exits_1(
    by_flag: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PostgreSQL storage with no server at its address fails (exit 1) before a broker
    starts, naming the field, the address tried and what to check, not SQLAlchemy's text."""
    port = free_port()
    url = f"postgresql://tuner:secret@127.0.0.1:{port}/optuna"
    config = tmp_path / "c.yaml"
    config.write_text(
        "cluster: {bootstrap_servers: '127.0.0.1:1'}\n"
        + ("" if by_flag else f"study: {{storage: '{url}'}}\n")
    )
    argv = ["optimize", str(config), "--out", str(tmp_path / "out")]
    assert main(argv + (["--storage", url] if by_flag else [])) == 1
    err = capsys.readouterr().err
    field = "--storage" if by_flag else "study.storage"
    assert (
        f"{field}: cannot open the study storage 'postgresql://tuner:***@127.0.0.1:{port}/" in err
    )
    assert f'"127.0.0.1", port {port} failed: Connection refused' in err
    assert f"check {field} (host, port, user, database) and that the database server is up" in err
    assert "secret" not in err
    assert "sqlalche.me" not in err
    assert "OperationalError" not in err
    assert "no answer from the cluster" not in err  # the storage was checked first
