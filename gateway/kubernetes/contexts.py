"""Which clusters the gateway may use: kubeconfig contexts, the pod's own service account,
the allow-list and the default.

A tool's ``cluster`` argument names one of these contexts. What is offered is decided once,
at start-up, from the settings and what the kubeconfig holds (``ClusterCatalog.select``):

- A configured kubeconfig (``GATEWAY_KUBECONFIG`` / ``GATEWAY_KUBE_CONTEXT``) offers its
  contexts. The pod's service account joins them only when the allow-list names it exactly:
  a gateway given a kubeconfig for remote clusters does not silently gain its own.
- Otherwise, in a pod, the service account is the one context, named
  ``GATEWAY_KUBE_IN_CLUSTER_CONTEXT`` (``in-cluster``).
- Otherwise the default kubeconfig (``KUBECONFIG``, ``~/.kube/config``) offers its contexts.

``GATEWAY_KUBE_CONTEXTS`` (names or globs) keeps only the contexts it matches. The default
context is ``GATEWAY_KUBE_CONTEXT``, else the service account in a pod, else the
kubeconfig's current context when it is allowed, else the only allowed context; with none,
every call must name its cluster.

A name that is not offered gets the same answer whether the kubeconfig holds it or not
(``unknown_message``): the answer lists what may be used and says nothing about what exists
besides, so an allow-list also hides the names of the clusters it leaves out.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.errors import ConfigError
from gateway.settings import Settings

__all__ = ["MAX_LISTED", "ClusterCatalog", "ClusterContext", "display_server", "valid_context_name"]

# How many allowed names an error message or a tool schema lists before it says "and N more".
MAX_LISTED = 50
_MAX_NAME = 253
# Printable, no whitespace but the plain space: names reach policy input, audit rows and
# error messages, where a newline or a control character could forge a line.
_NAME = re.compile(r"^[^\x00-\x1f\x7f\u0085\u2028\u2029\t\n\r]+$")


@dataclass(frozen=True)
class ClusterContext:
    """One cluster as the gateway offers it: never its credentials.

    ``server`` is the API server URL without user information, query or fragment.
    """

    name: str
    server: str
    namespace: str | None = None
    in_cluster: bool = False


def valid_context_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= _MAX_NAME
        and bool(_NAME.match(name))
        and name == name.strip()
    )


def display_server(url: object) -> str:
    """The API server URL as it may be shown: scheme, host, port and path only."""
    if not isinstance(url, str) or not url:
        return "-"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "-"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}" if parts.scheme and host else "-"


class ClusterCatalog:
    """The contexts tools may name, in the kubeconfig's order, and the default one."""

    def __init__(
        self, contexts: Sequence[ClusterContext], *, default: str | None, kubeconfig: Path | None
    ) -> None:
        self._contexts = {c.name: c for c in contexts}
        if default is not None and default not in self._contexts:
            raise ConfigError(f"the default cluster {default!r} is not one of the allowed contexts")
        self.default = default
        # Where kubeconfig contexts are loaded from; None: the library's default location.
        self.kubeconfig = kubeconfig

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._contexts)

    def __contains__(self, name: object) -> bool:
        return name in self._contexts

    def __len__(self) -> int:
        return len(self._contexts)

    def context(self, name: str) -> ClusterContext:
        """The context called ``name``; ``KeyError`` when it is not offered."""
        return self._contexts[name]

    def listed(self) -> str:
        """The allowed names for a message, bounded."""
        names = list(self._contexts)
        shown = ", ".join(names[:MAX_LISTED])
        return shown + (
            f" and {len(names) - MAX_LISTED} more (k8s_clusters lists them)"
            if len(names) > MAX_LISTED
            else ""
        )

    def unknown_message(self) -> str:
        """What a caller naming a cluster that is not offered is told: the same whether the
        kubeconfig holds that name or not, and never the name it sent (it may be anything)."""
        return f"not a cluster the gateway may use; use one of: {self.listed()}"

    @classmethod
    def select(
        cls,
        settings: Settings,
        *,
        kubeconfig: tuple[Sequence[ClusterContext], str | None] | None,
        in_cluster: ClusterContext | None,
        warn: list[str] | None = None,
    ) -> ClusterCatalog | None:
        """The catalog for ``settings``, given the kubeconfig's contexts and current context
        (None when there is no kubeconfig) and the pod's service account (None outside a
        pod). None when there is nothing at all; ``ConfigError`` when what is configured
        cannot be used. Problems that leave the rest usable are appended to ``warn``."""
        notes = warn if warn is not None else []
        explicit = settings.kubeconfig is not None or settings.kube_context is not None
        found, current = kubeconfig if kubeconfig is not None else ((), None)
        candidates: list[ClusterContext] = []
        if explicit or in_cluster is None:
            candidates += found
            if in_cluster is not None and in_cluster.name in settings.kube_contexts:
                candidates.append(in_cluster)
        else:
            candidates.append(in_cluster)
            current = in_cluster.name
        if not candidates:
            if explicit:
                raise ConfigError(
                    "no usable Kubernetes configuration: the configured kubeconfig has no contexts"
                )
            return None
        usable = _usable(candidates, notes)
        named = {c.name for c in usable}
        if settings.kube_context is not None and settings.kube_context not in named:
            listed = ", ".join(sorted(named)) or "none"
            raise ConfigError(
                f"context {settings.kube_context!r} is not in the kubeconfig (contexts: {listed})"
            )
        allowed = _allowed(usable, settings.kube_contexts, notes)
        if not allowed:
            raise ConfigError(
                "GATEWAY_KUBE_CONTEXTS matches none of the kubeconfig's contexts "
                f"({', '.join(sorted(named)[:MAX_LISTED])})"
            )
        return cls(allowed, default=_default(settings, allowed, current), kubeconfig=settings.kubeconfig)


def _usable(candidates: Sequence[ClusterContext], notes: list[str]) -> list[ClusterContext]:
    seen: set[str] = set()
    usable = []
    for context in candidates:
        if not valid_context_name(context.name):
            notes.append("a kubeconfig context with an empty, overlong or unprintable name is not offered")
            continue
        if context.name in seen:
            raise ConfigError(
                f"two contexts are named {context.name!r} (the service account's name "
                "GATEWAY_KUBE_IN_CLUSTER_CONTEXT and a kubeconfig context?): rename one"
            )
        seen.add(context.name)
        usable.append(context)
    return usable


def _allowed(usable: list[ClusterContext], patterns: Sequence[str], notes: list[str]) -> list[ClusterContext]:
    if not patterns:
        return usable
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(c.name, pattern) for c in usable):
            notes.append(f"GATEWAY_KUBE_CONTEXTS entry {pattern!r} matches no context")
    return [c for c in usable if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


def _default(settings: Settings, allowed: list[ClusterContext], current: str | None) -> str | None:
    names = [c.name for c in allowed]
    if settings.kube_context is not None:
        if settings.kube_context not in names:
            raise ConfigError(
                f"GATEWAY_KUBE_CONTEXT {settings.kube_context!r} is not allowed by GATEWAY_KUBE_CONTEXTS"
            )
        return settings.kube_context
    if current in names:
        return current
    return names[0] if len(names) == 1 else None
