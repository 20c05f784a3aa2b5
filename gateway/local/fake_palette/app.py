"""The fake Palette API: a small stateful Starlette app serving the endpoints the gateway's
client uses, with Palette's conventions (``ApiKey`` header, ``ProjectUid`` partitions, pages
of at most 50 with ``continue``, ``v1Error`` bodies, 429 over a budget).

With ``spec_path`` set, every request body and every response body is checked against the
specification's definitions; violations are kept and served at ``/__admin/violations`` so a
test can prove the fake and the client still speak the real API.
"""

from __future__ import annotations

import copy
import hmac
import json
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.local.fake_palette.protocol import ApiError, Handler, Result, Retry, find_cluster, page
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
from gateway.local.fake_palette.writes import WriteEndpoints

__all__ = ["FakeConfig", "create_app"]

_LOG_LIMIT = 5000


@dataclass(frozen=True)
class FakeConfig:
    api_key: str
    projects: tuple[str, ...] = (DEMO_PROJECT,)
    rate_limit: float = 0.0  # requests per second over all callers; 0 = unlimited
    admin: bool = False
    spec_path: Path | None = None


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
            raise ApiError(401, "Unauthorized", "a valid ApiKey header is required")
        if self.forced:
            status, retry_after = self.forced.pop(0)
            raise Retry(status, retry_after)
        if self._over_budget():
            raise Retry(429, 1.0)

    async def _body(self, request: Request, request_def: str | None, where: str) -> Any:
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise ApiError(400, "InvalidRequest", "the request body is not JSON") from None
        if not self._check(request_def, body, f"request {where}"):
            # Palette's Go server cannot decode such a body either.
            raise ApiError(400, "InvalidRequest", f"the request body does not match {request_def}")
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
            except Retry as exc:
                error = {
                    "code": "TooManyRequests" if exc.status == 429 else "ServiceUnavailable",
                    "message": "rate limit exceeded, retry later" if exc.status == 429 else "try again",
                }
                self._check("v1Error", error, f"response {where}")
                # A negative delay means "no Retry-After header": the client falls back to backoff.
                headers = {"Retry-After": f"{exc.retry_after:g}"} if exc.retry_after >= 0 else {}
                return JSONResponse(error, status_code=exc.status, headers=headers)
            except ApiError as exc:
                error = {"code": exc.code, "message": exc.message, "ref": uid_for("ref", where)}
                self._check("v1Error", error, f"response {where}")
                return JSONResponse(error, status_code=exc.status)
            if payload is None:
                return Response(status_code=status)
            self._check(response_def, payload, f"response {where}")
            return JSONResponse(payload, status_code=status)

        return run


def create_app(config: FakeConfig) -> Starlette:
    """The ASGI app; state lives as long as the app."""
    fake = _Fake(config)
    routes = [*ReadEndpoints(fake).routes(), *WriteEndpoints(fake).routes()]
    if config.admin:
        routes += _admin_routes(fake)
    return Starlette(routes=routes)


class ReadEndpoints:
    """The read endpoints: cluster search, one cluster, its overview, events and cost, the
    profile catalogue and packs."""

    def __init__(self, app: _Fake) -> None:
        self.app = app

    def routes(self) -> list[Route]:
        endpoint = self.app.endpoint
        cluster = "/v1/spectroclusters/{uid}"
        dashboard = "/v1/dashboard/spectroclusters"
        return [
            Route(
                f"{dashboard}/search",
                endpoint(self.search_clusters, "v1SearchFilterSummarySpec", "v1SpectroClustersSummary"),
                methods=["POST"],
            ),
            Route(cluster, endpoint(self.get_cluster, None, "v1SpectroCluster"), methods=["GET"]),
            Route(
                f"{dashboard}/{{uid}}/overview",
                endpoint(self.overview, None, "v1SpectroClusterUidSummary"),
                methods=["GET"],
            ),
            Route(
                "/v1/events/components/{kind}/{uid}", endpoint(self.events, None, "v1Events"), methods=["GET"]
            ),
            Route(
                f"{dashboard}/{{uid}}/cost",
                endpoint(self.cost, None, "v1SpectroClusterCostSummary"),
                methods=["GET"],
            ),
            Route(
                "/v1/dashboard/clusterprofiles",
                endpoint(self.profiles, "v1ClusterProfilesFilterSpec", "v1ClusterProfilesSummary"),
                methods=["POST"],
            ),
            Route(
                "/v1/clusterprofiles/{uid}",
                endpoint(self.get_profile, None, "v1ClusterProfile"),
                methods=["GET"],
            ),
            Route(
                "/v1/packs/search",
                endpoint(self.packs, "v1PacksFilterSpec", "v1PackMetadataList"),
                methods=["POST"],
            ),
        ]

    async def search_clusters(self, request: Request, project: Project, body: Any) -> Result:
        try:
            uids = filter_clusters(project, body or {})
        except ValueError as exc:
            raise ApiError(400, "InvalidFilter", str(exc)) from None
        chunk, meta = page(request, uids)
        return 200, {"items": [cluster_summary(project, uid) for uid in chunk], "listmeta": meta}

    async def get_cluster(self, request: Request, project: Project, _: Any) -> Result:
        return 200, copy.deepcopy(find_cluster(project, request.path_params["uid"]))

    async def overview(self, request: Request, project: Project, _: Any) -> Result:
        uid = request.path_params["uid"]
        find_cluster(project, uid)
        return 200, cluster_overview(project, uid)

    async def events(self, request: Request, project: Project, _: Any) -> Result:
        uid = request.path_params["uid"]
        if request.path_params["kind"] != "spectrocluster":
            raise ApiError(400, "InvalidObjectKind", "objectKind must be spectrocluster or edgehost")
        find_cluster(project, uid)
        chunk, meta = page(request, project.events.get(uid, []))
        return 200, {"items": copy.deepcopy(chunk), "listmeta": meta}

    async def cost(self, request: Request, project: Project, _: Any) -> Result:
        uid = request.path_params["uid"]
        find_cluster(project, uid)
        try:
            end = datetime.fromisoformat(request.query_params.get("endTime", "").replace("Z", "+00:00"))
            start = datetime.fromisoformat(request.query_params.get("startTime", "").replace("Z", "+00:00"))
            period = int(request.query_params.get("period", "1440"))
        except ValueError:
            end, start, period = datetime.now(UTC), datetime.now(UTC) - timedelta(days=7), 1440
        hours = max(0.0, (end - start).total_seconds() / 3600)
        stamp = "%Y-%m-%dT%H:%M:%S.000Z"
        return 200, cluster_cost(project, uid, start.strftime(stamp), end.strftime(stamp), hours, period)

    async def profiles(self, request: Request, project: Project, body: Any) -> Result:
        chunk, meta = page(request, filter_profiles(project, body or {}))
        return 200, {"items": [profile_summary(p) for p in chunk], "listmeta": meta}

    async def get_profile(self, request: Request, project: Project, _: Any) -> Result:
        profile = project.profiles.get(request.path_params["uid"])
        if profile is None:
            raise ApiError(404, "ResourceNotFound", f"cluster profile {request.path_params['uid']} not found")
        return 200, copy.deepcopy(profile)

    async def packs(self, request: Request, project: Project, body: Any) -> Result:
        chunk, meta = page(request, filter_packs(project, body or {}))
        return 200, {"items": copy.deepcopy(chunk), "listmeta": meta}


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
