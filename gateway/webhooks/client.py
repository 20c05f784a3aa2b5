"""Webhooks: every queue transition POSTed as JSON (or Slack-style text) to the receivers
in ``GATEWAY_WEBHOOKS``, off the request path.

The queue store calls ``WebhookNotifier.notify`` after each transition commits (parked,
approval, approved, denied, cancelled, expired, executed, failed, interrupted). ``notify``
only puts the event on each receiver's bounded queue and returns: a tool call never waits
for a receiver. One background task per receiver delivers its events in order, with up to
``webhook_max_attempts`` attempts (connection errors, timeouts, 408, 429 and 5xx are
retried, after an exponential backoff with full jitter); a full queue drops the event and
logs it. A dead receiver therefore delays only its own events.

JSON deliveries are signed: ``X-Gateway-Signature: sha256=<hex>`` is HMAC-SHA256 with the
webhook secret over ``<X-Gateway-Timestamp>.<body>``; receivers recompute it, compare in
constant time, and refuse timestamps older than a few minutes. ``X-Gateway-Delivery`` is the
same on every retry of one event, so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import httpx

from gateway.errors import ConfigError
from gateway.oidc.client import require_https
from gateway.queue.events import QueueEvent
from gateway.settings import Settings, WebhookTarget

__all__ = ["WebhookNotifier", "signature"]

log = logging.getLogger(__name__)

_BACKOFF_SECONDS: Final[float] = 0.5
_MAX_BACKOFF_SECONDS: Final[float] = 30.0
_RETRY_STATUS: Final[frozenset[int]] = frozenset({408, 429})


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Gateway-Signature`` value receivers recompute."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _secret(settings: Settings) -> bytes | None:
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value().encode()
    if settings.webhook_secret_file is not None:
        try:
            return settings.webhook_secret_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read GATEWAY_WEBHOOK_SECRET_FILE: {exc.strerror}") from exc
    return None


def _check_target(target: WebhookTarget, secret: bytes | None) -> None:
    scheme = target.url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"webhook URL {target.url!r} is not http(s)://: only HTTP receivers are supported")
    try:
        httpx.URL(target.url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"webhook URL {target.url!r} is not a valid URL") from exc
    if scheme == "http":
        with contextlib.suppress(ConfigError):
            require_https(target.url, "webhook")
            return
        log.warning("webhook %s is plain http: events travel unencrypted", target.url)
    if target.format == "json" and not secret:
        raise ConfigError(
            "JSON webhooks are signed: set GATEWAY_WEBHOOK_SECRET or GATEWAY_WEBHOOK_SECRET_FILE"
        )


class _Receiver:
    def __init__(self, target: WebhookTarget, size: int) -> None:
        self.target = target
        self.queue: asyncio.Queue[QueueEvent] = asyncio.Queue(maxsize=size)
        self.task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.dropped = 0


class WebhookNotifier:
    """Bounded, per-receiver delivery of queue events. Construction checks every URL
    (``ConfigError`` for anything but http(s)); ``start`` and ``aclose`` run in the loop."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self._secret = _secret(settings)
        for target in settings.webhooks:
            _check_target(target, self._secret)
        self._receivers = [_Receiver(t, settings.webhook_queue_size) for t in settings.webhooks]
        self._attempts = settings.webhook_max_attempts
        self._timeout = settings.webhook_timeout_seconds
        self._sleep = sleep
        self._http: httpx.AsyncClient | None = None

    def __bool__(self) -> bool:
        return bool(self._receivers)

    def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self._timeout, trust_env=False, follow_redirects=False)
        for receiver in self._receivers:
            receiver.task = asyncio.create_task(
                self._deliver_all(receiver), name=f"webhook {receiver.target.url}"
            )

    async def aclose(self, *, drain_seconds: float = 2.0) -> None:
        """Give queued events ``drain_seconds`` to go out, then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_seconds):
                for receiver in self._receivers:
                    await receiver.queue.join()
        for receiver in self._receivers:
            if receiver.task is not None:
                receiver.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver.task
        if self._http is not None:
            await self._http.aclose()

    def notify(self, event: QueueEvent) -> None:
        """Queue ``event`` for every receiver that wants it; never blocks, never raises."""
        for receiver in self._receivers:
            if receiver.target.events and event.event not in receiver.target.events:
                continue
            try:
                receiver.queue.put_nowait(event)
            except asyncio.QueueFull:
                receiver.dropped += 1
                log.warning("webhook %s: queue full, dropped %s of %s", receiver.target.url, event.event,
                            event.action_id)  # fmt: skip

    async def _deliver_all(self, receiver: _Receiver) -> None:
        while True:
            event = await receiver.queue.get()
            try:
                await self._deliver(receiver, event)
            except Exception:
                log.exception(
                    "webhook %s: delivery of %s failed unexpectedly", receiver.target.url, event.event
                )
            finally:
                receiver.queue.task_done()

    async def _deliver(self, receiver: _Receiver, event: QueueEvent) -> None:
        assert self._http is not None
        target = receiver.target
        if target.format == "slack":
            body = httpx.Request("POST", target.url, json={"text": event.slack_text()}).content
        else:
            body = event.model_dump_json().encode()
        delivery = str(uuid.uuid4())
        for attempt in range(1, self._attempts + 1):
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "policy-gateway",
                "X-Gateway-Event": event.event,
                "X-Gateway-Delivery": delivery,
                "X-Gateway-Timestamp": stamp,
            }
            if self._secret:
                headers["X-Gateway-Signature"] = signature(self._secret, stamp, body)
            try:
                resp = await self._http.post(target.url, content=body, headers=headers)
                if resp.status_code < 300:
                    receiver.delivered += 1
                    return
                retry = resp.status_code >= 500 or resp.status_code in _RETRY_STATUS
                why = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                retry, why = True, type(exc).__name__
            if not retry or attempt == self._attempts:
                log.warning("webhook %s: gave up on %s of %s after %d attempt(s): %s", target.url,
                            event.event, event.action_id, attempt, why)  # fmt: skip
                return
            delay = min(_MAX_BACKOFF_SECONDS, _BACKOFF_SECONDS * 2 ** (attempt - 1))
            await self._sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not a secret
