"""Bearer tokens for the HTTP transport: a file of token hashes mapped to principals.

The tokens file holds one JSON object per line, ``{"sha256": <hex of the token>,
"subject": ..., "groups": [...]}``; blank lines and lines starting with ``#`` are skipped.
Only hashes are stored, so a leaked file grants nothing. A presented token is hashed and
compared against every entry with ``hmac.compare_digest``, so the time taken does not
depend on which entry (if any) matches.

The file is re-read when its size, mtime or inode changes (a new token or a revocation
takes effect on the next request). A file that becomes unreadable or malformed after
start-up fails closed: no token is accepted until it is fixed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.contracts import Principal
from gateway.errors import AuthError, ConfigError
from gateway.identity import ANONYMOUS, PRINCIPAL_SCOPE_KEY
from gateway.oidc import OidcVerifier, looks_like_jwt

__all__ = [
    "UNAUTHORIZED",
    "BearerAuthMiddleware",
    "TokenEntry",
    "TokenStore",
    "append_token",
    "hash_token",
    "new_token",
]

log = logging.getLogger(__name__)

# Prefix makes a leaked token recognisable to secret scanners.
_TOKEN_PREFIX = "pgw_"  # noqa: S105 - a prefix, not a secret
_MAX_TOKEN_LENGTH = 512
_MAX_JWT_LENGTH = 16 * 1024


class TokenEntry(BaseModel):
    """One line of the tokens file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    subject: Annotated[str, Field(min_length=1, max_length=256)]
    groups: tuple[str, ...] = ()
    comment: str | None = None


def new_token() -> str:
    """A fresh random bearer token (256 bits)."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _parse(path: Path) -> tuple[TokenEntry, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read tokens file {path}: {exc.strerror or 'I/O error'}") from exc
    entries: list[TokenEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entries.append(TokenEntry.model_validate_json(stripped))
        except ValidationError as exc:
            # The line may hold a pasted token: name the line, never echo it.
            raise ConfigError(
                f"tokens file {path}, line {number}: expected "
                '{"sha256": "<64 hex>", "subject": "...", "groups": [...]}'
            ) from exc
    return tuple(entries)


@dataclass(frozen=True)
class _Stamp:
    inode: int
    size: int
    mtime_ns: int


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _Stamp(st.st_ino, st.st_size, st.st_mtime_ns)


class TokenStore:
    """The principals behind the tokens in one file, reloaded when the file changes.

    Construction raises ``ConfigError`` when the file is malformed: a gateway does not
    start with a broken tokens file. A file that does not exist yet holds no tokens, so a
    fresh deployment starts refusing everyone until `gateway token create` writes it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self._entries: tuple[TokenEntry, ...] = ()
        if self._stamp is None:
            log.warning(
                "tokens file %s does not exist yet: every token is refused until "
                "`gateway token create` writes it",
                path,
            )
        else:
            self._entries = _parse(path)

    def __len__(self) -> int:
        return len(self.entries())

    def entries(self) -> tuple[TokenEntry, ...]:
        """The current entries: hashes and principals, never tokens."""
        self._refresh()
        return self._entries

    def _refresh(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            entries: tuple[TokenEntry, ...] = ()
            if stamp is None:
                log.error("rejecting every token: tokens file %s disappeared", self.path)
            else:
                try:
                    entries = _parse(self.path)
                except ConfigError as exc:
                    # The message names the file and line only; the traceback adds nothing.
                    log.error("rejecting every token until the tokens file is fixed: %s", exc)  # noqa: TRY400
            self._entries = entries
            self._stamp = stamp
            log.info("tokens file reloaded: %d entries", len(entries))

    def authenticate(self, token: str) -> Principal | None:
        """The principal for ``token``, or ``None`` when no entry matches."""
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            return None
        self._refresh()
        presented = hash_token(token).encode("ascii")
        match: TokenEntry | None = None
        # Every entry is compared, whatever matched, so timing says nothing about the file.
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.sha256.encode("ascii")) and match is None:
                match = entry
        if match is None:
            return None
        return Principal(subject=match.subject, groups=match.groups, transport="http", authenticated=True)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as existing:
        if existing.seek(0, os.SEEK_END) == 0:
            return True
        existing.seek(-1, os.SEEK_END)
        return existing.read(1) == b"\n"


def append_token(path: Path, *, subject: str, groups: tuple[str, ...], comment: str | None = None) -> str:
    """Create a token for ``subject``, append its hash to ``path`` (created 0600 when absent)
    and return the token itself, which is stored nowhere."""
    token = new_token()
    entry = TokenEntry(sha256=hash_token(token), subject=subject, groups=groups, comment=comment)
    lead = ""
    if path.exists():
        _parse(path)  # refuse to append to a file the gateway could not read
        if not _ends_with_newline(path):
            lead = "\n"  # a hand-edited last line without its newline must stay its own line
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(lead + entry.model_dump_json(exclude_none=True) + "\n")
    return token


AuthFailure = Literal["missing_token", "invalid_token"]

UNAUTHORIZED = -32001
"""JSON-RPC error code of a refused credential (the range JSON-RPC leaves to servers)."""


class BearerAuthMiddleware:
    """Authenticates every HTTP request except those to ``public_paths``.

    A valid ``Authorization: Bearer`` token (from the tokens file, or a JWT the ``oidc``
    verifier accepts) puts its principal in the ASGI scope under ``PRINCIPAL_SCOPE_KEY``. A
    token that is present but unknown is always refused (it is never downgraded to
    anonymous, so a revoked token cannot keep reading). Without a token,
    ``anonymous="reject"`` answers 401 and ``"read-only"`` passes on ``ANONYMOUS``, whom
    policy limits to reads. On ``jsonrpc_paths`` (MCP) the 401 body is a JSON-RPC error,
    which MCP clients show their user; elsewhere (the approvals API) it is
    ``{"error": <failure>, "message": ...}``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenStore | None,
        anonymous: Literal["reject", "read-only"],
        public_paths: Collection[str] = (),
        on_failure: Callable[[AuthFailure], None] | None = None,
        oidc: OidcVerifier | None = None,
        jsonrpc_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.jsonrpc_paths = frozenset(jsonrpc_paths)
        self.oidc = oidc
        self.tokens = tokens
        self.anonymous = anonymous
        self.public_paths = frozenset(public_paths)
        self.on_failure = on_failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Nothing upstream may pre-seed an identity.
        scope.pop(PRINCIPAL_SCOPE_KEY, None)
        if scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        why: str | None = None
        try:
            principal, failure = await self._principal(Headers(scope=scope).get("authorization"))
        except AuthError as exc:
            principal, failure, why = None, "invalid_token", str(exc)
        if failure is not None:
            if self.on_failure is not None:
                self.on_failure(failure)
            jsonrpc = str(scope.get("path", "")).rstrip("/") in self.jsonrpc_paths
            await _unauthorized(failure, why, jsonrpc=jsonrpc)(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)

    async def _principal(self, header: str | None) -> tuple[Principal | None, AuthFailure | None]:
        """Raises ``AuthError`` for a JWT the OIDC verifier refuses (its message says why)."""
        if header is None or not header.strip():
            return (ANONYMOUS, None) if self.anonymous == "read-only" else (None, "missing_token")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or len(token) > _MAX_JWT_LENGTH:
            return None, "invalid_token"
        if self.oidc is not None and looks_like_jwt(token):
            return await self.oidc.authenticate(token), None
        principal = self.tokens.authenticate(token) if self.tokens is not None else None
        return (principal, None) if principal is not None else (None, "invalid_token")


def _unauthorized(failure: AuthFailure, why: str | None = None, *, jsonrpc: bool = False) -> JSONResponse:
    """401 naming the failure. For MCP (``jsonrpc``) the body is a JSON-RPC error: MCP
    clients show its ``message`` to their user, and replace any other body by a generic
    "Server returned an error response"."""
    if failure == "missing_token":
        challenge = 'Bearer realm="policy-gateway"'
        message = "this gateway needs a bearer token: send `Authorization: Bearer <token>`"
    else:
        challenge = 'Bearer realm="policy-gateway", error="invalid_token"'
        message = (
            "the bearer token is not valid (unknown or revoked): ask an operator for a token "
            "(`gateway token create`)"
        )
        if why is not None:
            message = f"the bearer token is not valid: {why}"
    body: dict[str, object] = {"error": failure, "message": message}
    if jsonrpc:
        error = {"code": UNAUTHORIZED, "message": message, "data": failure}
        body = {"jsonrpc": "2.0", "id": None, "error": error}
    return JSONResponse(
        body,
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )
