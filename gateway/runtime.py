"""The long-lived parts of a running gateway, opened once and closed once.

``open_runtime`` creates, in order: the instruments (metrics, and tracing when an OTLP
endpoint is configured), the policy client (one pooled HTTP client to OPA), the queue
store with its audit log (one database: SQLite, or PostgreSQL shared by replicas), the
``Gateway`` over them, every
backend's tools (each backend opens its own client), and the queue's executor as a
background task; with them, the observers of every decision OPA produces (the recorder for
``gateway policy replay``, the shadow evaluator when a shadow OPA is configured) and their
background tasks. Closing happens in reverse: the executor finishes the action in hand, the
recorder writes what is queued, backends close their clients, then the database and the
OPA clients, and last the trace exporter flushes (bounded: a dead collector does not hold
the shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from gateway.db import Database
from gateway.errors import ConfigError
from gateway.history import ActivityLog
from gateway.instruments import Instruments
from gateway.metrics import METRICS
from gateway.pipeline import Gateway
from gateway.policy import PolicyClient
from gateway.ports import BackendPolicy
from gateway.queue.executor import Executor
from gateway.queue.proofs import ApprovalProofs
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.recording import DecisionRecorder
from gateway.rollback import RollbackTool
from gateway.settings import Settings
from gateway.shadow import ShadowEvaluator
from gateway.tools import ToolRegistry, ToolSpec
from gateway.tracing import Tracing
from gateway.webhooks import WebhookNotifier

__all__ = [
    "CheckFn",
    "Runtime",
    "RuntimeSlot",
    "ToolSource",
    "open_runtime",
    "preflight",
    "require_shared_keys",
]

log = logging.getLogger(__name__)

CheckFn = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]]
"""``(tool, arguments) -> decision JSON``: policy's verdict on a call, nothing executed.
Given to backends whose tools report what policy would say (``palette_validate_configuration``)."""

ToolSource = Callable[[Settings, BackendPolicy], AbstractAsyncContextManager[list[ToolSpec[Any]]]]
"""A backend: opens its client(s), yields its tool specs, closes the client(s) on exit.
The ``BackendPolicy`` it is given is also a ``CheckFn``."""


@dataclass(frozen=True)
class _BackendPolicy:
    """``gateway.ports.BackendPolicy`` over the gateway (checks, as the caller) and the
    policy client (cluster environments)."""

    gateway: Gateway
    policy: PolicyClient

    async def __call__(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return await self.gateway.check_as_caller(tool, arguments)

    async def cluster_environments(self, clusters: Sequence[str]) -> dict[str, str]:
        return await self.policy.cluster_environments(clusters)


@dataclass(frozen=True)
class Runtime:
    """What the MCP handlers reach through the lifespan context."""

    settings: Settings
    gateway: Gateway
    policy: PolicyClient
    store: QueueStore
    proofs: ApprovalProofs
    recorder: DecisionRecorder | None = None
    shadow: ShadowEvaluator | None = None

    @property
    def registry(self) -> ToolRegistry:
        return self.gateway.registry


class RuntimeSlot:
    """Where the HTTP front end finds the runtime the MCP server's lifespan opened, so the
    approvals API uses the same store, policy client and proofs as the executor."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None


def require_shared_keys(settings: Settings) -> None:
    """Replicas on one PostgreSQL database must hold the same keys: one replica opens the
    calls another sealed, and verifies the attestations of approvals another's API took.
    Keys made beside each replica's own ``db_path`` would differ, so they must be named."""
    if settings.database_url is None:
        return
    missing = []
    if settings.queue_key is None and settings.queue_keys_file is None:
        missing.append("GATEWAY_QUEUE_KEYS_FILE (or GATEWAY_QUEUE_KEY)")
    if settings.transport == "http" and settings.attestation_key_file is None:
        missing.append("GATEWAY_ATTESTATION_KEY_FILE")
    if missing:
        raise ConfigError(
            "with GATEWAY_DATABASE_URL every replica must use the same keys: set "
            + " and ".join(missing)
            + " to files all replicas mount (docs/deployment.md, 'Several replicas')"
        )


async def preflight(settings: Settings) -> None:
    """What must hold before a gateway starts serving, checked once so that a refusal is a
    one-line ``ConfigError`` (``gateway serve`` exits 2) rather than a failed server start:
    shared keys when replicas share a database, and a database that opens at this code's
    schema (reachable, credentials accepted, not newer; migrated if older)."""
    require_shared_keys(settings)
    db = await Database.open(
        settings.database(),
        pool_size=1,
        connect_timeout_seconds=settings.database_connect_timeout_seconds,
    )
    await db.close()


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    sources: Sequence[ToolSource],
    *,
    slot: RuntimeSlot | None = None,
    instruments: Instruments | None = None,
) -> AsyncIterator[Runtime]:
    """Open everything a gateway process needs; see the module docstring for the order.
    ``slot`` (if given) holds the runtime while it is open; ``instruments`` (tests) replace
    the ones built from settings."""
    async with AsyncExitStack() as stack:
        if instruments is None:
            instruments = await _open_instruments(settings, stack)
        policy = await stack.enter_async_context(PolicyClient(settings, metrics=instruments.metrics))
        require_shared_keys(settings)
        store = await QueueStore.from_settings(settings, sealer=Sealer.from_settings(settings, create=True))
        stack.push_async_callback(store.close)
        store.listeners.append(lambda event: instruments.metrics.record_approval(event.event))
        activity = await _open_activity(settings, store, instruments, stack)
        registry = ToolRegistry()
        gateway = Gateway(
            settings,
            registry,
            policy,
            store,
            store.audit,
            instruments=instruments,
            activity=activity,
            journal=store.journal,
        )
        backend_policy = _BackendPolicy(gateway, policy)
        for source in sources:
            registry.extend(await stack.enter_async_context(source(settings, backend_policy)))
        registry.register(
            RollbackTool(
                store.journal, registry, rollback_groups=settings.rollback_groups, state_of=store.state_of
            ).spec()
        )
        log.info(
            "gateway ready: %d tools, OPA at %s, database %s",
            len(registry),
            settings.opa_url,
            store.db.location,
        )
        proofs = ApprovalProofs.from_settings(settings)
        notifier = WebhookNotifier(settings)
        if notifier:
            notifier.start()
            stack.push_async_callback(notifier.aclose)
            store.listeners.append(notifier.notify)
        executor = Executor(store, runner=gateway, audit=store.audit, policy=policy, proofs=proofs)
        recorder, shadow = await _open_observers(settings, store, policy, instruments, stack)
        observers = [o for o in (recorder, shadow) if o is not None]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(executor.run_forever)
            for observer in observers:
                tasks.start_soon(observer.run)
            runtime = Runtime(
                settings=settings,
                gateway=gateway,
                policy=policy,
                store=store,
                proofs=proofs,
                recorder=recorder,
                shadow=shadow,
            )
            if slot is not None:
                slot.runtime = runtime
            try:
                yield runtime
            finally:
                if slot is not None:
                    slot.runtime = None
                executor.stop()
                for observer in observers:
                    observer.stop()


async def _open_observers(
    settings: Settings,
    store: QueueStore,
    policy: PolicyClient,
    instruments: Instruments,
    stack: AsyncExitStack,
) -> tuple[DecisionRecorder | None, ShadowEvaluator | None]:
    """The observers of every decision OPA produces (``gateway.observation``), told by the
    policy client: the recorder when decisions are recorded, the shadow evaluator (its
    client open until the stack closes) when a shadow OPA is configured. Their ``run``
    is the caller's to start."""
    recorder = None
    if settings.record_decisions:
        recorder = DecisionRecorder.from_settings(store.db, settings, metrics=instruments.metrics)
    shadow = None
    if settings.shadow_opa_url is not None:
        shadow = await stack.enter_async_context(ShadowEvaluator(settings, metrics=instruments.metrics))
        log.info("shadow policy at %s judges every live decision too", shadow.url)
    policy.observers.extend(o for o in (recorder, shadow) if o is not None)
    return recorder, shadow


async def _open_activity(
    settings: Settings, store: QueueStore, instruments: Instruments, stack: AsyncExitStack
) -> ActivityLog | None:
    """The activity log over the store's database, with its batch writer running; on exit
    the writer stops and writes what is left (before the database closes)."""
    if not settings.history_enabled:
        return None
    activity = ActivityLog(
        store.db,
        read_timeout=settings.history_read_timeout_seconds,
        reuse_seconds=settings.history_flush_seconds,
        metrics=instruments.metrics,
    )
    writer = asyncio.create_task(activity.run(settings.history_flush_seconds))

    async def close() -> None:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await activity.flush()

    stack.push_async_callback(close)
    return activity


async def _open_instruments(settings: Settings, stack: AsyncExitStack) -> Instruments:
    """Metrics, with tracing when configured; the exporter is closed last (registered first)."""
    tracing = Tracing.from_settings(settings)
    if tracing is None:
        return Instruments(METRICS)
    tracing.install_global()

    async def close() -> None:
        await anyio.to_thread.run_sync(tracing.close)

    stack.push_async_callback(close)
    return Instruments(METRICS, tracer=tracing.tracer)
