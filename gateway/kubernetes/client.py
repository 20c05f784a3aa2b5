"""The only module that talks to the Kubernetes API, and reads kubeconfigs.

``load_catalog`` reads, once at start-up, which contexts exist (kubeconfig contexts, the
pod's service account) and hands them to ``gateway.kubernetes.contexts`` to decide which
may be used. ``KubeClient.connect`` builds the long-lived ``ApiClient`` of one context
(``gateway.kubernetes.clusters`` calls it on first use and keeps the client); it drives the
dynamic client for every kind, built-in or custom. The client is synchronous, so each call
runs in a worker thread with explicit timeouts: ``kube_connect_timeout_seconds`` to connect
(TCP and TLS), ``kube_timeout_seconds`` to read. Connection errors are retried once at the
transport (nothing was sent); reads and writes are never retried after a request reached
the server, except a
429 with ``Retry-After`` (API priority and fairness rejected it unprocessed), which is
retried after the time the server names, like client-go does.

Every request first takes a token from its cluster's bucket (``Settings.kube_qps`` /
``kube_burst``, client-go's QPS and burst per client; the Python client has no limit of
its own). Bucket waits and ``Retry-After`` waits share one budget per request
(``kube_rate_limit_wait_seconds``): a request that would wait longer fails at once with
``RateLimited`` ("rate limited, retry after N s"). Each attempt is counted in
``gateway_backend_requests_total`` (operation: the HTTP verb, ``apply`` for server-side
apply) and timed.

No message built here carries a credential: the library's configuration errors print whole
kubeconfig entries (tokens included) into their text, so they are reduced to what is
missing, never quoted.

Every method returns decoded JSON and raises the ``BackendError`` family.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader
from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION, KubeConfigMerger
from kubernetes.dynamic import DynamicClient, Resource
from urllib3.util.retry import Retry

from gateway.errors import ConfigError, RateLimited
from gateway.kubernetes.contexts import ClusterCatalog, ClusterContext, display_server
from gateway.kubernetes.failures import translate
from gateway.kubernetes.kinds import ResourceKind
from gateway.metrics import METRICS, Metrics
from gateway.ratelimit import TokenBucket, retry_message
from gateway.settings import Settings

__all__ = ["AGGREGATED_DISCOVERY", "TRANSPORT_RETRY", "KubeClient", "PatchType", "load_catalog"]

JSON = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]

AGGREGATED_DISCOVERY = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
_PATCH_CONTENT_TYPES: dict[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
_EXPECTED_KEY = re.compile(r"Expected key ([\w.-]+)")

TRANSPORT_RETRY = Retry(total=1, connect=1, read=0, status=0, redirect=0, respect_retry_after_header=False)
"""urllib3's retries: connection set-up only (once a request reached the server it is not
resent), and never a ``Retry-After`` sleep in the worker thread, which no budget bounds:
the client answers 429 itself (see the module docstring)."""
_APPLY = "application/apply-patch+yaml"


class _NoDiscovery:
    """Kinds are resolved by ``gateway.kubernetes.kinds``; the dynamic client's own
    discoverer would fetch and write a cache file at construction."""

    def __init__(self, client: Any, cache_file: Any) -> None:
        _ = client, cache_file


class KubeClient:
    """Async facade over the dynamic client of one context. ``cluster`` names the cluster
    in proposed actions (the context's name); ``server`` is its URL without credentials."""

    def __init__(
        self,
        api_client: Any,
        *,
        cluster: str,
        timeout: float,
        connect_timeout: float | None = None,
        limiter: TokenBucket | None = None,
        wait_budget: float = 5.0,
        max_retries: int = 3,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api = api_client
        self._dynamic = DynamicClient(api_client, discoverer=_NoDiscovery)  # type: ignore[no-untyped-call]
        self.cluster = cluster
        self.server: str = display_server(api_client.configuration.host)
        self._timeout: float | tuple[float, float] = (
            timeout if connect_timeout is None else (connect_timeout, timeout)
        )
        self._limiter = limiter or TokenBucket(0, 1, name="Kubernetes API")
        self._wait_budget = wait_budget
        self._max_retries = max_retries
        self._metrics = metrics or METRICS
        self._sleep = sleep

    @classmethod
    def connect(cls, context: ClusterContext, settings: Settings, *, kubeconfig: Path | None) -> KubeClient:
        """Load the credentials of ``context`` (from ``kubeconfig``, or the pod's service
        account) into a new client; nothing is sent. May run a kubeconfig's exec plugin:
        call it off the event loop. Raises ``ConfigError`` naming what is wrong, never
        quoting the kubeconfig."""
        if context.server == "-":
            # The library would fall back to http://localhost, credentials and all.
            raise ConfigError(f"cluster {context.name!r} cannot be used: its kubeconfig names no server URL")
        configuration = k8s.Configuration()
        try:
            if context.in_cluster:
                _service_account_loader(settings).load_and_set(configuration)  # type: ignore[no-untyped-call]
            else:
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=_file(kubeconfig),
                    context=context.name,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"cluster {context.name!r} cannot be used: {_config_problem(exc)}") from exc
        configuration.retries = TRANSPORT_RETRY
        return cls(
            k8s.ApiClient(configuration),
            cluster=context.name,
            timeout=settings.kube_timeout_seconds,
            connect_timeout=settings.kube_connect_timeout_seconds,
            limiter=TokenBucket(
                settings.kube_qps,
                settings.kube_burst,
                name=f"Kubernetes API of {context.name}",
                metrics=METRICS,
                backend="kubernetes",
            ),
            wait_budget=settings.kube_rate_limit_wait_seconds,
            max_retries=settings.kube_max_retries,
        )

    def close(self) -> None:
        self._api.close()

    # -- reads ---------------------------------------------------------------------------

    async def discovery(self, path: str, aggregated: bool) -> JSON:
        accept = AGGREGATED_DISCOVERY if aggregated else "application/json"
        return await self._json("get", path, header_params={"Accept": accept})

    async def version(self) -> JSON:
        return await self._json("get", "/version")

    async def get(
        self, kind: ResourceKind, name: str, namespace: str | None, *, subresource: str | None = None
    ) -> JSON:
        return await self._json("get", _path(kind, name, namespace, subresource))

    async def list(
        self,
        kind: ResourceKind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> JSON:
        return await self._json(
            "get",
            _path(kind, None, namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            _continue=continue_token,
        )

    async def get_path(self, path: str) -> JSON:
        """A GET on a fixed path (metrics-server's ``PodMetrics`` lists)."""
        return await self._json("get", path)

    async def pod_logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None,
        tail_lines: int,
        since_seconds: int | None,
        limit_bytes: int,
    ) -> str:
        query: list[tuple[str, Any]] = [("tailLines", tail_lines), ("limitBytes", limit_bytes)]
        if container:
            query.append(("container", container))
        if since_seconds:
            query.append(("sinceSeconds", since_seconds))
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        raw = await self._call("get", path, query_params=query, header_params={"Accept": "text/plain, */*"})
        return raw.decode("utf-8", errors="replace")

    # -- writes --------------------------------------------------------------------------

    async def apply(
        self, kind: ResourceKind, body: JSON, *, field_manager: str, dry_run: bool, force: bool = False
    ) -> JSON:
        """Server-side apply of one object (``application/apply-patch+yaml``)."""
        meta = body.get("metadata") or {}
        path = _path(kind, meta["name"], meta.get("namespace") if kind.namespaced else None)
        return await self._json(
            "patch",
            path,
            body=body,
            content_type=_APPLY,
            field_manager=field_manager,
            force_conflicts=force,
            dry_run="All" if dry_run else None,
        )

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        namespace: str | None,
        body: Any,
        *,
        patch_type: PatchType,
        field_manager: str,
        dry_run: bool,
        subresource: str | None = None,
    ) -> JSON:
        """A patch of the object, or of one of its subresources (``scale``)."""
        return await self._json(
            "patch",
            _path(kind, name, namespace, subresource),
            body=body,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
            field_manager=field_manager,
            dry_run="All" if dry_run else None,
        )

    async def delete(
        self,
        kind: ResourceKind,
        name: str,
        namespace: str | None,
        *,
        dry_run: bool,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> JSON:
        """Delete with preconditions, so only the object that was judged is removed."""
        options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        preconditions = {
            key: value for key, value in (("uid", uid), ("resourceVersion", resource_version)) if value
        }
        if preconditions:
            options["preconditions"] = preconditions
        if dry_run:
            options["dryRun"] = ["All"]
        return await self._json("delete", _path(kind, name, namespace), body=options)

    # -- transport -----------------------------------------------------------------------

    async def _json(self, method: str, path: str, **params: Any) -> JSON:
        raw = await self._call(method, path, **params)
        try:
            decoded = json.loads(raw)
        except ValueError as exc:
            raise translate(exc, server=self.server, cluster=self.cluster) from exc
        return decoded if isinstance(decoded, dict) else {"value": decoded}

    async def _call(self, method: str, path: str, **params: Any) -> bytes:
        params = {key: value for key, value in params.items() if value is not None}
        request = functools.partial(
            self._dynamic.request,
            method,
            path,
            serialize=False,
            _request_timeout=self._timeout,
            **params,
        )
        operation = "apply" if params.get("content_type") == _APPLY else method
        budget = self._wait_budget
        for attempt in range(self._max_retries + 1):
            budget -= await self._limiter.acquire(budget)
            started = time.perf_counter()
            try:
                response = await anyio.to_thread.run_sync(request)
            except Exception as exc:
                status = exc.status if isinstance(exc, ApiException) else None
                self._record(operation, status, started)
                delay = self._retry_delay(exc, attempt, budget)
                if delay is None:
                    raise translate(exc, server=self.server, cluster=self.cluster) from exc
                budget -= delay
                await self._sleep(delay)
                continue
            self._record(operation, response.status, started)
            data: bytes = response.data
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, operation: str, status: int | None, started: float) -> None:
        self._metrics.record_backend_request("kubernetes", operation, status, time.perf_counter() - started)

    def _retry_delay(self, exc: Exception, attempt: int, budget: float) -> float | None:
        """How long to wait before retrying after ``exc``: only a 429 naming ``Retry-After``
        is retried. None: raise it. Raises ``RateLimited`` when the wait exceeds ``budget``."""
        if not isinstance(exc, ApiException) or exc.status != 429:
            return None
        self._metrics.record_throttled("kubernetes", "server")
        told = _retry_after(exc)
        if told is None or attempt >= self._max_retries:
            return None
        self._limiter.pause(told)
        if told > budget:
            raise RateLimited(
                retry_message("the Kubernetes API", told) + ": the API server asked to wait longer "
                "than the request's budget",
                retry_after=told,
            ) from exc
        # A little jitter, so callers the server turned away together do not return together.
        return told + random.uniform(0, min(1.0, told * 0.1))  # noqa: S311


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except (TypeError, ValueError):
        return None


def _path(kind: ResourceKind, name: str | None, namespace: str | None, subresource: str | None = None) -> str:
    resource = Resource(  # type: ignore[no-untyped-call]
        prefix=kind.prefix,
        group=kind.group,
        api_version=kind.version,
        kind=kind.kind,
        namespaced=kind.namespaced,
        name=kind.plural,
    )
    path: str = resource.path(  # type: ignore[no-untyped-call]
        name=name, namespace=namespace if kind.namespaced else None
    )
    return f"{path}/{subresource}" if subresource and name else path


def load_catalog(settings: Settings, warn: list[str] | None = None) -> ClusterCatalog | None:
    """The contexts the gateway may use (``ClusterCatalog.select``), from the configured or
    default kubeconfig and the pod's service account. None when there is no configuration
    at all; ``ConfigError`` when one exists but cannot be used. Reads files only."""
    explicit = settings.kubeconfig is not None or settings.kube_context is not None
    in_cluster = _in_cluster_context(settings)
    kubeconfig = None
    if explicit or (in_cluster is None and _default_kubeconfig_exists()):
        kubeconfig = _kubeconfig_contexts(settings.kubeconfig)
    return ClusterCatalog.select(settings, kubeconfig=kubeconfig, in_cluster=in_cluster, warn=warn)


def _kubeconfig_contexts(path: Path | None) -> tuple[list[ClusterContext], str | None]:
    """Every context of the kubeconfig (the library's merge of ``KUBECONFIG`` when ``path``
    is None) with its server, and the current context. Users are never read."""
    file = _file(path)
    if path is not None and not path.is_file():
        raise ConfigError(f"no usable Kubernetes configuration: {path} is not a file")
    try:
        merged = KubeConfigMerger(file).config  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError) as exc:
        raise ConfigError(f"no usable Kubernetes configuration: {_config_problem(exc)}") from exc
    document = _plain(merged)
    if not isinstance(document, dict):
        raise ConfigError("no usable Kubernetes configuration: the kubeconfig is not a mapping")
    servers = {
        c.get("name"): (c.get("cluster") or {}).get("server") for c in _entries(document.get("clusters"))
    }
    contexts = []
    for entry in _entries(document.get("contexts")):
        body = entry.get("context") or {}
        if not isinstance(body, dict):
            continue
        namespace, name = body.get("namespace"), entry.get("name")
        contexts.append(
            ClusterContext(
                name=name if isinstance(name, str) else "",  # checked by the catalog
                server=display_server(servers.get(body.get("cluster"))),
                namespace=namespace if isinstance(namespace, str) else None,
            )
        )
    current = document.get("current-context")
    return contexts, current if isinstance(current, str) and current else None


def _in_cluster_context(settings: Settings) -> ClusterContext | None:
    """The pod's service account as a context, when the gateway runs in a pod (the
    service host and port are set and the token is mounted)."""
    host, port = settings.kubernetes_service_host, settings.kubernetes_service_port
    account = settings.kube_service_account_dir
    if not host or not port or not (account / "token").is_file():
        return None
    namespace_file = account / "namespace"
    try:
        namespace = namespace_file.read_text().strip() or None if namespace_file.is_file() else None
    except OSError:
        namespace = None
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return ClusterContext(
        name=settings.kube_in_cluster_context,
        server=display_server(server),
        namespace=namespace,
        in_cluster=True,
    )


def _service_account_loader(settings: Settings) -> InClusterConfigLoader:
    account = settings.kube_service_account_dir
    environ = {
        "KUBERNETES_SERVICE_HOST": settings.kubernetes_service_host or "",
        "KUBERNETES_SERVICE_PORT": settings.kubernetes_service_port or "",
    }
    return InClusterConfigLoader(  # type: ignore[no-untyped-call]
        token_filename=str(account / "token"), cert_filename=str(account / "ca.crt"), environ=environ
    )


def _plain(node: Any) -> Any:
    """The library's merged ``ConfigNode`` tree as plain dicts and lists."""
    value = getattr(node, "value", node)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _entries(value: Any) -> list[JSON]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _default_kubeconfig_exists() -> bool:
    # The library's default honours KUBECONFIG (a path list) and falls back to ~/.kube/config.
    paths = str(KUBE_CONFIG_DEFAULT_LOCATION).split(os.pathsep)
    return any(Path(p).expanduser().is_file() for p in paths if p)


def _file(path: Path | None) -> str:
    return str(path) if path is not None else str(KUBE_CONFIG_DEFAULT_LOCATION)


def _config_problem(exc: BaseException) -> str:
    """What is wrong with a context's configuration, without quoting it: the library's
    messages about kubeconfig entries embed the whole entry, tokens and keys included."""
    text = str(exc)
    missing = _EXPECTED_KEY.search(text)
    if missing:
        return f"its kubeconfig entry has no {missing.group(1)!r}"
    if isinstance(exc, ConfigException) and text.startswith(("Service ", "Cert file")):
        # The service-account loader's own sentences (host/port unset, token or CA missing).
        return text.splitlines()[0][:200]
    if isinstance(exc, OSError):
        return f"a file it names cannot be read ({exc.strerror or type(exc).__name__})"
    return f"its configuration is malformed ({type(exc).__name__})"
