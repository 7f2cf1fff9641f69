"""Can the config's credentials and CA reach the cluster? Asked once, before anything starts.

aiokafka's clients swallow a refused login or an untrusted certificate while bootstrapping:
they log it and end with "Unable to bootstrap", after their request timeout, and the
Locust producer retries until its messages time out. One direct connection per bootstrap
address instead gets the broker's own answer at once, so a wrong password is a clear
config error before a topic is made or a process started; so is a listener of another
protocol, which hangs up on the handshake.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from tuner.cluster.admin import ClusterError, Connection, UnreachableError
from tuner.config import ClusterSpec

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0
"""A broker answers a handshake in milliseconds. When no address answers within this, the
cluster is unreachable (a firewall, a wrong service), said at once rather than after each
client's own request timeout."""


class AccessError(ClusterError):
    """The cluster refused the config's security settings; fixed in the config (bad input)."""


class AuthenticationError(AccessError):
    """The broker refused the user, the password or the SASL mechanism."""


class TlsTrustError(AccessError):
    """The broker's certificate is not signed by the CA the config trusts, or TLS failed."""


class RedactSecret(logging.Filter):
    """Replace a secret in every record a handler emits: aiokafka's DEBUG lines print each
    request whole, and a SASL PLAIN request carries the password."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.secret in text:
            record.msg, record.args = text.replace(self.secret, "***"), None
        return True


def redact_in_logs(secret: str | None) -> None:
    """Keep `secret` out of everything the root logger's handlers write from now on."""
    if secret:
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactSecret(secret))


def check(cluster: ClusterSpec, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise `AccessError` if a bootstrap address refuses the login, its certificate is not
    trusted, or it hangs up during the handshake (a listener of another protocol). Any other
    failure (nothing listening, a timeout) is left to the clients, which report it their way."""
    conn = Connection(bootstrap_servers=cluster.bootstrap_servers, cluster=cluster)
    asyncio.run(_check(conn, timeout_s))


async def _check(conn: Connection, timeout_s: float) -> None:
    kwargs = conn.kwargs()
    del kwargs["bootstrap_servers"]
    mute = answered = 0
    for address in conn.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        if not port.isdigit():
            continue  # not an address: the config's own checks say so
        try:
            async with asyncio.timeout(timeout_s):
                connection = await create_conn(
                    host, int(port), request_timeout_ms=int(timeout_s * 1000), **kwargs
                )
            connection.close()
            answered += 1
        except (SaslAuthenticationFailed, IllegalSaslStateError) as exc:
            sec = conn.cluster.security
            raise AuthenticationError(
                f"cluster.security: {address} refused user {sec.username!r} with "
                f"{sec.sasl_mechanism}: {exc}. Check username and the password's variable"
            ) from exc
        except UnsupportedSaslMechanismError as exc:
            raise AuthenticationError(f"cluster.security.sasl_mechanism: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise TlsTrustError(
                f"cluster.security.ssl_cafile: the certificate of {address} is not trusted "
                f"({exc.verify_message}); set ssl_cafile to the PEM file of the CA that "
                "signed it"
            ) from exc
        except ssl.SSLError as exc:
            raise TlsTrustError(
                f"cluster.security.protocol: no TLS session with {address} ({exc.reason}): "
                "is it a TLS listener?"
            ) from exc
        except (ConnectionResetError, KafkaConnectionError) as exc:
            if isinstance(exc, KafkaConnectionError) and not str(exc).endswith("closed"):
                log.debug("access check of %s inconclusive: %r", address, exc)
                continue
            protocol = conn.cluster.security.protocol
            raise AccessError(
                f"cluster.security.protocol: {address} hung up on a {protocol} handshake: "
                f"is it a {protocol} listener?"
            ) from exc
        except TimeoutError:
            log.debug("access check of %s: no answer in %.0f s", address, timeout_s)
            mute += 1
        except (OSError, KafkaError) as exc:
            log.debug("access check of %s inconclusive: %r", address, exc)
    if mute and not answered:
        raise UnreachableError(
            f"no answer from the cluster at {conn.bootstrap_servers} within {timeout_s:.0f} s: "
            "check cluster.bootstrap_servers (and that the cluster is up)"
        )
