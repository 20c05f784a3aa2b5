"""The only module that talks to Palette: one ``httpx.AsyncClient`` per backend, created at
startup, with Palette's headers, paging and error conventions.

* Authentication is the ``ApiKey`` header, project scope the ``ProjectUid`` header. The key
  lives only in the client's default headers: it is never logged, never part of a result
  and scrubbed from any error text that might echo it.
* Lists come at most 50 a page; ``_paged`` follows ``listmeta.continue`` up to a bound.
* Every request first takes a token from its endpoint class's bucket
  (``gateway.ratelimit``): cluster profiles (``/v1/clusterprofiles``,
  ``/v1/dashboard/clusterprofiles``) have their own, inside Palette's higher limit for
  them; everything else shares the general one.
* Idempotent calls (GETs, searches, validation, PUT) are retried on 429 and 5xx and on
  transport errors, with exponential backoff and full jitter, honouring ``Retry-After``
  (which also pauses the endpoint class's bucket for every caller). Creates and deletes
  are never retried: a lost answer must not become a second cluster or a surprise.
* Each request has a waiting budget (``palette_rate_limit_wait_seconds``) shared by its
  bucket waits and retry delays: a request that would wait longer fails at once with
  ``RateLimited`` ("rate limited, retry after N s") or, for a 5xx, the last error,
  instead of hanging.
* Every response (and transport failure) is counted in ``gateway_backend_requests_total``
  by operation (the method's name below) and status, and timed.
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
import time
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
from gateway.metrics import METRICS, Metrics
from gateway.ratelimit import TokenBucket, retry_message
from gateway.settings import Settings

__all__ = ["PAGE_LIMIT", "PaletteClient", "PaletteLimits", "Transport", "base_url_from"]

log = logging.getLogger(__name__)

PAGE_LIMIT = 50

Transport = httpx.AsyncBaseTransport
"""What tests hand the client instead of the network (``httpx.ASGITransport`` over the fake)."""
MAX_PAGES = 200  # 10 000 items: beyond that a list is a runaway, not an answer
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_MESSAGE = 300
# Operations on cluster profiles: Palette allows these more requests per second.
_PROFILE_OPERATIONS = frozenset({"list_profiles", "get_profile"})


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


class PaletteLimits:
    """The client-side rate limits: requests/s and burst per endpoint class, and how long
    one request may wait (for its bucket and for retries) before it fails."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        profiles_rate: float,
        profiles_burst: int,
        wait_budget: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self.wait_budget = wait_budget
        counted: dict[str, Any] = {
            "clock": clock,
            "sleep": sleep,
            "metrics": metrics or METRICS,
            "backend": "palette",
        }
        self.general = TokenBucket(rate, burst, name="Palette", **counted)
        self.profiles = TokenBucket(profiles_rate, profiles_burst, name="Palette cluster profiles", **counted)

    @classmethod
    def from_settings(cls, settings: Settings) -> PaletteLimits:
        return cls(
            rate=settings.palette_rate_per_second,
            burst=settings.palette_burst,
            profiles_rate=settings.palette_profiles_rate_per_second,
            profiles_burst=settings.palette_profiles_burst,
            wait_budget=settings.palette_rate_limit_wait_seconds,
        )

    @classmethod
    def unlimited(cls, *, wait_budget: float = 60.0) -> PaletteLimits:
        return cls(rate=0, burst=1, profiles_rate=0, profiles_burst=1, wait_budget=wait_budget)

    def bucket(self, operation: str) -> TokenBucket:
        return self.profiles if operation in _PROFILE_OPERATIONS else self.general


class PaletteClient:
    """Async Palette API client. Use as an async context manager, or call ``aclose``.

    ``limits`` defaults to none on the client side (``from_settings`` applies the
    configured ones) with a 60 s waiting budget per request.
    """

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
        limits: PaletteLimits | None = None,
        metrics: Metrics | None = None,
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
        self._limits = limits or PaletteLimits.unlimited()
        self._metrics = metrics or METRICS
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
            limits=PaletteLimits.from_settings(settings),
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
        path = "/v1/dashboard/spectroclusters/search"
        return await self._paged("search_clusters", "POST", path, filter_spec)

    async def get_cluster(self, uid: str) -> dict[str, Any]:
        """``GET /v1/spectroclusters/{uid}``: a ``v1SpectroCluster``."""
        return await self._json("get_cluster", "GET", f"/v1/spectroclusters/{_seg(uid)}")

    async def cluster_overview(self, uid: str) -> dict[str, Any]:
        """``GET /v1/dashboard/spectroclusters/{uid}/overview``: a ``v1SpectroClusterUidSummary``."""
        path = f"/v1/dashboard/spectroclusters/{_seg(uid)}/overview"
        return await self._json("cluster_overview", "GET", path)

    async def cluster_events(self, uid: str) -> list[dict[str, Any]]:
        """``GET /v1/events/components/spectrocluster/{uid}``: ``v1Event`` items."""
        path = f"/v1/events/components/spectrocluster/{_seg(uid)}"
        return await self._paged("cluster_events", "GET", path, None)

    async def cluster_cost(self, uid: str, *, start: str, end: str, period_minutes: int) -> dict[str, Any]:
        """``GET /v1/dashboard/spectroclusters/{uid}/cost``: a ``v1SpectroClusterCostSummary``."""
        params = {"startTime": start, "endTime": end, "period": str(period_minutes)}
        path = f"/v1/dashboard/spectroclusters/{_seg(uid)}/cost"
        return await self._json("cluster_cost", "GET", path, params=params)

    async def list_profiles(self, filter_spec: dict[str, Any]) -> list[dict[str, Any]]:
        """``POST /v1/dashboard/clusterprofiles``: ``v1ClusterProfileSummary`` items."""
        return await self._paged("list_profiles", "POST", "/v1/dashboard/clusterprofiles", filter_spec)

    async def get_profile(self, uid: str) -> dict[str, Any]:
        """``GET /v1/clusterprofiles/{uid}``: a ``v1ClusterProfile``."""
        return await self._json("get_profile", "GET", f"/v1/clusterprofiles/{_seg(uid)}")

    async def search_packs(self, filter_spec: dict[str, Any]) -> list[dict[str, Any]]:
        """``POST /v1/packs/search``: ``v1PackMetadata`` items."""
        return await self._paged("search_packs", "POST", "/v1/packs/search", filter_spec)

    async def validate_cluster(self, cloud_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/spectroclusters/{cloudType}/validate``: a ``v1SpectroClusterValidatorResponse``.
        Changes nothing, so it is retried like a read."""
        path = f"/v1/spectroclusters/{_seg(cloud_type)}/validate"
        return await self._json("validate_cluster", "POST", path, body=body)

    async def create_cluster(self, cloud_type: str, body: dict[str, Any]) -> str:
        """``POST /v1/spectroclusters/{cloudType}``: the new cluster's uid. Never retried."""
        path = f"/v1/spectroclusters/{_seg(cloud_type)}"
        created = await self._json("create_cluster", "POST", path, body=body, idempotent=False)
        uid = created.get("uid")
        if not isinstance(uid, str) or not uid:
            raise BackendUnavailable("Palette created the cluster but returned no uid")
        return uid

    async def delete_cluster(self, uid: str) -> None:
        """``DELETE /v1/spectroclusters/{uid}``. Never retried."""
        await self._send("delete_cluster", "DELETE", f"/v1/spectroclusters/{_seg(uid)}", idempotent=False)

    async def patch_cluster_profiles(self, uid: str, body: dict[str, Any]) -> None:
        """``PATCH /v1/spectroclusters/{uid}/profiles`` with a ``v1SpectroClusterProfiles``:
        adds or replaces the named profiles, keeps the others. Never retried."""
        path = f"/v1/spectroclusters/{_seg(uid)}/profiles"
        await self._send("patch_cluster_profiles", "PATCH", path, body=body, idempotent=False)

    async def put_cluster_profiles(self, uid: str, body: dict[str, Any]) -> None:
        """``PUT /v1/spectroclusters/{uid}/profiles`` with a ``v1SpectroClusterProfiles``:
        the cluster's profiles become exactly these (a rollback's restore). Never retried."""
        path = f"/v1/spectroclusters/{_seg(uid)}/profiles"
        await self._send("put_cluster_profiles", "PUT", path, body=body, idempotent=False)

    # -- plumbing -----------------------------------------------------------------------
    async def _paged(
        self, op: str, method: str, path: str, body: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": str(PAGE_LIMIT)}
        for _ in range(MAX_PAGES):
            page = await self._json(op, method, path, params=params, body=body)
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
        op: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        response = await self._send(op, method, path, params=params, body=body, idempotent=idempotent)
        try:
            data = response.json()
        except ValueError as exc:
            raise BackendUnavailable(f"Palette answered {method} {path} with a non-JSON body") from exc
        if not isinstance(data, dict):
            raise BackendUnavailable(f"Palette answered {method} {path} with an unexpected document")
        return data

    async def _send(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One request: a token from its bucket, then the request, retried as the module
        docstring says, every wait counted against the request's budget."""
        bucket = self._limits.bucket(op)
        budget = self._limits.wait_budget
        attempts = 1 + (self._max_retries if idempotent else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            budget -= await bucket.acquire(budget)
            response = await self._request(op, method, path, params, body, last=last)
            if response is None:  # a transport error, to be retried
                delay = self._delay(attempt, budget)
            elif response.status_code < 300:
                return response
            elif response.status_code < 400:
                raise BackendUnavailable(
                    f"Palette redirected {method} {path}; redirects are not followed (the key would travel)"
                )
            elif response.status_code in _RETRY_STATUSES and not last:
                header = response.headers.get("retry-after")
                told = _parse_retry_after(header) if header is not None else None
                if response.status_code == 429 and told is not None:
                    bucket.pause(told)
                if told is not None and told > budget:
                    raise self._error(method, path, response, retry_after=told)
                delay = told if told is not None else self._delay(attempt, budget)
                log.info("palette %s %s: %d, retry %d in %.2fs", method, path, response.status_code,
                         attempt + 1, delay)  # fmt: skip
            else:
                raise self._error(method, path, response)
            budget -= delay
            await self._sleep(max(0.0, delay))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(
        self,
        op: str,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
        *,
        last: bool,
    ) -> httpx.Response | None:
        """The request, counted and timed. None for a transport error that may be retried."""
        started = time.perf_counter()
        try:
            response = await self._http.request(method, path, params=params, json=body)
        except httpx.TransportError as exc:
            self._metrics.record_backend_request("palette", op, None, time.perf_counter() - started)
            if last:
                raise BackendUnavailable(
                    f"Palette could not be reached for {method} {path} ({type(exc).__name__})"
                ) from exc
            return None
        status = response.status_code
        self._metrics.record_backend_request("palette", op, status, time.perf_counter() - started)
        if status == 429:
            self._metrics.record_throttled("palette", "server")
        return response

    def _delay(self, attempt: int, budget: float) -> float:
        # Full jitter: spreads the retries of concurrent calls instead of synchronising them.
        bound = max(0.0, min(self._max_backoff, budget, self._backoff_base * 2**attempt))
        return random.uniform(0, bound)  # noqa: S311

    def _error(
        self, method: str, path: str, response: httpx.Response, *, retry_after: float | None = None
    ) -> BackendError:
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
            if retry_after is not None:
                return RateLimited(
                    f"{retry_message(f'Palette {method} {path}', retry_after)}: Palette asked to wait "
                    "longer than the request's budget",
                    retry_after=retry_after,
                )
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
