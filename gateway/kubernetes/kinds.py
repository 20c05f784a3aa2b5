"""Kinds by any of their names, resolved through the API server's discovery.

``deploy``, ``deployments``, ``Deployment``, ``deployments.apps`` and ``Deployment.apps``
all name the same resource; custom resources resolve the same way once their CRD is
served. Discovery is read once (aggregated discovery: two requests) and kept; a name
that is not found triggers one refresh, so a CRD installed a moment ago is found, while
a typo costs at most one refresh per ``min_refresh_seconds``.

When a name is served by several groups (``events`` in ``v1`` and ``events.k8s.io``),
the core group wins, then groups in the server's priority order, as with kubectl.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio

from gateway.errors import InvalidArguments

__all__ = ["DiscoveryFetch", "KindResolver", "ResourceKind", "parse_aggregated", "parse_legacy"]

#: ``fetch(path, aggregated)`` returns the decoded JSON of a discovery endpoint.
DiscoveryFetch = Callable[[str, bool], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ResourceKind:
    """One served resource: what a request needs to address it, and how it is named."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: frozenset[str] = frozenset()
    subresources: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return "apis" if self.group else "api"

    def names(self) -> set[str]:
        """Every lowercase name this resource answers to."""
        bare = {self.kind.lower(), self.plural, self.singular, *self.short_names}
        if self.group:
            bare |= {f"{name}.{self.group}" for name in (self.kind.lower(), self.plural, self.singular)}
        return bare


def parse_aggregated(document: dict[str, Any]) -> list[ResourceKind]:
    """Resources of an ``APIGroupDiscoveryList``, preferred version of each group first."""
    found: list[ResourceKind] = []
    for group_doc in document.get("items") or []:
        group = (group_doc.get("metadata") or {}).get("name") or ""
        for version_doc in group_doc.get("versions") or []:
            version = version_doc.get("version")
            for res in version_doc.get("resources") or []:
                kind = (res.get("responseKind") or {}).get("kind")
                plural = res.get("resource")
                if not (version and kind and plural):
                    continue
                found.append(
                    ResourceKind(
                        group=group,
                        version=version,
                        kind=kind,
                        plural=plural,
                        singular=res.get("singularResource") or kind.lower(),
                        namespaced=res.get("scope") == "Namespaced",
                        short_names=tuple(res.get("shortNames") or ()),
                        verbs=frozenset(res.get("verbs") or ()),
                        subresources=frozenset(
                            sub["subresource"]
                            for sub in res.get("subresources") or ()
                            if sub.get("subresource")
                        ),
                    )
                )
    return found


def parse_legacy(group: str, version: str, document: dict[str, Any]) -> list[ResourceKind]:
    """Resources of one ``APIResourceList`` (servers without aggregated discovery)."""
    entries = document.get("resources") or []
    subresources: dict[str, set[str]] = {}
    for res in entries:
        base, _, sub = str(res.get("name", "")).partition("/")
        if sub:
            subresources.setdefault(base, set()).add(sub)
    return [
        ResourceKind(
            group=group,
            version=version,
            kind=res["kind"],
            plural=res["name"],
            singular=res.get("singularName") or res["kind"].lower(),
            namespaced=bool(res.get("namespaced")),
            short_names=tuple(res.get("shortNames") or ()),
            verbs=frozenset(res.get("verbs") or ()),
            subresources=frozenset(subresources.get(res["name"], ())),
        )
        for res in entries
        if "/" not in str(res.get("name", "")) and res.get("kind")
    ]


class KindResolver:
    """Discovery, cached, refreshed on a miss."""

    def __init__(self, fetch: DiscoveryFetch, *, min_refresh_seconds: float = 2.0) -> None:
        self._fetch = fetch
        self._min_refresh = min_refresh_seconds
        self._resources: list[ResourceKind] = []
        self._by_name: dict[str, ResourceKind] = {}
        self._by_gvk: dict[tuple[str, str], ResourceKind] = {}
        self._groups: set[str] = set()
        self._loaded_at: float | None = None
        self._lock = anyio.Lock()

    async def resolve(self, name: str) -> ResourceKind:
        """The resource a user-facing name denotes; ``InvalidArguments`` with close matches."""
        key = name.strip().lower()
        found = await self._lookup(lambda: self._by_name.get(key))
        if found is None:
            raise InvalidArguments(self._unknown_message(name, key))
        return found

    async def for_object(self, api_version: str, kind: str) -> ResourceKind:
        """The resource serving ``apiVersion``/``kind`` of a manifest."""
        found = await self._lookup(lambda: self._by_gvk.get((api_version, kind)))
        if found is None:
            served = sorted({r.api_version for r in self._resources if r.kind == kind})
            hint = f"; {kind} is served as {', '.join(served)}" if served else ""
            raise InvalidArguments(f"the cluster does not serve kind {kind!r} in {api_version!r}{hint}")
        return found

    async def has_group(self, group: str) -> bool:
        """Whether an API group is served (``metrics.k8s.io`` when metrics-server runs)."""
        if self._loaded_at is None:
            async with self._lock:
                if self._loaded_at is None:
                    await self._refresh()
        return group in self._groups

    async def _lookup(self, find: Callable[[], ResourceKind | None]) -> ResourceKind | None:
        if self._loaded_at is not None:
            found = find()
            if found is not None:
                return found
        async with self._lock:
            found = find() if self._loaded_at is not None else None
            if found is None and self._may_refresh():
                await self._refresh()
                found = find()
        return found

    def _may_refresh(self) -> bool:
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= self._min_refresh

    async def _refresh(self) -> None:
        core = await self._fetch("/api", True)
        if core.get("kind") == "APIGroupDiscoveryList":
            groups = await self._fetch("/apis", True)
            resources = parse_aggregated(core) + parse_aggregated(groups)
        else:
            resources = await self._legacy()
        self._index(resources)
        self._loaded_at = time.monotonic()

    async def _legacy(self) -> list[ResourceKind]:
        resources: list[ResourceKind] = []
        for version in (await self._fetch("/api", False)).get("versions") or []:
            resources += parse_legacy("", version, await self._fetch(f"/api/{version}", False))
        for group in (await self._fetch("/apis", False)).get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("version")
            versions = [v.get("version") for v in group.get("versions") or [] if v.get("version")]
            for version in sorted(versions, key=lambda v: v != preferred):
                doc = await self._fetch(f"/apis/{group['name']}/{version}", False)
                resources += parse_legacy(group["name"], version, doc)
        return resources

    def _index(self, resources: Iterable[ResourceKind]) -> None:
        ordered = sorted(resources, key=lambda r: r.group != "")  # stable: core first
        by_name: dict[str, ResourceKind] = {}
        by_gvk: dict[tuple[str, str], ResourceKind] = {}
        for res in ordered:
            by_gvk.setdefault((res.api_version, res.kind), res)
            for alias in res.names():
                by_name.setdefault(alias, res)
        self._resources = ordered
        self._by_name = by_name
        self._by_gvk = by_gvk
        self._groups = {r.group for r in ordered}

    def _unknown_message(self, name: str, key: str) -> str:
        close = difflib.get_close_matches(key, list(self._by_name), n=10, cutoff=0.6)
        resources = list(dict.fromkeys(self._by_name[alias] for alias in close))[:5]
        hint = ", ".join(f"{r.kind} ({r.api_version})" for r in resources)
        return f"the cluster serves no kind named {name!r}" + (f"; did you mean {hint}?" if hint else "")
