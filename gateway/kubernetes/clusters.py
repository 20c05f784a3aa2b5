"""One client per cluster: built on first use, kept (least recently used goes first),
reused by every call, closed at shutdown.

The tools ask ``ClusterPool.for_args`` while preparing (the ``cluster`` argument, already
validated against the catalog) and ``ClusterPool.judged`` while executing: an executed call
runs on the cluster its proposed actions name, the one policy judged, never on whatever the
default is when an approval arrives.

Building a client loads credentials (and may run a kubeconfig's exec plugin), so it runs in
a worker thread, at most once per context at a time: two first calls to the same cluster
wait for one client. A context whose credentials cannot be loaded fails the calls that name
it, and is tried again on the next one; other clusters are not affected.

Evicting a client closes its connection pool. A call still holding that cluster's backend
keeps working: urllib3 lets requests in flight finish and opens a new connection for the
next, which is closed with the client when it is collected.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio
import anyio.to_thread

from gateway.errors import BackendError, BackendUnavailable, ConfigError, InvalidArguments
from gateway.kubernetes.backend import KubeBackend
from gateway.kubernetes.contexts import ClusterCatalog, ClusterContext
from gateway.settings import Settings
from gateway.tools import ExecutionContext

__all__ = ["ClusterPool", "Connect", "EnvironmentLookup", "KubeApi"]

log = logging.getLogger(__name__)


class KubeApi(Protocol):
    """What the pool needs of a client (``gateway.kubernetes.client.KubeClient``)."""

    cluster: str
    server: str

    async def version(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


Connect = Callable[[ClusterContext], Any]
"""Builds the client of a context (synchronous: it may run an exec plugin). Raises ``ConfigError``."""

EnvironmentLookup = Callable[[Sequence[str]], Awaitable[Mapping[str, str]]]
"""``(cluster names) -> {name: environment}`` as policy data gives them (``k8s_clusters``)."""


class ClusterPool:
    """The clusters of one gateway process: the catalog of allowed contexts and the live
    backends (client, kinds, namespace labels) of those in use."""

    def __init__(
        self,
        catalog: ClusterCatalog,
        settings: Settings,
        connect: Connect,
        *,
        environments: EnvironmentLookup | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.environments = environments
        self._connect = connect
        self._live: OrderedDict[str, KubeBackend] = OrderedDict()
        self._building: dict[str, anyio.Lock] = {}
        self.built = 0

    @property
    def live(self) -> tuple[str, ...]:
        """The clusters with a client, least recently used first."""
        return tuple(self._live)

    async def backend(self, name: str) -> KubeBackend:
        """The backend of cluster ``name``, built on first use. ``InvalidArguments`` when the
        name is not offered; ``BackendUnavailable`` when its credentials cannot be loaded."""
        if name not in self.catalog:
            raise InvalidArguments(f"cluster: {self.catalog.unknown_message()}")
        found = self._live.get(name)
        if found is None:
            lock = self._building.setdefault(name, anyio.Lock())
            async with lock:
                found = self._live.get(name)
                if found is None:
                    found = KubeBackend(await self._build(self.catalog.context(name)), self.settings)
                    self._live[name] = found
                    self._evict()
        self._live.move_to_end(name)
        return found

    async def for_args(self, args: Any) -> KubeBackend:
        """The backend of the cluster a call's arguments name (or the default)."""
        name = getattr(args, "cluster", None) or self.catalog.default
        if name is None:
            raise InvalidArguments(
                f"cluster: there is no default cluster; name one of: {self.catalog.listed()}"
            )
        return await self.backend(name)

    async def judged(self, args: Any, ctx: ExecutionContext) -> KubeBackend:
        """The backend of the cluster policy judged the call on: the one every proposed
        action names. Raises ``BackendError`` (nothing runs) when they disagree with each
        other or with the arguments, or when that cluster may no longer be used."""
        clusters = {action.target.cluster for action in ctx.call.actions}
        if len(clusters) != 1 or None in clusters:
            raise BackendError("the judged call does not name one cluster; nothing was run")
        (name,) = clusters
        asked = getattr(args, "cluster", None)
        if asked is not None and asked != name:
            raise BackendError(
                f"the call names cluster {asked!r} but policy judged it on {name!r}; nothing was run"
            )
        if name is None or name not in self.catalog:
            raise BackendError(
                f"policy judged this call on cluster {name!r}, which the gateway may no longer use "
                "(see GATEWAY_KUBE_CONTEXTS); nothing was run"
            )
        return await self.backend(name)

    async def probe(self, name: str) -> dict[str, Any]:
        """Whether cluster ``name`` answers (``GET /version``) with the gateway's
        credentials: its live client when there is one, else a client built for the probe
        and closed after it, so a listing does not push the clusters in use out."""
        found = self._live.get(name)
        transient = None
        try:
            if found is not None:
                client = found.client
            else:
                transient = client = await self._build(self.catalog.context(name))
            version = await client.version()
        except BackendError as exc:
            # Unavailable: down, timed out, failing (5xx) or unusable credentials; anything
            # else (credentials refused, forbidden) is an answer from the server.
            return {"reachable": not isinstance(exc, BackendUnavailable), "version": None, "error": str(exc)}
        finally:
            if transient is not None:
                transient.close()
        return {"reachable": True, "version": version.get("gitVersion"), "error": None}

    def close(self) -> None:
        """Close every client (at shutdown)."""
        while self._live:
            _, backend = self._live.popitem(last=False)
            backend.client.close()

    async def _build(self, context: ClusterContext) -> Any:
        try:
            client = await anyio.to_thread.run_sync(self._connect, context)
        except ConfigError as exc:
            log.warning("cluster %r cannot be used: %s", context.name, exc)
            raise BackendUnavailable(str(exc)) from exc
        self.built += 1
        log.info("Kubernetes client for cluster %r at %s", context.name, context.server)
        return client

    def _evict(self) -> None:
        while len(self._live) > self.settings.kube_max_clients:
            name, backend = self._live.popitem(last=False)
            log.info("closing the Kubernetes client of cluster %r (least recently used)", name)
            backend.client.close()
