"""Parked calls at rest: sealed with AES-256-GCM, so the queue database alone does not
reveal what a call carries (an applied Secret's values, a Palette body's credentials).

Every parked call is sealed, not only those that visibly carry Secrets: a ConfigMap or a
cluster body can hold credentials too. The fingerprint, the target summary and everything
``queue list`` shows stay in the clear; ``queue show`` opens the call and redacts it as
before, so nothing changes for the approver.

Keys: ``GATEWAY_QUEUE_KEYS_FILE`` (default ``queue.keys`` beside the database, created
0600 with one random key on the gateway's first start) holds lines ``<key-id> <base64 of
32 bytes>``; the first line seals, every line opens. ``GATEWAY_QUEUE_KEY`` (``<key-id>:<base64>``)
takes precedence for sealing, for keys kept in a secret store. Rotation: put a new line at
the top (or set the variable) and restart; rows sealed with older keys stay readable while
their line is kept. A sealed value is ``sealed:v1:<key-id>:<base64 nonce ‖ ciphertext>``,
bound to its action id (authenticated data), so ciphertexts cannot be swapped between rows.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import ConfigError, SealError
from gateway.settings import Settings

__all__ = ["Sealer", "new_key_line", "publish_new_file", "unseal"]

_PREFIX: Final[str] = "sealed:v1:"
_KID: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_NONCE_BYTES: Final[int] = 12


def new_key_line(kid: str | None = None) -> str:
    """A keys-file line with a fresh random 256-bit key."""
    key = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
    return f"{kid or 'k' + secrets.token_hex(4)} {key}"


def _key(kid: str, text: str, where: str) -> AESGCM:
    if not _KID.match(kid):
        raise ConfigError(f"{where}: key id {kid!r} must be 1-32 letters, digits, '_', '.' or '-'")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: the key is not base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{where}: the key must be 32 bytes (AES-256), not {len(raw)}")
    return AESGCM(raw)


class Sealer:
    """Seals with the active key, opens with any known key."""

    def __init__(self, keys: dict[str, AESGCM], active: str) -> None:
        self._keys = keys
        self.active = active

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool) -> Sealer | None:
        """The configured keys; ``create``: make the default keys file if there is none
        (the gateway does, on its first start). ``None`` when there are no keys at all."""
        path = settings.data_file(settings.queue_keys_file, "queue.keys")
        keys: dict[str, AESGCM] = {}
        order: list[str] = []
        if create and settings.queue_key is None and not path.exists():
            _create(path)
        if path.exists():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"cannot read the queue keys file {path}: {exc.strerror}") from exc
            for number, line in enumerate(lines, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                kid, _, text = line.strip().partition(" ")
                keys[kid] = _key(kid, text.strip(), f"{path}, line {number}")
                order.append(kid)
        if settings.queue_key is not None:
            kid, _, text = settings.queue_key.get_secret_value().strip().partition(":")
            keys[kid] = _key(kid, text, "GATEWAY_QUEUE_KEY")
            order.insert(0, kid)
        return cls(keys, order[0]) if order else None

    def opener(self, kid: str) -> AESGCM | None:
        return self._keys.get(kid)

    def seal(self, text: str, bound_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.active].encrypt(nonce, text.encode("utf-8"), bound_to.encode("utf-8"))
        return f"{_PREFIX}{self.active}:{base64.b64encode(nonce + sealed).decode()}"


def unseal(value: str, bound_to: str, sealer: Sealer | None) -> str:
    """``value`` opened, or as it is when it was stored in the clear (before sealing)."""
    if not value.startswith(_PREFIX):
        return value
    kid, _, payload = value[len(_PREFIX) :].partition(":")
    key = sealer.opener(kid) if sealer is not None else None
    if key is None:
        raise SealError(
            f"the stored call of action {bound_to} is sealed with key {kid!r}, which this process does "
            "not hold (GATEWAY_QUEUE_KEYS_FILE / GATEWAY_QUEUE_KEY)"
        )
    try:
        raw = base64.b64decode(payload, validate=True)
        plain = key.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode("utf-8"))
    except (binascii.Error, ValueError, InvalidTag) as exc:
        raise SealError(
            f"the sealed call of action {bound_to} does not open (altered, or another row's)"
        ) from exc
    return plain.decode("utf-8")


def _create(path: Path) -> None:
    """Write a new keys file, published whole: replicas starting together on a shared
    volume never read a half-written one, and the first to publish wins."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "# AES-256-GCM keys sealing parked calls; the first line seals. See docs/approvals.md.\n"
        publish_new_file(path, (text + new_key_line("k1") + "\n").encode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot create the queue keys file {path}: {exc.strerror}") from exc


def publish_new_file(path: Path, content: bytes) -> bool:
    """Create ``path`` (0600) holding ``content`` unless it exists; false if it did. Written
    beside it first and linked into place, so no reader ever sees it partly written."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temporary)
