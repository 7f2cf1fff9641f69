"""The secured embedded broker's listeners: SASL_SSL (SCRAM-SHA-512 and PLAIN) and SSL.

The broker keeps its PLAINTEXT listener on 127.0.0.1 for its own readiness check and for
inter-broker traffic; clients that test security use the two secured listeners. The SSL
listener authenticates the broker only (no client certificates). Everything secret goes into
files readable by their owner only, never onto a command line.

With `authorizer=True` the broker also checks ACLs (KRaft's `StandardAuthorizer`, KIP-801)
and has a second user, `reader`, with no rights of its own: what a consumer's credentials on
a production cluster look like. `allow.everyone.if.no.acl.found` keeps every resource that
has no ACL open to every user, so only a resource an ACL names is closed to the others.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tuner.broker import tls
from tuner.broker.tls import BrokerTls

USERNAME = "tuner"
READER = "reader"
"""The second user of a broker with an authorizer: a super user neither, it reads only what
an ACL (or the absence of any ACL on a resource) lets it."""
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


def run_with_argfile(
    command: list[str], args: list[str], argfile: Path
) -> subprocess.CompletedProcess[str]:
    """Run `command @argfile`: the Java launcher reads the arguments from the owner-only file,
    so a secret among them never shows in the process list. The file is deleted afterwards."""
    write_private(argfile, "\n".join(args) + "\n")
    try:
        return subprocess.run(
            [*command, f"@{argfile}"], capture_output=True, text=True, check=False
        )
    finally:
        argfile.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureOptions:
    """What a secured broker is asked for: its two listeners' ports (0 = free ones), the
    user's password (None = a random one) and whether it checks ACLs (with a second user)."""

    sasl_ssl_port: int = 0
    ssl_port: int = 0
    password: str | None = field(default=None, repr=False)
    authorizer: bool = False

    def resolved(self, free_port: Callable[[], int]) -> SecureOptions:
        """Ports (from `free_port`) and password filled in; raises `ValueError` for a password
        the broker's config cannot take unquoted."""
        if self.password is not None:
            check_password(self.password)
        return replace(
            self,
            sasl_ssl_port=self.sasl_ssl_port or free_port(),
            ssl_port=self.ssl_port or free_port(),
            password=self.password or new_password(),
        )

    @property
    def ports(self) -> tuple[int, int]:
        return self.sasl_ssl_port, self.ssl_port

    def prepare(self, directory: Path) -> SecureListeners:
        """For resolved options: a new CA and broker certificate, the password file and what a
        client needs (`client_info`), in `directory`, or nothing there and `tls.TlsError`."""
        if not (self.sasl_ssl_port and self.ssl_port and self.password):
            raise ValueError("prepare() needs resolved() options")
        try:
            broker_tls = tls.broker_tls(directory)
        except tls.TlsError:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        listeners = SecureListeners(
            sasl_ssl_port=self.sasl_ssl_port,
            ssl_port=self.ssl_port,
            tls=broker_tls,
            password=self.password,
            password_file=directory / "password",
            reader_password=new_password() if self.authorizer else None,
        )
        write_private(listeners.password_file, listeners.password + "\n")
        (directory / CLIENT_FILE).write_text(json.dumps(asdict(listeners.client())))
        return listeners


CLIENT_FILE = "client.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecuredClient:
    """What a client of a secured broker needs, the password aside (it stays in its file)."""

    sasl_ssl: str
    ssl: str
    ca_file: str
    username: str
    password_file: str
    """A file only its owner can read."""


def client_info(data_dir: str | Path) -> SecuredClient | None:
    """The secured listeners of the broker with this data dir, or None if it is not secured."""
    try:
        return SecuredClient(**json.loads((Path(data_dir) / "secure" / CLIENT_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureListeners:
    """Ports, certificate and the user (SCRAM and PLAIN, same password) of a secured broker;
    with an authorizer, also the second user `READER` (`reader_password` not None)."""

    sasl_ssl_port: int
    ssl_port: int
    tls: BrokerTls
    username: str = USERNAME
    password: str = field(repr=False)
    password_file: Path
    reader_password: str | None = field(default=None, repr=False)

    @property
    def users(self) -> dict[str, str]:
        """Every SASL user and its password."""
        readers = {} if self.reader_password is None else {READER: self.reader_password}
        return {self.username: self.password, **readers}

    def client(self) -> SecuredClient:
        return SecuredClient(
            sasl_ssl=f"127.0.0.1:{self.sasl_ssl_port}",
            ssl=f"127.0.0.1:{self.ssl_port}",
            ca_file=str(self.tls.ca_file),
            username=self.username,
            password_file=str(self.password_file),
        )

    def properties(self, *, port: int, controller_port: int) -> str:
        """server.properties lines appended after the base ones (later keys win)."""
        plain_users = " ".join(f'user_{name}="{secret}"' for name, secret in self.users.items())
        plain_jaas = (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        )
        listeners = f"""\
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
        return self._authorizer() + listeners

    def _authorizer(self) -> str:
        """The ACL lines, if asked. The broker's own listeners (PLAINTEXT: controller traffic,
        the readiness check) authenticate nobody; their principal, `User:ANONYMOUS`, is a super
        user so that no ACL a test writes can cut the node off from its controller. Clients of
        the PLAINTEXT listener are therefore unrestricted: the ACLs bind the secured ones."""
        if self.reader_password is None:
            return ""
        return f"""\
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{self.username};User:ANONYMOUS
allow.everyone.if.no.acl.found=true
"""

    def scram_arguments(self) -> list[str]:
        """The `--add-scram` arguments with which `kafka-storage format` writes every user into
        the metadata log (KIP-900): SCRAM users exist before the broker first starts."""
        return [
            arg
            for name, secret in self.users.items()
            for arg in ("--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={secret}]")
        ]
