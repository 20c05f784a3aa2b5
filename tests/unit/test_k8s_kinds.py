"""Kind resolution from discovery documents, with a counting fake of the discovery fetch."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidArguments
from gateway.kubernetes.kinds import KindResolver, parse_legacy


def _res(
    plural: str, kind: str, *, scope: str = "Namespaced", short: list[str] | None = None
) -> dict[str, Any]:
    return {
        "resource": plural,
        "responseKind": {"group": "", "version": "", "kind": kind},
        "scope": scope,
        "singularResource": kind.lower(),
        "shortNames": short or [],
        "verbs": ["get", "list"],
        "subresources": [{"subresource": "scale"}] if kind == "Deployment" else [],
    }


def _group(name: str, *versions: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "versions": [{"version": v, "resources": r} for v, r in versions]}


CORE = {
    "kind": "APIGroupDiscoveryList",
    "items": [
        _group(
            "",
            ("v1", [_res("pods", "Pod", short=["po"]), _res("events", "Event", short=["ev"]),
                    _res("namespaces", "Namespace", scope="Cluster", short=["ns"])]),
        )
    ],
}  # fmt: skip
GROUPS = {
    "kind": "APIGroupDiscoveryList",
    "items": [
        _group("events.k8s.io", ("v1", [_res("events", "Event", short=["ev"])])),
        _group("apps", ("v1", [_res("deployments", "Deployment", short=["deploy"])])),
        _group("autoscaling", ("v2", [_res("hpas", "HPA")]), ("v1", [_res("hpas", "HPA")])),
    ],
}


class FakeDiscovery:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.groups = GROUPS

    async def __call__(self, path: str, aggregated: bool) -> dict[str, Any]:
        assert aggregated
        self.calls.append(path)
        return CORE if path == "/api" else self.groups


@pytest.mark.parametrize(
    ("name", "api_version", "kind"),
    [
        ("po", "v1", "Pod"),
        ("Pods", "v1", "Pod"),
        ("deploy", "apps/v1", "Deployment"),
        ("deployment.apps", "apps/v1", "Deployment"),
        ("ns", "v1", "Namespace"),
        ("events", "v1", "Event"),  # the core group wins over events.k8s.io
        ("events.events.k8s.io", "events.k8s.io/v1", "Event"),
        ("hpa", "autoscaling/v2", "HPA"),  # the preferred (first listed) version
    ],
)
async def test_names_resolve_like_kubectl(name: str, api_version: str, kind: str) -> None:
    resolved = await KindResolver(FakeDiscovery()).resolve(name)
    assert (resolved.api_version, resolved.kind) == (api_version, kind)


async def test_discovery_is_read_once_and_kept() -> None:
    fetch = FakeDiscovery()
    kinds = KindResolver(fetch)
    for name in ("po", "deploy", "ns", "Pod"):
        await kinds.resolve(name)
    assert fetch.calls == ["/api", "/apis"]


async def test_a_miss_refreshes_discovery_once_so_new_crds_are_found() -> None:
    fetch = FakeDiscovery()
    kinds = KindResolver(fetch, min_refresh_seconds=0)
    await kinds.resolve("po")
    fetch.groups = {
        **GROUPS,
        "items": [*GROUPS["items"], _group("example.com", ("v1", [_res("widgets", "Widget")]))],
    }
    widget = await kinds.resolve("widgets.example.com")
    assert (widget.group, widget.plural, widget.namespaced) == ("example.com", "widgets", True)
    assert fetch.calls == ["/api", "/apis", "/api", "/apis"]


async def test_typos_do_not_storm_discovery() -> None:
    fetch = FakeDiscovery()
    kinds = KindResolver(fetch, min_refresh_seconds=60)
    for _ in range(5):
        with pytest.raises(InvalidArguments):
            await kinds.resolve("deploymnt")
    assert len(fetch.calls) == 2


async def test_unknown_kinds_list_close_matches() -> None:
    with pytest.raises(
        InvalidArguments, match=r"no kind named 'deploymnt'; did you mean Deployment \(apps/v1\)\?$"
    ):
        await KindResolver(FakeDiscovery()).resolve("deploymnt")
    with pytest.raises(InvalidArguments) as caught:
        await KindResolver(FakeDiscovery()).resolve("zzzz")
    assert "did you mean" not in str(caught.value)


async def test_manifest_kinds_resolve_by_api_version_and_explain_other_versions() -> None:
    kinds = KindResolver(FakeDiscovery())
    assert (await kinds.for_object("autoscaling/v1", "HPA")).version == "v1"
    with pytest.raises(InvalidArguments, match=r"'apps/v1beta1'; Deployment is served as apps/v1"):
        await kinds.for_object("apps/v1beta1", "Deployment")


async def test_served_groups_are_known() -> None:
    kinds = KindResolver(FakeDiscovery())
    assert await kinds.has_group("apps")
    assert not await kinds.has_group("metrics.k8s.io")


async def test_servers_without_aggregated_discovery_are_read_the_classic_way() -> None:
    documents: dict[str, dict[str, Any]] = {
        "/api": {"kind": "APIVersions", "versions": ["v1"]},
        "/api/v1": {"resources": [{"name": "pods", "kind": "Pod", "namespaced": True, "shortNames": ["po"]},
                                  {"name": "pods/log", "kind": "Pod", "namespaced": True}]},
        "/apis": {"groups": [{"name": "apps", "versions": [{"version": "v1"}],
                              "preferredVersion": {"version": "v1"}}]},
        "/apis/apps/v1": {"resources": [{"name": "deployments", "kind": "Deployment", "namespaced": True},
                                        {"name": "deployments/scale", "kind": "Scale", "namespaced": True}]},
    }  # fmt: skip

    async def fetch(path: str, aggregated: bool) -> dict[str, Any]:
        return documents[path]

    kinds = KindResolver(fetch)
    assert (await kinds.resolve("po")).kind == "Pod"
    deploy = await kinds.resolve("deployments")
    assert deploy.subresources == frozenset({"scale"})


def test_legacy_parsing_skips_subresources() -> None:
    parsed = parse_legacy("", "v1", {"resources": [{"name": "pods/log", "kind": "Pod"}]})
    assert parsed == []
