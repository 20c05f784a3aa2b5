"""The fake Palette API: a small stateful Starlette app serving the endpoints the gateway's
client uses, with Palette's conventions (``ApiKey`` header, ``ProjectUid`` partitions, pages
of at most 50 with ``continue``, ``v1Error`` bodies, 429 over a budget).

With ``spec_path`` set, every request body and every response body is checked against the
specification's definitions; violations are kept and served at ``/__admin/violations`` so a
test can prove the fake and the client still speak the real API.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.local.fake_palette.render import (
    cluster_cost,
    cluster_overview,
    cluster_summary,
    filter_clusters,
    filter_packs,
    filter_profiles,
    profile_summary,
)
from gateway.local.fake_palette.state import DEMO_PROJECT, Project, seed_project, uid_for

__all__ = ["FakeConfig", "create_app"]

PAGE_LIMIT = 50
_LOG_LIMIT = 5000


@dataclass(frozen=True)
class FakeConfig:
    api_key: str
    projects: tuple[str, ...] = (DEMO_PROJECT,)
    rate_limit: float = 0.0  # requests per second over all callers; 0 = unlimited
    admin: bool = False
    spec_path: Path | None = None


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


Result = tuple[int, Any]
Handler = Callable[[Request, Project, Any], Awaitable[Result]]


class _Fake:
    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.projects: dict[str, Project] = {uid: seed_project(uid) for uid in config.projects}
        # Bounded: the sandbox runs the fake for hours.
        self.violations: deque[str] = deque(maxlen=_LOG_LIMIT)
        self.requests: deque[dict[str, Any]] = deque(maxlen=_LOG_LIMIT)
        self.forced: list[tuple[int, float]] = []
        self._tokens = config.rate_limit
        self._refilled = time.monotonic()
        self.validator: Any = None
        if config.spec_path is not None:
            from gateway.local.palette_spec import SpecValidator

            self.validator = SpecValidator(config.spec_path)

    # -- plumbing -------------------------------------------------------------------------
    def _check(self, definition: str | None, value: Any, where: str) -> bool:
        """Record every violation of ``definition``; true when there was none."""
        if self.validator is None or definition is None:
            return True
        errors = self.validator.errors(definition, value)
        self.violations.extend(f"{where}: {e}" for e in errors)
        return not errors

    def _over_budget(self) -> bool:
        if self.config.rate_limit <= 0:
            return False
        now = time.monotonic()
        rate = self.config.rate_limit
        self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1:
            return True
        self._tokens -= 1
        return False

    def _admit(self, request: Request) -> None:
        """Authentication first, then forced failures, then the rate budget."""
        if not hmac.compare_digest(request.headers.get("apikey", ""), self.config.api_key):
            raise _ApiError(401, "Unauthorized", "a valid ApiKey header is required")
        if self.forced:
            status, retry_after = self.forced.pop(0)
            raise _Retry(status, retry_after)
        if self._over_budget():
            raise _Retry(429, 1.0)

    async def _body(self, request: Request, request_def: str | None, where: str) -> Any:
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise _ApiError(400, "InvalidRequest", "the request body is not JSON") from None
        if not self._check(request_def, body, f"request {where}"):
            # Palette's Go server cannot decode such a body either.
            raise _ApiError(400, "InvalidRequest", f"the request body does not match {request_def}")
        return body

    def endpoint(self, handler: Handler, request_def: str | None, response_def: str | None) -> Any:
        async def run(request: Request) -> Response:
            where = f"{request.method} {request.url.path}"
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "project": request.headers.get("projectuid"),
                    "api_key_present": "apikey" in request.headers,
                }
            )
            try:
                self._admit(request)
                body = await self._body(request, request_def, where)
                project = self.projects.setdefault(
                    request.headers.get("projectuid", ""), Project(uid=request.headers.get("projectuid", ""))
                )
                status, payload = await handler(request, project, body)
            except _Retry as exc:
                error = {
                    "code": "TooManyRequests" if exc.status == 429 else "ServiceUnavailable",
                    "message": "rate limit exceeded, retry later" if exc.status == 429 else "try again",
                }
                self._check("v1Error", error, f"response {where}")
                # A negative delay means "no Retry-After header": the client falls back to backoff.
                headers = {"Retry-After": f"{exc.retry_after:g}"} if exc.retry_after >= 0 else {}
                return JSONResponse(error, status_code=exc.status, headers=headers)
            except _ApiError as exc:
                error = {"code": exc.code, "message": exc.message, "ref": uid_for("ref", where)}
                self._check("v1Error", error, f"response {where}")
                return JSONResponse(error, status_code=exc.status)
            if payload is None:
                return Response(status_code=status)
            self._check(response_def, payload, f"response {where}")
            return JSONResponse(payload, status_code=status)

        return run

    # -- paging ---------------------------------------------------------------------------
    @staticmethod
    def page(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        try:
            limit = min(int(request.query_params.get("limit", PAGE_LIMIT)), PAGE_LIMIT)
            token = request.query_params.get("continue")
            offset = int(json.loads(base64.urlsafe_b64decode(token))["offset"]) if token else 0
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _ApiError(400, "InvalidContinueToken", "the continue token is not valid") from None
        limit = max(limit, 1)
        chunk = items[offset : offset + limit]
        meta: dict[str, Any] = {"count": len(items), "limit": limit, "offset": offset}
        if offset + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"offset": offset + limit}).encode()
            ).decode()
        return chunk, meta


class _Retry(Exception):
    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(status)
        self.status, self.retry_after = status, retry_after


def _cluster(project: Project, uid: str) -> dict[str, Any]:
    record = project.clusters.get(uid)
    if record is None:
        raise _ApiError(404, "ResourceNotFound", f"cluster {uid} not found")
    return record


def create_app(config: FakeConfig) -> Starlette:
    """The ASGI app; state lives as long as the app."""
    fake = _Fake(config)
    from gateway.local.fake_palette.writes import write_routes

    async def search_clusters(request: Request, project: Project, body: Any) -> Result:
        try:
            uids = filter_clusters(project, body or {})
        except ValueError as exc:
            raise _ApiError(400, "InvalidFilter", str(exc)) from None
        chunk, meta = fake.page(request, uids)
        return 200, {"items": [cluster_summary(project, uid) for uid in chunk], "listmeta": meta}

    async def get_cluster(request: Request, project: Project, _: Any) -> Result:
        return 200, copy.deepcopy(_cluster(project, request.path_params["uid"]))

    async def overview(request: Request, project: Project, _: Any) -> Result:
        uid = request.path_params["uid"]
        _cluster(project, uid)
        return 200, cluster_overview(project, uid)

    async def events(request: Request, project: Project, _: Any) -> Result:
        uid = request.path_params["uid"]
        if request.path_params["kind"] != "spectrocluster":
            raise _ApiError(400, "InvalidObjectKind", "objectKind must be spectrocluster or edgehost")
        _cluster(project, uid)
        chunk, meta = fake.page(request, project.events.get(uid, []))
        return 200, {"items": copy.deepcopy(chunk), "listmeta": meta}

    async def cost(request: Request, project: Project, _: Any) -> Result:
        uid = request.path_params["uid"]
        _cluster(project, uid)
        try:
            end = datetime.fromisoformat(request.query_params.get("endTime", "").replace("Z", "+00:00"))
            start = datetime.fromisoformat(request.query_params.get("startTime", "").replace("Z", "+00:00"))
            period = int(request.query_params.get("period", "1440"))
        except ValueError:
            end, start, period = datetime.now(UTC), datetime.now(UTC) - timedelta(days=7), 1440
        hours = max(0.0, (end - start).total_seconds() / 3600)
        stamp = "%Y-%m-%dT%H:%M:%S.000Z"
        return 200, cluster_cost(project, uid, start.strftime(stamp), end.strftime(stamp), hours, period)

    async def profiles(request: Request, project: Project, body: Any) -> Result:
        chunk, meta = fake.page(request, filter_profiles(project, body or {}))
        return 200, {"items": [profile_summary(p) for p in chunk], "listmeta": meta}

    async def get_profile(request: Request, project: Project, _: Any) -> Result:
        profile = project.profiles.get(request.path_params["uid"])
        if profile is None:
            raise _ApiError(
                404, "ResourceNotFound", f"cluster profile {request.path_params['uid']} not found"
            )
        return 200, copy.deepcopy(profile)

    async def packs(request: Request, project: Project, body: Any) -> Result:
        chunk, meta = fake.page(request, filter_packs(project, body or {}))
        return 200, {"items": copy.deepcopy(chunk), "listmeta": meta}

    routes = [
        Route(
            "/v1/dashboard/spectroclusters/search",
            fake.endpoint(search_clusters, "v1SearchFilterSummarySpec", "v1SpectroClustersSummary"),
            methods=["POST"],
        ),
        Route(
            "/v1/spectroclusters/{uid}", fake.endpoint(get_cluster, None, "v1SpectroCluster"), methods=["GET"]
        ),
        Route(
            "/v1/dashboard/spectroclusters/{uid}/overview",
            fake.endpoint(overview, None, "v1SpectroClusterUidSummary"),
            methods=["GET"],
        ),
        Route("/v1/events/components/{kind}/{uid}", fake.endpoint(events, None, "v1Events"), methods=["GET"]),
        Route(
            "/v1/dashboard/spectroclusters/{uid}/cost",
            fake.endpoint(cost, None, "v1SpectroClusterCostSummary"),
            methods=["GET"],
        ),
        Route(
            "/v1/dashboard/clusterprofiles",
            fake.endpoint(profiles, "v1ClusterProfilesFilterSpec", "v1ClusterProfilesSummary"),
            methods=["POST"],
        ),
        Route(
            "/v1/clusterprofiles/{uid}", fake.endpoint(get_profile, None, "v1ClusterProfile"), methods=["GET"]
        ),
        Route(
            "/v1/packs/search",
            fake.endpoint(packs, "v1PacksFilterSpec", "v1PackMetadataList"),
            methods=["POST"],
        ),
    ]
    routes += write_routes(fake, _ApiError, _cluster)
    if config.admin:
        routes += _admin_routes(fake)
    return Starlette(routes=routes)


def _admin_routes(fake: _Fake) -> list[Route]:
    """Test-only controls: force error statuses, read request logs and spec violations."""

    async def throttle(request: Request) -> Response:
        body = await request.json()
        status = int(body.get("status", 429))
        fake.forced += [(status, float(body.get("retry_after", 0)))] * int(body.get("count", 1))
        return JSONResponse({"queued": len(fake.forced)})

    async def violations(_: Request) -> Response:
        return JSONResponse({"violations": list(fake.violations)})

    async def requests(_: Request) -> Response:
        return JSONResponse({"requests": list(fake.requests)})

    async def reset(_: Request) -> Response:
        fake.projects = {uid: seed_project(uid) for uid in fake.config.projects}
        fake.violations.clear()
        fake.requests.clear()
        fake.forced.clear()
        return JSONResponse({"reset": True})

    return [
        Route("/__admin/throttle", throttle, methods=["POST"]),
        Route("/__admin/violations", violations, methods=["GET"]),
        Route("/__admin/requests", requests, methods=["GET"]),
        Route("/__admin/reset", reset, methods=["POST"]),
    ]
