"""The sandbox's own certificate authority, for the one TLS hop the API server makes itself.

The API server proxies ``pods/{name}/log`` to the node's kubelet endpoint over HTTPS. In the
sandbox that endpoint is kwok's server; kwok serves a certificate signed by this CA for
127.0.0.1, and the API server verifies it (``--kubelet-certificate-authority``) instead of
skipping verification, which is what it does when no kubelet CA is configured.

Keys are written owner-only and kept with the sandbox state, so a restarted sandbox keeps
its CA. Certificates are valid for a year; an expired one is issued again on start.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertPair", "SandboxCA"]

_VALIDITY = dt.timedelta(days=365)
_RENEW_BEFORE = dt.timedelta(days=7)
_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _fresh(path: Path) -> bool:
    """Whether the certificate at ``path`` exists and stays valid for a while yet."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - _RENEW_BEFORE > dt.datetime.now(dt.UTC)


class SandboxCA:
    """A self-signed CA under ``directory`` (``ca.crt``, ``ca.key``) that issues serving
    certificates for loopback addresses."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pair = CertPair(directory / "ca.crt", directory / "ca.key")

    def ensure(self) -> CertPair:
        if not (_fresh(self.pair.cert) and self.pair.key.exists()):
            self._create()
        return self.pair

    def serving(self, name: str, *, ip: str = "127.0.0.1") -> CertPair:
        """``<name>.crt`` / ``<name>.key`` for a server on ``ip``, signed by this CA."""
        self.ensure()
        pair = CertPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        if _fresh(pair.cert) and pair.key.exists() and self._signed_by_me(pair.cert):
            return pair
        ca_key = serialization.load_pem_private_key(self.pair.key.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.pair.cert.read_bytes())
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{self.pair.key} is not the sandbox CA key")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(pair.key, _key_pem(key))
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def _signed_by_me(self, path: Path) -> bool:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(self.pair.cert.read_bytes())
        return cert.issuer == ca_cert.subject

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "policy-gateway sandbox CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .add_extension(_CA_USAGE, True)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.pair.key, _key_pem(key))
        self.pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
