"""Webhooks against receivers the test runs on loopback: one event per queue transition,
signatures that verify, retries with backoff, and a dead receiver that delays nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from queue_support import ALICE, BOB, CAROL, FakeClock, allow, needs_approval, scale_call
from storage_fixtures import Backend

from gateway.audit import format_time
from gateway.contracts import Approval
from gateway.errors import ConfigError
from gateway.ports import ActionState
from gateway.queue import QueueStore
from gateway.settings import Settings, WebhookTarget
from gateway.webhooks import WebhookNotifier

SECRET = "s3cret-webhook-key"


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.requests.append((dict(request.headers), body))
        return web.Response(status=204)

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    got.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield got
    await runner.cleanup()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[QueueStore]:
    opened = await QueueStore.open(backend.target, clock=FakeClock())
    yield opened
    await opened.close()


def notifier(*targets: WebhookTarget, **settings: Any) -> WebhookNotifier:
    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    config = Settings(webhooks=targets, webhook_secret=SECRET, **settings)
    return WebhookNotifier(config, sleep=no_sleep)


async def drained(hooks: WebhookNotifier) -> None:
    await hooks.aclose(drain_seconds=10)


async def test_each_transition_is_posted_once_and_signed(store: QueueStore, receiver: Receiver) -> None:
    hooks = notifier(WebhookTarget(url=receiver.url))
    hooks.start()
    store.listeners.append(hooks.notify)
    clock = FakeClock()
    stamp = format_time(clock())
    first = await store.park(scale_call(replicas=3), needs_approval(min_approvals=2), ALICE)
    second = await store.park(scale_call(replicas=4), needs_approval(), ALICE)
    third = await store.park(scale_call(replicas=5), needs_approval(), ALICE)
    pending = await store.record_approval(
        first,
        Approval(subject="bob", groups=("sre",), approved_at=stamp),
        BOB,
        needs_approval(min_approvals=2),
    )
    await store.record_approval(
        pending, Approval(subject="carol", groups=("sre",), approved_at=stamp), CAROL, allow()
    )
    await store.claim(first.id)
    await store.finish(first.id, ActionState.SUCCEEDED, result={"ok": 1})
    await store.deny(second.id, BOB, "not today")
    await store.cancel(third.id, ALICE, "changed my mind")
    await drained(hooks)

    assert receiver.events() == [
        "parked", "parked", "parked", "approval", "approved", "executed", "denied", "cancelled",
    ]  # fmt: skip
    for headers, body in receiver.requests:
        expected = (
            "sha256="
            + hmac.new(
                SECRET.encode(), headers["X-Gateway-Timestamp"].encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        assert hmac.compare_digest(headers["X-Gateway-Signature"], expected)
        assert "call_args" not in body.decode()
    denied = json.loads(receiver.requests[6][1])
    assert (denied["action_id"], denied["actor"], denied["reason"], denied["denied_by"]) == (
        second.id,
        "bob",
        "not today",
        "approver",
    )


async def test_expiry_is_posted_once(store: QueueStore, receiver: Receiver, tmp_path: Path) -> None:
    clock = FakeClock()
    timed = await QueueStore.open(tmp_path / "expiry.db", clock=clock)
    hooks = notifier(WebhookTarget(url=receiver.url, events=("expired",)))
    hooks.start()
    timed.listeners.append(hooks.notify)
    try:
        await timed.park(scale_call(), needs_approval(ttl_seconds=60), ALICE)
        clock.advance(61)
        assert await timed.expire_due() == 1
        assert await timed.expire_due() == 0
    finally:
        await timed.close()
    await drained(hooks)
    assert receiver.events() == ["expired"]


async def test_a_failing_receiver_is_retried_with_the_same_delivery_id(
    store: QueueStore, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    hooks = notifier(WebhookTarget(url=receiver.url), webhook_max_attempts=3)
    hooks.start()
    store.listeners.append(hooks.notify)
    await store.park(scale_call(), needs_approval(), ALICE)
    await drained(hooks)
    assert receiver.events() == ["parked"]


async def test_a_dead_receiver_delays_nothing(store: QueueStore, receiver: Receiver) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    dead = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = dead.sockets[0].getsockname()[1]
    hooks = notifier(
        WebhookTarget(url=f"http://127.0.0.1:{port}/hook"),
        WebhookTarget(url=receiver.url),
        webhook_timeout_seconds=30,
    )
    hooks.start()
    store.listeners.append(hooks.notify)
    for replicas in range(3, 8):
        await asyncio.wait_for(store.park(scale_call(replicas=replicas), needs_approval(), ALICE), timeout=5)
    for _ in range(200):  # the live receiver gets every event while the dead one hangs
        if len(receiver.requests) == 5:
            break
        await asyncio.sleep(0.02)
    assert receiver.events() == ["parked"] * 5
    assert accepted  # the dead receiver was tried, and is still hanging
    await hooks.aclose(drain_seconds=0)
    dead.close()
    for writer in accepted:
        writer.close()


def test_the_slack_form_is_a_text_line_naming_the_action() -> None:
    from gateway.queue.events import QueueEvent

    event = QueueEvent(
        event="parked", action_id="a1", tool="k8s_scale", state="pending",
        target={"cluster": "prod", "namespace": "payments", "kind": "Deployment", "name": "api",
                "environment": "production"},
        requester="alice", actor="alice", time="t", expires_at="e", approvals=0, min_approvals=1,
    )  # fmt: skip
    text = event.slack_text()
    assert "k8s_scale on prod/payments Deployment api [production] is *parked*" in text
    assert "gateway queue approve a1" in text


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "hooks.example.com/x"])
def test_a_webhook_url_that_is_not_http_is_refused_at_startup(url: str) -> None:
    with pytest.raises(ConfigError, match="not http"):
        WebhookNotifier(Settings(webhooks=(WebhookTarget(url=url),), webhook_secret=SECRET))


def test_json_webhooks_need_a_secret() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_WEBHOOK_SECRET"):
        WebhookNotifier(Settings(webhooks=(WebhookTarget(url="https://hooks.example.com/x"),)))
