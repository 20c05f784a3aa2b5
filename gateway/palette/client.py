"""The only module that talks to Palette: one ``httpx.AsyncClient`` per backend, created at
startup, with Palette's headers, paging and error conventions.

* Authentication is the ``ApiKey`` header, project scope the ``ProjectUid`` header. The key
  lives only in the client's default headers: it is never logged, never part of a result
  and scrubbed from any error text that might echo it.
* Lists come at most 50 a page; ``_paged`` follows ``listmeta.continue`` up to a bound.
* Idempotent calls (GETs, searches, validation, PUT) are retried on 429 and 5xx and on
  transport errors, with exponential backoff and full jitter, honouring ``Retry-After``;
  retries and each delay are bounded. Creates and deletes are never retried: a lost
  answer must not become a second cluster or a surprise.
* Errors are raised as ``gateway.errors`` types with Palette's ``v1Error`` message:

  ============ =====================
  status       exception
  ============ =====================
  400, 422     ``Invalid``
  401, 403     ``Forbidden``
  404          ``NotFound``
  409          ``Conflict``
  429          ``RateLimited``
  5xx, network ``BackendUnavailable``
  ============ =====================
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

from gateway.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
)
from gateway.settings import Settings

__all__ = ["PAGE_LIMIT", "PaletteClient", "Transport", "base_url_from"]

log = logging.getLogger(__name__)

PAGE_LIMIT = 50

Transport = httpx.AsyncBaseTransport
"""What tests hand the client instead of the network (``httpx.ASGITransport`` over the fake)."""
MAX_PAGES = 200  # 10 000 items: beyond that a list is a runaway, not an answer
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_MESSAGE = 300


def base_url_from(host: str) -> str:
    """``PALETTE_HOST`` as a base URL: a bare host means HTTPS; plain HTTP is accepted for
    loopback only (the fake), so the API key never crosses a network in clear text."""
    url = host if "://" in host else f"https://{host}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"PALETTE_HOST {host!r} is not a host name or an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError("PALETTE_HOST must use https unless it is a loopback address")
    return url.rstrip("/")


class PaletteClient:
    """Async Palette API client. Use as an async context manager, or call ``aclose``."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        project_uid: str | None,
        timeout: float,
        max_retries: int = 3,
        max_backoff: float = 10.0,
        backoff_base: float = 0.2,
        transport: Transport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise ConfigError("PALETTE_API_KEY is empty")
        headers = {"ApiKey": api_key, "Accept": "application/json"}
        if project_uid:
            headers["ProjectUid"] = project_uid
        self._secret = api_key
        self._max_retries = max_retries
        self._max_backoff = max_backoff
        self._backoff_base = backoff_base
        self._sleep = sleep  # injectable so tests observe backoff without waiting
        self._http = httpx.AsyncClient(
            base_url=base_url_from(base_url),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            transport=transport,
            follow_redirects=False,  # a redirect would carry the ApiKey header elsewhere
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: Transport | None = None) -> Self:
        if not settings.palette_host or settings.palette_api_key is None:
            raise ConfigError("PALETTE_HOST and PALETTE_API_KEY must both be set")
        return cls(
            base_url=settings.palette_host,
            api_key=settings.palette_api_key.get_secret_value(),
            project_uid=settings.palette_project_uid,
            timeout=settings.palette_timeout_seconds,
            max_retries=settings.palette_max_retries,
            max_backoff=settings.palette_max_backoff_seconds,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the API ------------------------------------------------------------------------
    async def search_clusters(self, filter_spec: dict[str, Any]) -> list[dict[str, Any]]:
        """``POST /v1/dashboard/spectroclusters/search``: ``v1SpectroClusterSummary`` items."""
        return await self._paged("POST", "/v1/dashboard/spectroclusters/search", filter_spec)

    async def get_cluster(self, uid: str) -> dict[str, Any]:
        """``GET /v1/spectroclusters/{uid}``: a ``v1SpectroCluster``."""
        return await self._json("GET", f"/v1/spectroclusters/{_seg(uid)}")

    async def cluster_overview(self, uid: str) -> dict[str, Any]:
        """``GET /v1/dashboard/spectroclusters/{uid}/overview``: a ``v1SpectroClusterUidSummary``."""
        return await self._json("GET", f"/v1/dashboard/spectroclusters/{_seg(uid)}/overview")

    async def cluster_events(self, uid: str) -> list[dict[str, Any]]:
        """``GET /v1/events/components/spectrocluster/{uid}``: ``v1Event`` items."""
        return await self._paged("GET", f"/v1/events/components/spectrocluster/{_seg(uid)}", None)

    async def cluster_cost(self, uid: str, *, start: str, end: str, period_minutes: int) -> dict[str, Any]:
        """``GET /v1/dashboard/spectroclusters/{uid}/cost``: a ``v1SpectroClusterCostSummary``."""
        params = {"startTime": start, "endTime": end, "period": str(period_minutes)}
        return await self._json("GET", f"/v1/dashboard/spectroclusters/{_seg(uid)}/cost", params=params)

    async def list_profiles(self, filter_spec: dict[str, Any]) -> list[dict[str, Any]]:
        """``POST /v1/dashboard/clusterprofiles``: ``v1ClusterProfileSummary`` items."""
        return await self._paged("POST", "/v1/dashboard/clusterprofiles", filter_spec)

    async def get_profile(self, uid: str) -> dict[str, Any]:
        """``GET /v1/clusterprofiles/{uid}``: a ``v1ClusterProfile``."""
        return await self._json("GET", f"/v1/clusterprofiles/{_seg(uid)}")

    async def search_packs(self, filter_spec: dict[str, Any]) -> list[dict[str, Any]]:
        """``POST /v1/packs/search``: ``v1PackMetadata`` items."""
        return await self._paged("POST", "/v1/packs/search", filter_spec)

    async def validate_cluster(self, cloud_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/spectroclusters/{cloudType}/validate``: a ``v1SpectroClusterValidatorResponse``.
        Changes nothing, so it is retried like a read."""
        return await self._json("POST", f"/v1/spectroclusters/{_seg(cloud_type)}/validate", body=body)

    async def create_cluster(self, cloud_type: str, body: dict[str, Any]) -> str:
        """``POST /v1/spectroclusters/{cloudType}``: the new cluster's uid. Never retried."""
        path = f"/v1/spectroclusters/{_seg(cloud_type)}"
        created = await self._json("POST", path, body=body, idempotent=False)
        uid = created.get("uid")
        if not isinstance(uid, str) or not uid:
            raise BackendUnavailable("Palette created the cluster but returned no uid")
        return uid

    async def delete_cluster(self, uid: str) -> None:
        """``DELETE /v1/spectroclusters/{uid}``. Never retried."""
        await self._send("DELETE", f"/v1/spectroclusters/{_seg(uid)}", idempotent=False)

    async def patch_cluster_profiles(self, uid: str, body: dict[str, Any]) -> None:
        """``PATCH /v1/spectroclusters/{uid}/profiles`` with a ``v1SpectroClusterProfiles``:
        adds or replaces the named profiles, keeps the others. Never retried."""
        await self._send("PATCH", f"/v1/spectroclusters/{_seg(uid)}/profiles", body=body, idempotent=False)

    # -- plumbing -----------------------------------------------------------------------
    async def _paged(self, method: str, path: str, body: dict[str, Any] | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": str(PAGE_LIMIT)}
        for _ in range(MAX_PAGES):
            page = await self._json(method, path, params=params, body=body)
            chunk = page.get("items")
            if not isinstance(chunk, list):
                raise BackendUnavailable(f"Palette answered {path} without an items list")
            items.extend(item for item in chunk if isinstance(item, dict))
            token = (page.get("listmeta") or {}).get("continue")
            if not token:
                return items
            params = {"limit": str(PAGE_LIMIT), "continue": str(token)}
        raise BackendUnavailable(f"Palette kept paging {path} beyond {MAX_PAGES * PAGE_LIMIT} items")

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        response = await self._send(method, path, params=params, body=body, idempotent=idempotent)
        try:
            data = response.json()
        except ValueError as exc:
            raise BackendUnavailable(f"Palette answered {method} {path} with a non-JSON body") from exc
        if not isinstance(data, dict):
            raise BackendUnavailable(f"Palette answered {method} {path} with an unexpected document")
        return data

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        attempts = 1 + (self._max_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._http.request(method, path, params=params, json=body)
            except httpx.TransportError as exc:
                if last:
                    raise BackendUnavailable(
                        f"Palette could not be reached for {method} {path} ({type(exc).__name__})"
                    ) from exc
                await self._sleep(self._delay(attempt, None))
                continue
            if response.status_code < 300:
                return response
            if response.status_code < 400:
                raise BackendUnavailable(
                    f"Palette redirected {method} {path}; redirects are not followed (the key would travel)"
                )
            if response.status_code in _RETRY_STATUSES and not last:
                delay = self._delay(attempt, response.headers.get("retry-after"))
                log.info(
                    "palette %s %s: %d, retry %d in %.2fs",
                    method,
                    path,
                    response.status_code,
                    attempt + 1,
                    delay,
                )
                await self._sleep(delay)
                continue
            raise self._error(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            told = _parse_retry_after(retry_after)
            if told is not None:
                return min(told, self._max_backoff)
        # Full jitter: spreads the retries of concurrent calls instead of synchronising them.
        return random.uniform(0, min(self._max_backoff, self._backoff_base * 2**attempt))  # noqa: S311

    def _error(self, method: str, path: str, response: httpx.Response) -> BackendError:
        status = response.status_code
        code, message = "", ""
        try:
            body = response.json()
            if isinstance(body, dict):
                code, message = str(body.get("code") or ""), str(body.get("message") or "")
        except ValueError:
            pass
        message = self._scrub(message)[:_MAX_MESSAGE] or response.reason_phrase or "no message"
        label = f"{status} {self._scrub(code)[:60]}".strip()
        text = f"Palette refused {method} {path} ({label}): {message}"
        if status in (400, 422):
            return Invalid(text)
        if status in (401, 403):
            return Forbidden(text)
        if status == 404:
            return NotFound(text)
        if status == 409:
            return Conflict(text)
        if status == 429:
            return RateLimited(f"{text}; retries exhausted, try again later")
        return BackendUnavailable(text)

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "<redacted>") if self._secret else text


def _seg(value: str) -> str:
    """One path segment: arguments are validated already, this keeps ``/`` or ``..`` inert."""
    return quote(value, safe="")


def _parse_retry_after(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
