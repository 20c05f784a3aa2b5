"""A stand-in OPA for unit tests: a real aiohttp server on a loopback port.

The policy client is tested through real HTTP (the same aiohttp stack it uses in
production), with answers the real ``opa`` binary cannot be made to give on demand:
malformed envelopes, wrong content types, answers that never finish.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    """One request as the fake OPA received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeOpa:
    """Answers every request with ``handler``; records what it was asked."""

    handler: Handler
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    # Slow handlers wait for this; it is set before the server stops so none is left hanging.
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            Seen(request.method, request.path, dict(request.query), json.loads(raw or b"null"))
        )
        return await self.handler(request)


def answer(body: Any, status: int = 200) -> Handler:
    """Always ``body`` as JSON with ``status``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status)

    return handler


def answers(bodies: Iterable[tuple[int, Any]]) -> Handler:
    """``(status, body)`` pairs as JSON, one per request, in order."""
    pending = iter(bodies)

    async def handler(request: web.Request) -> web.StreamResponse:
        status, body = next(pending)
        return web.json_response(body, status=status)

    return handler


def raw(body: bytes, content_type: str) -> Handler:
    """Always ``body`` as is, labelled ``content_type``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type=content_type)

    return handler


@asynccontextmanager
async def fake_opa(handler: Handler | None = None) -> AsyncIterator[FakeOpa]:
    """A running fake OPA on ``127.0.0.1`` and a free port; ``url`` is its base URL."""
    fake = FakeOpa(handler or answer({}))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake._handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        fake.released.set()
        await runner.cleanup()
