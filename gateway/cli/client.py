"""The approvals API's client: what ``gateway queue`` uses unless ``--local`` is given.

It talks to ``GATEWAY_URL`` with the approver's bearer token, from ``GATEWAY_TOKEN`` or
from ``GATEWAY_TOKEN_FILE``. A token file readable by group or others is refused, as ssh
refuses an unprotected private key. The API's error kinds come back as the gateway's own
exceptions, so the CLI's exit codes are the same in both modes.
"""

from __future__ import annotations

import stat
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx

from gateway.errors import (
    ApprovalRefused,
    AuthError,
    ClientError,
    ConfigError,
    GatewayError,
    GatewayUnreachable,
    InvalidTransition,
    PolicyUnavailable,
    QueueError,
    UnknownAction,
)
from gateway.settings import Settings

__all__ = ["ApprovalsClient", "read_token"]

_TIMEOUT: Final[httpx.Timeout] = httpx.Timeout(30.0, connect=5.0)
_ERRORS: Final[dict[str, type[GatewayError]]] = {
    "unknown_action": UnknownAction,
    "invalid_state": InvalidTransition,
    "approval_refused": ApprovalRefused,
    "rollback_refused": ApprovalRefused,
    "policy_unavailable": PolicyUnavailable,
    "storage": QueueError,
    "missing_token": AuthError,
    "invalid_token": AuthError,
}


def read_token(settings: Settings) -> str:
    """The bearer token: ``GATEWAY_TOKEN``, else the first line of ``GATEWAY_TOKEN_FILE``."""
    if settings.token is not None:
        return settings.token.get_secret_value().strip()
    path = settings.token_file
    if path is None:
        raise AuthError("no token: set GATEWAY_TOKEN or GATEWAY_TOKEN_FILE (a file only you can read)")
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuthError(
                f"token file {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}): "
                f"refusing to use it; run `chmod 600 {path}`"
            )
        token = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise AuthError(f"cannot read token file {path}: {exc.strerror or 'I/O error'}") from exc
    if not token or not token[0].strip():
        raise AuthError(f"token file {path} is empty")
    return token[0].strip()


class ApprovalsClient:
    """One HTTP client for one command; ``with ApprovalsClient(settings) as api: ...``."""

    def __init__(self, settings: Settings) -> None:
        url = (settings.url or "").strip().rstrip("/")
        if not url:
            raise ConfigError(
                "no gateway URL: set GATEWAY_URL (e.g. http://127.0.0.1:8000) and GATEWAY_TOKEN, "
                "or pass --local for a single-user stdio set-up"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("GATEWAY_URL must be http(s)://host[:port]")
        headers = {"Authorization": f"Bearer {read_token(settings)}", "Accept": "application/json"}
        # trust_env=False: a proxy from the environment never sees the approver's token.
        self._http = httpx.Client(base_url=url, headers=headers, timeout=_TIMEOUT, trust_env=False)

    def __enter__(self) -> ApprovalsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        try:
            resp = self._http.request(
                method, "/api/v1" + path, json=body, params={k: v for k, v in params.items() if v is not None}
            )
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(
                f"the gateway at {self._http.base_url} did not answer ({type(exc).__name__})"
            ) from exc
        try:
            data = resp.json()
        except ValueError as exc:
            raise ClientError(
                f"{self._http.base_url} answered HTTP {resp.status_code} without JSON: not a policy gateway?"
            ) from exc
        if resp.status_code < 400:
            return data
        message = data.get("message") if isinstance(data, dict) else None
        kind = data.get("error") if isinstance(data, dict) else None
        error = _ERRORS.get(str(kind), ClientError if resp.status_code == 400 else GatewayError)
        raise error(str(message or f"the gateway answered HTTP {resp.status_code}"))

    @staticmethod
    def _ref(ref: str) -> str:
        return "/actions/" + quote(ref, safe="")

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/whoami")
        return result

    def list_actions(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/actions", state=state, limit=limit)
        return result

    def show(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", self._ref(ref))
        return result

    def statement(self, ref: str, reason: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", self._ref(ref) + "/statement", {"reason": reason})
        return result

    def approve(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", self._ref(ref) + "/approve", body)
        return result

    def deny(self, ref: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", self._ref(ref) + "/deny", {"reason": reason})
        return result

    def cancel(self, ref: str, reason: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", self._ref(ref) + "/cancel", {"reason": reason})
        return result

    def rollback(self, ref: str, force: bool) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", self._ref(ref) + "/rollback", {"force": force})
        return result
