"""Every client behind `tuner.clients.ConsumerClient` passes the same contract: its defaults,
its effective settings, its own configuration of a Java-named setting, its space, and a real
member that consumes a backlog on the broker."""

from __future__ import annotations

import inspect

import pytest

from tests.helpers import small_spec, trial
from tuner.clients import CLIENTS, ConsumerClient, client_named
from tuner.config import ConfigError, parse_config
from tuner.consumer.member import member_loop
from tuner.settings import SETTINGS, check_parameters

CONFIG_NAME = {"aiokafka": "fetch_min_bytes", "confluent-kafka": "fetch.min.bytes"}
"""How each client spells fetch.min.bytes in its own configuration."""
DEFAULT_SESSION_MS = {"aiokafka": 10000, "confluent-kafka": 45000}
"""Each library's own session.timeout.ms default (aiokafka keeps the pre-3.0 Java one)."""

every_client = pytest.mark.parametrize("client", list(CLIENTS.values()), ids=list(CLIENTS))


def test_each_client_is_found_by_its_config_name_and_aiokafka_is_the_default() -> None:
    """`consumer.client` names a client in the registry; no name means aiokafka."""
    assert sorted(CLIENTS) == ["aiokafka", "confluent-kafka"]
    assert all(client_named(name).name == name for name in CLIENTS)
    assert client_named(None).name == "aiokafka"


@every_client
def test_the_client_says_its_library_version(client: ConsumerClient) -> None:
    """A run can record which version of the library it measured."""
    assert client.version()[0].isdigit(), client.version()


@every_client
def test_defaults_are_the_effective_settings_of_nothing_and_cover_the_catalogue(
    client: ConsumerClient,
) -> None:
    """The client's defaults are what it runs with when nothing is set, for every Java name."""
    defaults = client.defaults()
    assert defaults == client.effective_settings({})
    assert set(SETTINGS) <= set(defaults)
    assert defaults["session.timeout.ms"] == DEFAULT_SESSION_MS[client.name]


@every_client
def test_a_set_value_wins_over_the_default(client: ConsumerClient) -> None:
    """A stated setting replaces the client's default, and leaves the others alone."""
    effective = client.effective_settings({"fetch.min.bytes": 4096})
    assert effective["fetch.min.bytes"] == 4096
    assert {k: v for k, v in effective.items() if k != "fetch.min.bytes"} == {
        k: v for k, v in client.defaults().items() if k != "fetch.min.bytes"
    }


@every_client
def test_a_java_named_setting_becomes_the_clients_own(client: ConsumerClient) -> None:
    """fetch.min.bytes goes into the member's configuration under the client's name, with
    where a new group starts reading; nothing else is set."""
    config = client.member_config(
        {"fetch.min.bytes": 4096}, offset_reset="earliest", protocol="classic"
    )
    assert config[CONFIG_NAME[client.name]] == 4096
    assert len(config) == 2, config


@every_client
def test_the_default_space_is_valid_and_ordered_fetch_first(client: ConsumerClient) -> None:
    """The ranges searched without `search.parameters` pass the config's own checks, and start
    with the fetch settings (the sampling order a seeded study depends on)."""
    java = {name: p for name, p in client.search.items() if name in SETTINGS}
    assert check_parameters(java) == []
    assert client.parameter_problems(client.search) == []
    assert list(client.search)[:2] == ["fetch.min.bytes", "fetch.max.wait.ms"]
    assert "max.poll.interval.ms" in client.search


@every_client
def test_the_client_names_a_member_loop_in_the_consumer_layer(client: ConsumerClient) -> None:
    """Each client's `member_loop` resolves to a coroutine function in `tuner.consumer`, one
    per client (the loops live above the clients, which the config imports)."""
    loop = member_loop(client)
    assert inspect.iscoroutinefunction(loop), client.member_loop
    assert loop.__module__.startswith("tuner.consumer."), loop.__module__
    assert len({c.member_loop for c in CLIENTS.values()}) == len(CLIENTS)


@pytest.mark.integration
@every_client
def test_the_clients_members_consume_a_backlog(
    client: ConsumerClient, bootstrap_servers: str
) -> None:
    """On the real broker, a trial of the client's members consumes and commits the whole backlog,
    reports the client it ran, and runs with the client's own defaults where nothing was set."""
    spec = small_spec(
        f"contract-{client.name}",
        consumer={"client": client.name},
        trial={"warmup_s": 1, "measure_s": 3},
    )
    result = trial(spec, bootstrap_servers)
    assert result.client == client.name
    assert result.errors == ()
    assert result.offsets.end_offsets_total == 20000  # small_spec's backlog
    assert result.offsets.consumed_total == 20000
    assert result.offsets.committed_total == 20000
    assert result.settings["session.timeout.ms"] == DEFAULT_SESSION_MS[client.name]


@every_client
def test_task_isolation_is_refused_exactly_for_a_client_whose_poll_blocks(
    client: ConsumerClient,
) -> None:
    """Members sharing one event loop stall on a blocking poll: the config says so, by name."""
    data = {"consumer": {"client": client.name, "isolation": "task"}}
    if not client.blocking_poll:
        assert parse_config(data).consumer.isolation == "task"
        return
    with pytest.raises(ConfigError, match=rf"consumer\.isolation: .*{client.poll_call}"):
        parse_config(data)


OWN_FILE = {"aiokafka": "aiokafka.json", "confluent-kafka": "librdkafka.properties"}
"""The settings file each client runs from as it was measured."""


@every_client
def test_a_recommendation_is_taken_against_the_clients_own_defaults(
    client: ConsumerClient,
) -> None:
    """session.timeout.ms=10000 is aiokafka's default, not librdkafka's: it is a change (and in
    the client's own file) exactly where the client's default differs; a real change always is."""
    r = client.recommended(
        {"session.timeout.ms": 10000, "fetch.min.bytes": 4096}, {}, study="s", origin="o"
    )
    own_default = client.defaults()["session.timeout.ms"]
    assert ("session.timeout.ms" in r.changes) == (own_default != 10000)
    assert r.changes["fetch.min.bytes"] == 4096
    own = client.settings_files(r)[OWN_FILE[client.name]]
    assert CONFIG_NAME[client.name] in own
    assert ("10000" in own) == (own_default != 10000), own
