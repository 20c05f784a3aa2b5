"""The Palette read tools: clusters (list, get, events, cost, diagnose, compare) and the
catalogue (profiles, packs, recommendation).

``prepare_*`` resolves the cluster a call names (so policy sees its environment tag) or the
catalogue kind it reads; the other methods fetch and shape the answer. Nothing here writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.contracts import Target
from gateway.palette.backend import PaletteBackend, palette_spec
from gateway.palette.compare import compare_clusters
from gateway.palette.diagnose import diagnose
from gateway.palette.models import (
    ClusterArgs,
    ClusterCostArgs,
    ClusterEventsArgs,
    CompareArgs,
    ListClustersArgs,
    ListPacksArgs,
    ListProfilesArgs,
    ProfileArgs,
    RecommendArgs,
)
from gateway.palette.recommend import recommend
from gateway.palette.targets import CLUSTER_KIND, cluster_row
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["CatalogueTools", "ClusterTools", "cluster_search_body"]

JSON = dict[str, Any]

_PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
_MAX_EVENTS = 200


def _string_filter(prop: str, operator: str, value: str) -> dict[str, Any]:
    """One ``v1SearchFilterItem``."""
    return {
        "property": prop,
        "type": "string",
        "condition": {
            "string": {
                "operator": operator,
                "match": {"conjunction": "or", "values": [value]},
                "ignoreCase": True,
            }
        },
    }


def cluster_search_body(args: ListClustersArgs, label: str) -> dict[str, Any]:
    """A ``v1SearchFilterSummarySpec`` for the list arguments."""
    filters = []
    if args.name:
        filters.append(_string_filter("clusterName", "contains", args.name))
    if args.state:
        filters.append(_string_filter("clusterState", "eq", args.state))
    # Palette's search names the environment tag ``environment``; any other tag key is
    # filtered client-side in ``list_execute``.
    if args.environment and label == "environment":
        filters.append(_string_filter("environment", "eq", args.environment))
    body: dict[str, Any] = {"sort": [{"field": "clusterName", "order": "asc"}]}
    if filters:
        body["filter"] = {"conjunction": "and", "filterGroups": [{"conjunction": "and", "filters": filters}]}
    return body


def _pack_row(pack: dict[str, Any]) -> dict[str, Any]:
    spec = pack.get("spec") or {}
    registries: list[dict[str, Any]] = spec.get("registries") or [{}]
    return {
        "uid": (pack.get("metadata") or {}).get("uid"),
        "name": spec.get("name"),
        "layer": spec.get("layer"),
        "type": spec.get("type"),
        "cloud_types": spec.get("cloudTypes"),
        "latest_version": registries[0].get("latestVersion"),
    }


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    """One line of ``palette_cluster_events`` from a ``v1Event``."""
    return {
        "time": (event.get("metadata") or {}).get("creationTimestamp"),
        "severity": event.get("severity"),
        "reason": event.get("reason"),
        "message": event.get("message"),
        "source": (event.get("source") or {}).get("component"),
    }


def _profile_row(profile: dict[str, Any]) -> dict[str, Any]:
    """One line of ``palette_list_profiles`` from a ``v1ClusterProfileSummary``."""
    meta, summary = profile.get("metadata") or {}, profile.get("specSummary") or {}
    published = summary.get("published") or {}
    return {
        "uid": meta.get("uid"),
        "name": meta.get("name"),
        "version": summary.get("version"),
        "type": published.get("type"),
        "cloud_type": published.get("cloudType"),
        "packs": [
            f"{k.get('name')}:{k.get('tag') or k.get('version')}" for k in published.get("packs") or []
        ],
    }


class ClusterTools:
    """The reads about clusters: each names the cluster(s) it reads, so policy sees them."""

    def __init__(self, backend: PaletteBackend) -> None:
        self.backend = backend

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            palette_spec(
                "palette_list_clusters",
                "List Palette clusters",
                "Clusters of the project with state, health, environment tag and node count; "
                "filter by state, environment or a name substring.",
                ListClustersArgs,
                self.prepare_list,
                self.list_clusters,
            ),
            palette_spec(
                "palette_get_cluster",
                "Get a Palette cluster",
                "The full cluster document (v1SpectroCluster).",
                ClusterArgs,
                self.prepare_cluster,
                self.get_cluster,
            ),
            palette_spec(
                "palette_cluster_events",
                "Palette cluster events",
                "Recent events of a cluster, newest first, optionally of one severity.",
                ClusterEventsArgs,
                self.prepare_cluster,
                self.events,
            ),
            palette_spec(
                "palette_cluster_cost",
                "Palette cluster cost",
                "A cluster's cost over the last day, week or month, with its compute/storage breakdown.",
                ClusterCostArgs,
                self.prepare_cluster,
                self.cost,
            ),
            palette_spec(
                "palette_diagnose_cluster",
                "Diagnose a Palette cluster",
                "A health score from 0 to 100 with the findings behind it: state, health, conditions, "
                "machine pools and warning events.",
                ClusterArgs,
                self.prepare_cluster,
                self.diagnose,
            ),
            palette_spec(
                "palette_compare_clusters",
                "Compare two Palette clusters",
                "Profile, pack version and pack values drift between two clusters (values are compared by "
                "digest and changed keys, never shown).",
                CompareArgs,
                self.prepare_compare,
                self.compare,
            ),
        ]

    async def prepare_cluster(self, args: ClusterArgs) -> list[Prepared]:
        target, _ = await self.backend.cluster(args.uid)
        return [Prepared(target=target)]

    # -- palette_list_clusters ----------------------------------------------------------

    async def prepare_list(self, args: ListClustersArgs) -> list[Prepared]:
        selector = f"{self.backend.label}={args.environment}" if args.environment else None
        return [Prepared(target=Target(kind=CLUSTER_KIND, label_selector=selector))]

    async def list_clusters(self, args: ListClustersArgs, _: ExecutionContext) -> JSON:
        label = self.backend.label
        found = await self.backend.client.search_clusters(cluster_search_body(args, label))
        rows = [cluster_row(summary, label) for summary in found]
        if args.environment:
            rows = [r for r in rows if r["environment"] == args.environment]
        return {"count": len(rows), "clusters": rows}

    # -- one cluster ----------------------------------------------------------------------

    async def get_cluster(self, args: ClusterArgs, _: ExecutionContext) -> JSON:
        return await self.backend.client.get_cluster(args.uid)

    async def events(self, args: ClusterEventsArgs, _: ExecutionContext) -> JSON:
        events = await self.backend.client.cluster_events(args.uid)
        if args.severity:
            events = [e for e in events if str(e.get("severity", "")).lower() == args.severity.lower()]
        rows = sorted((_event_row(e) for e in events), key=lambda r: str(r["time"] or ""), reverse=True)
        return {
            "uid": args.uid,
            "count": len(rows),
            "events": rows[:_MAX_EVENTS],
            "truncated": len(rows) > _MAX_EVENTS,
        }

    async def cost(self, args: ClusterCostArgs, _: ExecutionContext) -> JSON:
        end = datetime.now(UTC)
        start = end - _PERIODS[args.period]
        summary = await self.backend.client.cluster_cost(
            args.uid, start=_stamp(start), end=_stamp(end), period_minutes=1440
        )
        cluster = summary.get("cluster") or {}
        cost = cluster.get("cost") or {}
        return {
            "uid": args.uid,
            "name": cluster.get("name"),
            "period": args.period,
            "start": summary.get("startTime"),
            "end": summary.get("endTime"),
            "total": cost.get("total"),
            "breakdown": cost.get("cloud") or {},
        }

    async def diagnose(self, args: ClusterArgs, _: ExecutionContext) -> JSON:
        client = self.backend.client
        cluster = await client.get_cluster(args.uid)
        overview = await client.cluster_overview(args.uid)
        events = await client.cluster_events(args.uid)
        return diagnose(cluster, overview, events).model_dump(mode="json")

    # -- palette_compare_clusters ---------------------------------------------------------

    async def prepare_compare(self, args: CompareArgs) -> list[Prepared]:
        a, _ = await self.backend.cluster(args.uid_a)
        b, _ = await self.backend.cluster(args.uid_b)
        return [Prepared(target=a), Prepared(target=b)]

    async def compare(self, args: CompareArgs, _: ExecutionContext) -> JSON:
        client = self.backend.client
        return compare_clusters(await client.get_cluster(args.uid_a), await client.get_cluster(args.uid_b))


class CatalogueTools:
    """The reads about the project's catalogue (cluster profiles, packs): no cluster is
    named, so policy sees the kind read."""

    def __init__(self, backend: PaletteBackend) -> None:
        self.backend = backend

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            palette_spec(
                "palette_list_profiles",
                "List cluster profiles",
                "Cluster profiles of the project with their packs, optionally for one cloud type.",
                ListProfilesArgs,
                self.prepare_profiles,
                self.list_profiles,
            ),
            palette_spec(
                "palette_get_profile",
                "Get a cluster profile",
                "The full cluster profile (v1ClusterProfile).",
                ProfileArgs,
                self.prepare_profiles,
                self.get_profile,
            ),
            palette_spec(
                "palette_list_packs",
                "List packs",
                "Packs in the registries, by name substring or layer.",
                ListPacksArgs,
                self.prepare_packs,
                self.list_packs,
            ),
            palette_spec(
                "palette_recommend_profile",
                "Recommend a cluster profile",
                "Existing profiles and packs ranked by fit for a workload description, with reasons. "
                "Deterministic; creates nothing.",
                RecommendArgs,
                self.prepare_profiles,
                self.recommend,
            ),
        ]

    async def prepare_profiles(self, args: Any) -> list[Prepared]:
        return [Prepared(target=Target(kind="ClusterProfile"))]

    async def prepare_packs(self, args: ListPacksArgs) -> list[Prepared]:
        return [Prepared(target=Target(kind="Pack"))]

    async def list_profiles(self, args: ListProfilesArgs, _: ExecutionContext) -> JSON:
        body: JSON = {"filter": {"environment": [args.cloud_type]}} if args.cloud_type else {}
        rows = [_profile_row(p) for p in await self.backend.client.list_profiles(body)]
        return {"count": len(rows), "profiles": rows}

    async def get_profile(self, args: ProfileArgs, _: ExecutionContext) -> JSON:
        return await self.backend.client.get_profile(args.uid)

    async def list_packs(self, args: ListPacksArgs, _: ExecutionContext) -> JSON:
        spec: JSON = {}
        if args.name:
            spec["name"] = {"contains": args.name, "ignoreCase": True}
        if args.layer:
            spec["layer"] = [args.layer]
        rows = [
            _pack_row(p) for p in await self.backend.client.search_packs({"filter": spec} if spec else {})
        ]
        return {"count": len(rows), "packs": rows}

    async def recommend(self, args: RecommendArgs, _: ExecutionContext) -> JSON:
        profiles = await self.backend.client.list_profiles({})
        packs = await self.backend.client.search_packs({})
        return recommend(args.workload_description, profiles, packs, args.cloud_type)
