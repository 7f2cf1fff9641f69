"""A throwaway certificate authority and a broker certificate, for the secured embedded broker.

Made with the JDK's `keytool`: it ships with the Java runtime the broker needs anyway (no new
dependency), and it writes the PKCS12 keystore Kafka reads as it is. Keystore passwords reach
`keytool` through its environment (`-storepass:env`), never its command line.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

VALID_DAYS = 30
_PASSWORD_ENV = "KAFKA_TUNER_KEYSTORE_PASSWORD"  # noqa: S105 - a variable name, not a password


class TlsError(Exception):
    """`keytool` is missing or refused to make a certificate."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateAuthority:
    """A CA: its certificate (PEM, what clients trust) and its key (in a PKCS12 keystore)."""

    ca_file: Path
    keystore: Path
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerTls:
    """What the broker's TLS listeners need, and the CA file its clients must trust."""

    ca_file: Path
    keystore: Path
    """PKCS12: the broker's key and its certificate chain (broker certificate, then the CA)."""
    password: str = field(repr=False)


def _keytool(password: str, *args: str) -> None:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise TlsError("no `keytool` on PATH: it comes with the Java runtime (openjdk-17-jre)")
    done = subprocess.run(
        [keytool, *args],
        env={**os.environ, _PASSWORD_ENV: password},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise TlsError(f"keytool {args[0]} failed: {(done.stdout + done.stderr).strip()}")


def make_ca(directory: Path, *, name: str = "kafka-tuner CA") -> CertificateAuthority:
    """A new self-signed CA in `directory` (`ca.p12`, `ca.pem`)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = CertificateAuthority(
        ca_file=directory / "ca.pem", keystore=directory / "ca.p12", password=secrets.token_hex(16)
    )
    store = ["-keystore", str(ca.keystore), "-storetype", "PKCS12", "-storepass:env", _PASSWORD_ENV]
    _keytool(ca.password, "-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname",
             "secp256r1", "-dname", f"CN={name}", "-ext", "bc:c", "-validity",
             str(VALID_DAYS), *store)  # fmt: skip
    _keytool(ca.password, "-exportcert", "-rfc", "-alias", "ca", "-file", str(ca.ca_file), *store)
    return ca


def broker_tls(directory: Path, *, host: str = "127.0.0.1") -> BrokerTls:
    """A new CA and a broker certificate it signed for `host` (and `localhost`), in `directory`.

    The CA's key stays in its own keystore beside it; only the broker keystore is the broker's.
    """
    ca = make_ca(directory)
    tls = BrokerTls(ca_file=ca.ca_file, keystore=directory / "broker.p12", password=ca.password)
    store = ["-keystore", str(tls.keystore), "-storetype", "PKCS12",
             "-storepass:env", _PASSWORD_ENV]  # fmt: skip
    ca_store = ["-keystore", str(ca.keystore), "-storepass:env", _PASSWORD_ENV]
    request, signed = directory / "broker.csr", directory / "broker.pem"
    _keytool(tls.password, "-genkeypair", "-alias", "broker", "-keyalg", "EC", "-groupname",
             "secp256r1", "-dname", "CN=localhost", "-validity", str(VALID_DAYS),
             *store)  # fmt: skip
    _keytool(tls.password, "-certreq", "-alias", "broker", "-file", str(request), *store)
    san = f"SAN={_san_kind(host)}:{host},DNS:localhost"
    _keytool(ca.password, "-gencert", "-alias", "ca", "-infile", str(request), "-outfile",
             str(signed), "-rfc", "-validity", str(VALID_DAYS), "-ext", san, *ca_store)  # fmt: skip
    _keytool(tls.password, "-importcert", "-alias", "ca", "-file", str(ca.ca_file), "-noprompt",
             *store)  # fmt: skip
    _keytool(tls.password, "-importcert", "-alias", "broker", "-file", str(signed), "-noprompt",
             *store)  # fmt: skip
    request.unlink()
    return tls


def _san_kind(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "DNS"
    return "IP"
