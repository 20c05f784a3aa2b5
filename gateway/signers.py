"""SSH signatures on approvals, checked the way git checks ``gpg.ssh.allowedSignersFile``.

An approver signs the approval statement with their own SSH key, as
``ssh-keygen -Y sign -n policy-gateway-approval -f KEY`` does (the ``sshsig`` format). The
gateway verifies it in-process with the ``sshsig`` library (on ``cryptography``) against an
*allowed signers* file in ssh-keygen's format, one line per key::

    bob@example.com,bob ssh-ed25519 AAAA... bob's laptop
    "alice@example.com" namespaces="policy-gateway-approval",valid-before="20270101" ssh-rsa AAAA...

The first field is a comma-separated list of principal patterns (``*`` and ``?`` wildcards,
``!`` negates), matched against the approver's subject. Supported options: ``namespaces``
(the key signs approvals only if it lists ``policy-gateway-approval``), ``valid-after`` and
``valid-before`` (``YYYYMMDD[HHMM[SS]]``, UTC, compared with the statement's time).
``cert-authority`` lines are refused: certificates are not supported. Key types: Ed25519 and
RSA (``rsa-sha2-256`` / ``rsa-sha2-512`` signatures), what ``sshsig`` verifies.

Revocation: delete the line, or list the public key in the *revoked signers* file (one
OpenSSH public key per line, like ``ssh-keygen -Y verify -r``). Both files are re-read when
they change, so a revocation applies to the next verification (the executor verifies every
approval again right before it runs an action). A file that turns unreadable or malformed
after start-up trusts no key until it is fixed.

``sign`` makes the same signatures in Python from a private key object; the CLI signs with
``ssh-keygen`` instead, so keys held by ssh-agent, protected by a passphrase or on a hardware
token work as they do for git.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import sshsig
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sshsig.allowed_signers import AllowedSigner
from sshsig.binary_io import SshWriter
from sshsig.sshsig import SshsigSignature, SshsigWrapper, ssh_enarmor_sshsig

from gateway.errors import ConfigError, ProofRefused

__all__ = ["NAMESPACE", "AllowedSigners", "SignerKey", "key_fingerprint", "sign"]

log = logging.getLogger(__name__)

NAMESPACE: Final[str] = "policy-gateway-approval"
_HASHES: Final[frozenset[bytes]] = frozenset({b"sha256", b"sha512"})
_MAX_SIGNATURE_CHARS: Final[int] = 8192
_ARMOR_START: Final[str] = "-----BEGIN SSH SIGNATURE-----"


def key_fingerprint(key: sshsig.PublicKey) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return key.sha256_str()


@dataclass(frozen=True)
class SignerKey:
    """One line of the allowed signers file."""

    patterns: tuple[str, ...]
    key: sshsig.PublicKey
    namespaces: tuple[str, ...] | None
    valid_after: datetime | None
    valid_before: datetime | None
    line: int

    def names(self, principal: str) -> bool:
        """ssh's pattern-list match: any positive pattern matches and no negated one does."""
        matched = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatchcase(principal, pattern[1:] if negated else pattern):
                if negated:
                    return False
                matched = True
        return matched

    def valid_at(self, moment: datetime) -> bool:
        if self.valid_after is not None and moment < self.valid_after:
            return False
        return self.valid_before is None or moment < self.valid_before


def _ssh_time(value: str, path: Path, number: int) -> datetime:
    # ssh-keygen's format: YYYYMMDD[HHMM[SS]] (optionally with a trailing Z); read as UTC.
    text = value.rstrip("Zz")
    layouts = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    try:
        return datetime.strptime(text, layouts[len(text)]).replace(tzinfo=UTC)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{path}, line {number}: {value!r} is not YYYYMMDD[HHMM[SS]]") from exc


def _parse_line(line: str, path: Path, number: int) -> SignerKey:
    try:
        entry = AllowedSigner.parse(line)
        key = sshsig.PublicKey.from_openssh_str(f"{entry.key_type} {entry.base64_key}")
    except NotImplementedError as exc:
        raise ConfigError(
            f"{path}, line {number}: key type not supported (use ssh-ed25519 or ssh-rsa)"
        ) from exc
    except (ValueError, IndexError) as exc:
        raise ConfigError(
            f"{path}, line {number}: expected `principals [options] key-type base64-key [comment]`"
        ) from exc
    options = entry.options or {}
    if "cert-authority" in options:
        raise ConfigError(f"{path}, line {number}: cert-authority keys are not supported")
    namespaces = options.get("namespaces")
    return SignerKey(
        patterns=tuple(p for p in entry.principals.split(",") if p),
        key=key,
        namespaces=tuple(namespaces.split(",")) if namespaces is not None else None,
        valid_after=_ssh_time(options["valid-after"], path, number) if "valid-after" in options else None,
        valid_before=_ssh_time(options["valid-before"], path, number) if "valid-before" in options else None,
        line=number,
    )


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}"
        ) from exc
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            found.append((number, line))
    return found


def _load(allowed: Path, revoked: Path | None) -> tuple[tuple[SignerKey, ...], frozenset[sshsig.PublicKey]]:
    signers = tuple(_parse_line(line, allowed, n) for n, line in _lines(allowed))
    banned: set[sshsig.PublicKey] = set()
    if revoked is not None and revoked.exists():
        for number, line in _lines(revoked):
            try:
                banned.add(sshsig.PublicKey.from_openssh_str(line))
            except (ValueError, NotImplementedError) as exc:
                raise ConfigError(f"{revoked}, line {number}: expected an OpenSSH public key") from exc
    return signers, frozenset(banned)


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class AllowedSigners:
    """The allowed signers (and revoked keys) files, re-read when either changes.

    Construction raises ``ConfigError`` for a missing or malformed file: a gateway does not
    start with keys it cannot read. Afterwards a broken file trusts no key until fixed.
    """

    def __init__(self, path: Path, revoked: Path | None = None) -> None:
        self.path = path
        self.revoked_path = revoked
        self._lock = threading.Lock()
        self._stamps = (_stamp(path), _stamp(revoked))
        if self._stamps[0] is None:
            raise ConfigError(f"allowed signers file {path} does not exist")
        self._signers, self._revoked = _load(path, revoked)

    def _refresh(self) -> None:
        stamps = (_stamp(self.path), _stamp(self.revoked_path))
        if stamps == self._stamps:
            return
        with self._lock:
            if stamps == self._stamps:
                return
            try:
                self._signers, self._revoked = _load(self.path, self.revoked_path)
            except ConfigError as exc:
                log.error("trusting no approval signature until this is fixed: %s", exc)  # noqa: TRY400
                self._signers, self._revoked = (), frozenset()
            self._stamps = stamps

    def entries(self) -> tuple[SignerKey, ...]:
        self._refresh()
        return self._signers

    def verify(self, message: str, armored: str, *, principal: str, at: datetime) -> sshsig.PublicKey:
        """The key that made ``armored`` over ``message`` in our namespace, if that key may
        sign approvals for ``principal`` at ``at``. Raises ``ProofRefused`` naming what is
        wrong: malformed, wrong namespace or hash, not matching, revoked, unknown key."""
        self._refresh()
        key = check(message, armored)
        fingerprint = key_fingerprint(key)
        if key in self._revoked:
            raise ProofRefused(f"the signing key {fingerprint} is revoked ({self.revoked_path})")
        listed = [s for s in self._signers if s.key == key and s.names(principal)]
        if not listed:
            raise ProofRefused(
                f"the signing key {fingerprint} is not an allowed signer for {principal} in {self.path}"
            )
        if not any(s.namespaces is None or NAMESPACE in s.namespaces for s in listed):
            raise ProofRefused(f"the key {fingerprint} may not sign in namespace {NAMESPACE}")
        if not any(s.valid_at(at) for s in listed):
            raise ProofRefused(f"the key {fingerprint} is not valid at {at.isoformat()} (valid-after/before)")
        return key


def check(message: str, armored: str) -> sshsig.PublicKey:
    """The public key embedded in a valid signature of ``message`` in our namespace (no
    trust decision: ``AllowedSigners.verify`` makes it). Raises ``ProofRefused``."""
    if not isinstance(armored, str) or len(armored) > _MAX_SIGNATURE_CHARS or _ARMOR_START not in armored:
        raise ProofRefused(f"the signature is not an armored SSH signature ({_ARMOR_START} ...)")
    try:
        outer = SshsigSignature.from_armored(armored)
    except (ValueError, NotImplementedError, IndexError) as exc:
        raise ProofRefused("the SSH signature is malformed (not the sshsig format)") from exc
    namespace = outer.namespace.decode("ascii", "replace")
    if namespace != NAMESPACE:
        raise ProofRefused(f"the signature was made for namespace {namespace!r}, not {NAMESPACE!r}")
    if outer.hash_algo not in _HASHES:
        raise ProofRefused("the signature uses a hash other than sha256 or sha512")
    try:
        return sshsig.check_signature(message.encode("utf-8"), armored, NAMESPACE)
    except sshsig.InvalidSignature as exc:
        raise ProofRefused("the signature does not match the statement (signed something else?)") from exc
    # The library asserts on a signature blob whose algorithm does not match its key.
    except (ValueError, NotImplementedError, AssertionError, IndexError) as exc:
        raise ProofRefused("the SSH signature is malformed or uses an unsupported key type") from exc


def sign(message: str, key: ed25519.Ed25519PrivateKey) -> str:
    """An armored ``ssh-keygen -Y sign -n policy-gateway-approval`` signature of ``message``
    made in Python (Ed25519 keys): for tools, benchmarks and tests. People sign with the CLI."""
    public_blob = base64.b64decode(
        key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).split()[1]
    )
    digest = hashlib.sha512(message.encode("utf-8")).digest()
    to_sign = SshsigWrapper(namespace=NAMESPACE.encode(), hash_algo=b"sha512", hash=digest).to_bytes()
    inner = SshWriter(io.BytesIO())
    inner.write_string(b"ssh-ed25519")
    inner.write_string(key.sign(to_sign))
    outer = SshWriter(io.BytesIO())
    outer.write(b"SSHSIG")
    outer.write_uint32(SshsigSignature.VERSION)
    outer.write_string(public_blob)
    outer.write_string(NAMESPACE.encode())
    outer.write_string(b"")
    outer.write_string(b"sha512")
    outer.write_string(inner.output_fh.getvalue())
    return ssh_enarmor_sshsig(outer.output_fh.getvalue())
