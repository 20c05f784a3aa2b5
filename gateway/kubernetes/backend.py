"""What the Kubernetes tools share about one cluster: its client, kind resolution, and the
facts about a target that come from the cluster rather than the caller (its environment
label). ``gateway.kubernetes.clusters`` keeps one per cluster in use.

A namespace's environment is read fresh for every write. Reads may reuse it for
``Settings.kube_namespace_cache_seconds``, which keeps an allowed ``k8s_get`` at one API
request. When the environment cannot be read, the call fails: a target of unknown
environment is not judged as if it had none.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.contracts import Target
from gateway.errors import Forbidden, InvalidArguments, NotFound
from gateway.kubernetes.client import KubeClient
from gateway.kubernetes.kinds import KindResolver, ResourceKind
from gateway.settings import Settings

__all__ = ["KubeBackend"]

JSON = dict[str, Any]
_NAMESPACE = ResourceKind(group="", version="v1", kind="Namespace", plural="namespaces",
                          singular="namespace", namespaced=False)  # fmt: skip


class KubeBackend:
    """Shared state of the Kubernetes tools for one cluster (``client.cluster``)."""

    def __init__(self, client: KubeClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.kinds = KindResolver(client.discovery)
        self._labels: dict[str, tuple[float, dict[str, str]]] = {}

    @property
    def field_manager(self) -> str:
        return self.settings.field_manager

    async def namespace(self, name: str) -> JSON | None:
        """The live Namespace, or None when it does not exist."""
        try:
            found = await self.client.get(_NAMESPACE, name, None)
        except NotFound:
            self._labels.pop(name, None)
            return None
        except Forbidden as exc:
            raise Forbidden(
                f"the gateway may not read namespace {name!r}, so its environment is unknown: {exc}"
            ) from exc
        labels = (found.get("metadata") or {}).get("labels") or {}
        self._labels[name] = (time.monotonic(), dict(labels))
        return found

    async def environment(self, namespace: str | None, *, fresh: bool) -> str | None:
        """The environment label of ``namespace`` (None for cluster-wide targets)."""
        if namespace is None:
            return None
        cached = self._labels.get(namespace)
        max_age = self.settings.kube_namespace_cache_seconds
        if not fresh and cached is not None and time.monotonic() - cached[0] < max_age:
            labels = cached[1]
        else:
            live = await self.namespace(namespace)
            if live is None:
                raise NotFound(f"namespace {namespace!r} does not exist")
            labels = self._labels[namespace][1]
        return labels.get(self.settings.environment_label)

    def environment_of(self, obj: JSON | None) -> str | None:
        """The environment label an object carries itself (a Namespace's own)."""
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        value = labels.get(self.settings.environment_label)
        return value if isinstance(value, str) else None

    def require_namespace(self, kind: ResourceKind, namespace: str | None, *, tool: str) -> str | None:
        """The namespace a single-object call addresses: required for namespaced kinds."""
        if kind.namespaced and not namespace:
            raise InvalidArguments(f"{tool}: {kind.kind} is namespaced; give 'namespace'")
        return namespace if kind.namespaced else None

    async def target(
        self,
        kind: ResourceKind | None,
        *,
        namespace: str | None,
        name: str | None = None,
        label_selector: str | None = None,
        fresh: bool,
    ) -> Target:
        """The resolved target. ``all_namespaces`` when a namespaced kind is addressed
        without a namespace; a Namespace's environment is its own label."""
        namespaced = kind is None or kind.namespaced
        ns = namespace if namespaced else None
        if kind is not None and kind.kind == "Namespace" and kind.group == "" and name:
            live = await self.namespace(name)
            environment = self.environment_of(live)
        else:
            environment = await self.environment(ns, fresh=fresh)
        return Target(
            cluster=self.client.cluster,
            namespace=ns,
            api_version=kind.api_version if kind else None,
            kind=kind.kind if kind else None,
            name=name,
            label_selector=label_selector,
            all_namespaces=namespaced and ns is None,
            environment=environment,
        )
