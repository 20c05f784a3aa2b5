"""What every endpoint of the fake shares: Palette's error body, the handler signature,
paging with ``continue`` tokens, and the lookup of a cluster by uid."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from gateway.local.fake_palette.state import Project

__all__ = ["PAGE_LIMIT", "ApiError", "Handler", "Result", "Retry", "find_cluster", "now", "page"]

PAGE_LIMIT = 50

Result = tuple[int, Any]
Handler = Callable[[Request, Project, Any], Awaitable[Result]]
"""``(request, project, parsed body) -> (status, payload)``; raises ``ApiError``."""


class ApiError(Exception):
    """Answered as a ``v1Error`` body with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Retry(Exception):
    """A forced 429/503 (``Retry-After`` when ``retry_after`` is not negative)."""

    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(status)
        self.status, self.retry_after = status, retry_after


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def find_cluster(project: Project, uid: str) -> dict[str, Any]:
    record = project.clusters.get(uid)
    if record is None:
        raise ApiError(404, "ResourceNotFound", f"cluster {uid} not found")
    return record


def page(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """One page of ``items`` and its ``listmeta``, as the ``limit`` and ``continue`` query ask."""
    try:
        limit = min(int(request.query_params.get("limit", PAGE_LIMIT)), PAGE_LIMIT)
        token = request.query_params.get("continue")
        offset = int(json.loads(base64.urlsafe_b64decode(token))["offset"]) if token else 0
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "InvalidContinueToken", "the continue token is not valid") from None
    limit = max(limit, 1)
    chunk = items[offset : offset + limit]
    meta: dict[str, Any] = {"count": len(items), "limit": limit, "offset": offset}
    if offset + limit < len(items):
        meta["continue"] = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
    return chunk, meta
