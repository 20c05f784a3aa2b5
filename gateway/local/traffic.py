"""Synthetic, varied tool calls for a real ``Gateway``: what the replay tests and
``make bench-replay`` record before replaying them.

``TrafficCluster`` serves in-memory tools named like the real Kubernetes ones (``k8s_get``,
``k8s_list``, ``k8s_scale``, ``k8s_apply``, ``k8s_delete``), with the targets, after-images
and before-images the real backend would build, so the project's own rules judge them; it
executes nothing beyond remembering replica counts. ``traffic(n)`` is a deterministic mix of
``n`` calls by principals of different groups, in namespaces of different environments:
reads, scales up and down (some past the replica limits), applies with pinned, ``latest`` and
unapproved images, deletes. Each ``TrafficCall`` says which of those properties it has, so a
test can tell what a rule change must do to it without asking the policy.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts import Principal, Target
from gateway.runtime import CheckFn, ToolSource
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["NAMESPACES", "PRINCIPALS", "TrafficCall", "TrafficCluster", "traffic"]

NAMESPACES = {"dev": "development", "staging": "staging", "payments": "production", "shop": "production"}
PRINCIPALS = (
    Principal(subject="alice", groups=("sre",), transport="http", authenticated=True),
    Principal(subject="olga", groups=("platform-admins",), transport="http", authenticated=True),
    Principal(subject="dave", groups=("developers",), transport="http", authenticated=True),
    Principal(subject="paula", groups=("payments",), transport="http", authenticated=True),
    Principal(subject="vic", groups=("viewers",), transport="http", authenticated=True),
)
_NAMES = ("web", "api", "worker", "checkout", "cache-redis")
_PINNED = "registry.k8s.io/nginx:1.27.0"
_LATEST = "registry.k8s.io/nginx:latest"
_UNAPPROVED = "quay.io/acme/web:1.4.2"


class ObjectArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(description="Namespace.")
    name: str = Field(default="", description="Deployment name (empty: all, for k8s_list).")
    kind: str = Field(default="Deployment", description="Kind.")


class ScaleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(description="Namespace.")
    name: str = Field(description="Deployment name.")
    replicas: int = Field(ge=0, le=1000, description="Desired replicas.")


class ApplyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(description="Namespace.")
    name: str = Field(description="Deployment name.")
    image: str = Field(description="Container image.")
    replicas: int = Field(ge=0, le=1000, description="Replicas.")


@dataclass(frozen=True)
class TrafficCall:
    """One call of the mix, and what it is made of."""

    tool: str
    args: dict[str, Any]
    principal: Principal
    replicas: int | None = None  # the replica count a scale or apply writes
    latest: bool = False  # an apply of an image tagged latest


def deployment(namespace: str, name: str, *, image: str = _PINNED, replicas: int = 2) -> dict[str, Any]:
    """A Deployment the project's rules accept, apart from what the caller varies."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
                        }
                    ]
                },
            },
        },
    }


class TrafficCluster:
    """In-memory Deployments behind tools named like the Kubernetes backend's."""

    def __init__(self) -> None:
        self.replicas: dict[tuple[str, str], int] = {}
        self.executed = 0

    def _target(self, namespace: str, name: str | None, kind: str = "Deployment") -> Target:
        return Target(
            cluster="sandbox",
            namespace=namespace,
            api_version="apps/v1",
            kind=kind,
            name=name or None,
            environment=NAMESPACES.get(namespace),
        )

    def _live(self, namespace: str, name: str) -> dict[str, Any]:
        return deployment(namespace, name, replicas=self.replicas.get((namespace, name), 2))

    async def _prepare_read(self, args: ObjectArgs) -> list[Prepared]:
        return [Prepared(target=self._target(args.namespace, args.name, args.kind))]

    async def _prepare_scale(self, args: ScaleArgs) -> list[Prepared]:
        current = self._live(args.namespace, args.name)
        after = deployment(args.namespace, args.name, replicas=args.replicas)
        return [Prepared(target=self._target(args.namespace, args.name), object=after, current=current)]

    async def _prepare_apply(self, args: ApplyArgs) -> list[Prepared]:
        after = deployment(args.namespace, args.name, image=args.image, replicas=args.replicas)
        current = self._live(args.namespace, args.name)
        return [Prepared(target=self._target(args.namespace, args.name), object=after, current=current)]

    async def _prepare_delete(self, args: ObjectArgs) -> list[Prepared]:
        current = self._live(args.namespace, args.name)
        return [Prepared(target=self._target(args.namespace, args.name), current=current)]

    async def _read(self, args: ObjectArgs, ctx: ExecutionContext) -> dict[str, Any]:
        self.executed += 1
        return {"items": [self._live(args.namespace, args.name or "web")]}

    async def _write(self, args: BaseModel, ctx: ExecutionContext) -> dict[str, Any]:
        self.executed += 1
        replicas = getattr(args, "replicas", None)
        key = (getattr(args, "namespace", ""), getattr(args, "name", ""))
        if replicas is not None:
            self.replicas[key] = int(replicas)
        return {"done": ctx.call.tool, "name": key[1]}

    def specs(self) -> list[ToolSpec[Any]]:
        k8s: dict[str, Any] = {"backend": "kubernetes"}
        return [
            ToolSpec(name="k8s_get", title="Get", description="Get.", operation="get", effect="read",
                     args=ObjectArgs, prepare=self._prepare_read, execute=self._read, **k8s),
            ToolSpec(name="k8s_list", title="List", description="List.", operation="list", effect="read",
                     args=ObjectArgs, prepare=self._prepare_read, execute=self._read, **k8s),
            ToolSpec(name="k8s_scale", title="Scale", description="Scale.", operation="scale", effect="write",
                     args=ScaleArgs, prepare=self._prepare_scale, execute=self._write, **k8s),
            ToolSpec(name="k8s_apply", title="Apply", description="Apply.", operation="apply", effect="write",
                     args=ApplyArgs, prepare=self._prepare_apply, execute=self._write, **k8s),
            ToolSpec(name="k8s_delete", title="Delete", description="Delete.", operation="delete",
                     effect="delete", args=ObjectArgs, prepare=self._prepare_delete, execute=self._write,
                     **k8s),
        ]  # fmt: skip

    def source(self) -> ToolSource:
        """The tools as a backend for ``open_runtime`` / ``build_server``."""

        @asynccontextmanager
        async def open_backend(settings: Settings, check: CheckFn) -> AsyncIterator[list[ToolSpec[Any]]]:
            yield self.specs()

        return open_backend


def traffic(count: int, *, seed: int = 20) -> list[TrafficCall]:
    """``count`` varied calls, the same for the same seed: about half reads, then scales,
    applies and a few deletes, by every principal in every namespace."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not a secret
    calls = []
    for _ in range(count):
        principal = rng.choice(PRINCIPALS)
        namespace = rng.choice(list(NAMESPACES))
        name = rng.choice(_NAMES)
        roll = rng.random()
        if roll < 0.45:
            tool = rng.choice(("k8s_get", "k8s_list"))
            args: dict[str, Any] = {"namespace": namespace, "name": name if tool == "k8s_get" else ""}
            calls.append(TrafficCall(tool, args, principal))
        elif roll < 0.7:
            replicas = rng.choice((1, 3, 5, 12, 25, 35, 45, 50, 60))
            calls.append(
                TrafficCall("k8s_scale", {"namespace": namespace, "name": name, "replicas": replicas},
                            principal, replicas=replicas)
            )  # fmt: skip
        elif roll < 0.95:
            image = rng.choice((_PINNED, _PINNED, _LATEST, _UNAPPROVED))
            replicas = rng.choice((2, 3, 30, 40))
            args = {"namespace": namespace, "name": name, "image": image, "replicas": replicas}
            calls.append(
                TrafficCall("k8s_apply", args, principal, replicas=replicas, latest=image == _LATEST)
            )
        else:
            calls.append(TrafficCall("k8s_delete", {"namespace": namespace, "name": name}, principal))
    return calls
