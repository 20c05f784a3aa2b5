"""The sandbox's own access to its cluster: the one module of ``gateway.local`` that talks
to the Kubernetes API (seeding, bootstrap objects, waiting for the cluster to settle).

It is a plain synchronous client over the official ``kubernetes`` package, used by the
``gateway sandbox`` commands and by tests; the gateway itself reaches clusters only
through ``gateway.kubernetes.client``. Writes are server-side applies by the
``sandbox-seed`` field manager, so running a seed again converges instead of failing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

__all__ = ["SEED_MANAGER", "SandboxClient"]

JSON = dict[str, Any]
T = TypeVar("T")
SEED_MANAGER = "sandbox-seed"
_PARALLEL = 8


class SandboxClient:
    """Admin access to a sandbox through its kubeconfig; close it (or use ``with``)."""

    def __init__(self, kubeconfig: Path, *, context: str = "sandbox") -> None:
        self._api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            str(kubeconfig), context=context, persist_config=False
        )
        cache = str(kubeconfig.parent / f"discovery-cache-{context}.json")
        self._dynamic = DynamicClient(self._api, cache_file=cache)  # type: ignore[no-untyped-call]

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._dynamic.resources.get(api_version=api_version, kind=kind)

    # -- writes --------------------------------------------------------------------------

    def apply(self, obj: JSON) -> JSON:
        """Server-side apply of ``obj`` (taking over fields other managers hold)."""
        resource = self._resource(obj["apiVersion"], obj["kind"])
        result = self._dynamic.server_side_apply(  # type: ignore[no-untyped-call]
            resource, body=obj, field_manager=SEED_MANAGER, force_conflicts=True
        )
        return dict(result.to_dict())

    def create(self, obj: JSON) -> bool:
        """Create ``obj`` with what it carries (a Node with its status, as a kubelet
        registers one); False when it already exists."""
        resource = self._resource(obj["apiVersion"], obj["kind"])
        try:
            self._dynamic.create(resource, body=obj, field_manager=SEED_MANAGER)  # type: ignore[no-untyped-call]
        except ConflictError:
            return False
        return True

    def apply_all(self, objects: Iterable[JSON]) -> int:
        """Apply many objects, a few at a time; the number applied."""
        with ThreadPoolExecutor(_PARALLEL) as pool:
            return sum(1 for _ in pool.map(self.apply, objects))

    def create_all(self, objects: Iterable[JSON]) -> int:
        """Create many objects, a few at a time; the number that did not exist yet."""
        with ThreadPoolExecutor(_PARALLEL) as pool:
            return sum(pool.map(self.create, objects))

    def patch(
        self, api_version: str, kind: str, name: str, body: JSON, *, namespace: str | None = None
    ) -> JSON:
        """A merge patch."""
        resource = self._resource(api_version, kind)
        result = self._dynamic.patch(  # type: ignore[no-untyped-call]
            resource, body=body, name=name, namespace=namespace, content_type="application/merge-patch+json"
        )
        return dict(result.to_dict())

    def patch_status(
        self, api_version: str, kind: str, name: str, body: JSON, *, namespace: str | None = None
    ) -> JSON:
        """A merge patch of the status subresource."""
        resource = self._resource(api_version, kind).subresources["status"]
        result = self._dynamic.patch(  # type: ignore[no-untyped-call]
            resource, body=body, name=name, namespace=namespace, content_type="application/merge-patch+json"
        )
        return dict(result.to_dict())

    def delete(self, api_version: str, kind: str, name: str, *, namespace: str | None = None) -> bool:
        resource = self._resource(api_version, kind)
        try:
            self._dynamic.delete(resource, name=name, namespace=namespace)  # type: ignore[no-untyped-call]
        except NotFoundError:
            return False
        return True

    # -- reads ---------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, *, namespace: str | None = None) -> JSON | None:
        resource = self._resource(api_version, kind)
        try:
            found = self._dynamic.get(resource, name=name, namespace=namespace)  # type: ignore[no-untyped-call]
        except NotFoundError:
            return None
        return dict(found.to_dict())

    def pages(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> Iterator[list[JSON]]:
        """The objects one page at a time: never the whole list in memory."""
        resource = self._resource(api_version, kind)
        token: str | None = None
        while True:
            page = self._dynamic.get(  # type: ignore[no-untyped-call]
                resource,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=limit,
                _continue=token,
            ).to_dict()
            yield list(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def count(self, api_version: str, kind: str, **selectors: Any) -> int:
        return sum(len(page) for page in self.pages(api_version, kind, **selectors))

    def wait_for(
        self, check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5
    ) -> T:
        """Poll ``check`` until it returns something; ``TimeoutError`` naming ``what``.
        API errors while polling (a server still starting) count as not yet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = check()
            except ApiException:
                found = None
            if found is not None and found is not False:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what}: not within {timeout:.0f}s")
            time.sleep(interval)
