"""The secured embedded broker's listeners: SASL_SSL (SCRAM-SHA-512 and PLAIN) and SSL.

The broker keeps its PLAINTEXT listener on 127.0.0.1 for its own readiness check and for
inter-broker traffic; clients that test security use the two secured listeners. The SSL
listener authenticates the broker only (no client certificates). Everything secret goes into
files readable by their owner only, never onto a command line.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from tuner.tls import BrokerTls

USERNAME = "tuner"
SCRAM_MECHANISM = "SCRAM-SHA-512"
MECHANISMS = (SCRAM_MECHANISM, "PLAIN")
PASSWORD_ENV = "KAFKA_TUNER_PASSWORD"  # noqa: S105 - a variable name, not a password
"""The variable `tuner broker up --secure` tells clients to read the password into."""
CA_ENV = "KAFKA_TUNER_CA"
"""The variable it tells clients to put the CA file's path in."""

_SAFE_PASSWORD = re.compile(r"[A-Za-z0-9_-]{12,}")


def new_password() -> str:
    """A random password that needs no quoting in JAAS or in `--add-scram`."""
    return secrets.token_urlsafe(24)


def check_password(password: str) -> None:
    """Raise `ValueError` unless the password is 12+ characters of [A-Za-z0-9_-]: the
    broker's JAAS line and SCRAM bootstrap record take it unquoted."""
    if not _SAFE_PASSWORD.fullmatch(password):
        raise ValueError("the broker password must be 12 or more of A-Z a-z 0-9 _ -")


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (so from its creation on)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureListeners:
    """Ports, certificate and the one user (SCRAM and PLAIN, same password) of a secured broker."""

    sasl_ssl_port: int
    ssl_port: int
    tls: BrokerTls
    username: str = USERNAME
    password: str = field(repr=False)

    def properties(self, *, port: int, controller_port: int) -> str:
        """server.properties lines appended after the base ones (later keys win)."""
        plain_jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{self.username}="{self.password}";'
        )
        return f"""\
listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{self.sasl_ssl_port},\
SSL://127.0.0.1:{self.ssl_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{self.sasl_ssl_port},\
SSL://127.0.0.1:{self.ssl_port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,\
CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms={",".join(MECHANISMS)}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config={plain_jaas}
ssl.keystore.type=PKCS12
ssl.keystore.location={self.tls.keystore}
ssl.keystore.password={self.tls.password}
ssl.key.password={self.tls.password}
ssl.client.auth=none
"""

    def scram_credential(self) -> str:
        """The `--add-scram` value that `kafka-storage format` writes into the metadata log
        (KIP-900): SCRAM users exist before the broker first starts."""
        return f"{SCRAM_MECHANISM}=[name={self.username},password={self.password}]"
