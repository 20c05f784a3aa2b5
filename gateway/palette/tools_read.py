"""The Palette read tools. ``prepare`` resolves the cluster a call names (so policy sees its
environment tag), ``execute`` fetches and shapes the answer. Nothing here writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.contracts import Target
from gateway.palette.client import PaletteClient
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
from gateway.palette.targets import CLUSTER_KIND, cluster_row, resolve_cluster
from gateway.tools import ExecutionContext, Prepared, ToolSpec

__all__ = ["read_tools"]

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


def read_tools(client: PaletteClient, label: str) -> list[ToolSpec[Any]]:
    async def one_cluster(args: ClusterArgs) -> list[Prepared]:
        target, _ = await resolve_cluster(client, args.uid, label)
        return [Prepared(target=target)]

    def catalogue(kind: str) -> Callable[[Any], Awaitable[list[Prepared]]]:
        async def prepare(_: Any) -> list[Prepared]:
            return [Prepared(target=Target(kind=kind))]

        return prepare

    # -- clusters ---------------------------------------------------------------------
    async def list_prepare(args: ListClustersArgs) -> list[Prepared]:
        selector = f"{label}={args.environment}" if args.environment else None
        return [Prepared(target=Target(kind=CLUSTER_KIND, label_selector=selector))]

    async def list_execute(args: ListClustersArgs, _: ExecutionContext) -> dict[str, Any]:
        rows = [cluster_row(s, label) for s in await client.search_clusters(cluster_search_body(args, label))]
        if args.environment:
            rows = [r for r in rows if r["environment"] == args.environment]
        return {"count": len(rows), "clusters": rows}

    async def get_execute(args: ClusterArgs, _: ExecutionContext) -> dict[str, Any]:
        return await client.get_cluster(args.uid)

    async def events_execute(args: ClusterEventsArgs, _: ExecutionContext) -> dict[str, Any]:
        events = await client.cluster_events(args.uid)
        if args.severity:
            events = [e for e in events if str(e.get("severity", "")).lower() == args.severity.lower()]
        rows = [
            {
                "time": (e.get("metadata") or {}).get("creationTimestamp"),
                "severity": e.get("severity"),
                "reason": e.get("reason"),
                "message": e.get("message"),
                "source": (e.get("source") or {}).get("component"),
            }
            for e in events
        ]
        rows.sort(key=lambda r: str(r["time"] or ""), reverse=True)
        return {
            "uid": args.uid,
            "count": len(rows),
            "events": rows[:_MAX_EVENTS],
            "truncated": len(rows) > _MAX_EVENTS,
        }

    async def cost_execute(args: ClusterCostArgs, _: ExecutionContext) -> dict[str, Any]:
        end = datetime.now(UTC)
        start = end - _PERIODS[args.period]
        summary = await client.cluster_cost(
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

    async def diagnose_execute(args: ClusterArgs, _: ExecutionContext) -> dict[str, Any]:
        cluster = await client.get_cluster(args.uid)
        overview = await client.cluster_overview(args.uid)
        events = await client.cluster_events(args.uid)
        return diagnose(cluster, overview, events).model_dump(mode="json")

    async def compare_prepare(args: CompareArgs) -> list[Prepared]:
        a, _ = await resolve_cluster(client, args.uid_a, label)
        b, _ = await resolve_cluster(client, args.uid_b, label)
        return [Prepared(target=a), Prepared(target=b)]

    async def compare_execute(args: CompareArgs, _: ExecutionContext) -> dict[str, Any]:
        return compare_clusters(await client.get_cluster(args.uid_a), await client.get_cluster(args.uid_b))

    # -- catalogue --------------------------------------------------------------------
    async def profiles_execute(args: ListProfilesArgs, _: ExecutionContext) -> dict[str, Any]:
        body: dict[str, Any] = {"filter": {"environment": [args.cloud_type]}} if args.cloud_type else {}
        rows = []
        for p in await client.list_profiles(body):
            meta, summary = p.get("metadata") or {}, p.get("specSummary") or {}
            published = summary.get("published") or {}
            rows.append(
                {
                    "uid": meta.get("uid"),
                    "name": meta.get("name"),
                    "version": summary.get("version"),
                    "type": published.get("type"),
                    "cloud_type": published.get("cloudType"),
                    "packs": [
                        f"{k.get('name')}:{k.get('tag') or k.get('version')}"
                        for k in published.get("packs") or []
                    ],
                }
            )
        return {"count": len(rows), "profiles": rows}

    async def profile_execute(args: ProfileArgs, _: ExecutionContext) -> dict[str, Any]:
        return await client.get_profile(args.uid)

    async def packs_execute(args: ListPacksArgs, _: ExecutionContext) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if args.name:
            spec["name"] = {"contains": args.name, "ignoreCase": True}
        if args.layer:
            spec["layer"] = [args.layer]
        rows = [_pack_row(p) for p in await client.search_packs({"filter": spec} if spec else {})]
        return {"count": len(rows), "packs": rows}

    async def recommend_execute(args: RecommendArgs, _: ExecutionContext) -> dict[str, Any]:
        profiles = await client.list_profiles({})
        packs = await client.search_packs({})
        return recommend(args.workload_description, profiles, packs, args.cloud_type)

    def spec(name: str, title: str, description: str, args: Any, prepare: Any, execute: Any) -> ToolSpec[Any]:
        return ToolSpec(
            name=name,
            title=title,
            description=description,
            backend="palette",
            operation=name.removeprefix("palette_"),
            effect="read",
            args=args,
            prepare=prepare,
            execute=execute,
        )

    return [
        spec(
            "palette_list_clusters",
            "List Palette clusters",
            "Clusters of the project with state, health, environment tag and node count; "
            "filter by state, environment or a name substring.",
            ListClustersArgs,
            list_prepare,
            list_execute,
        ),
        spec(
            "palette_get_cluster",
            "Get a Palette cluster",
            "The full cluster document (v1SpectroCluster).",
            ClusterArgs,
            one_cluster,
            get_execute,
        ),
        spec(
            "palette_cluster_events",
            "Palette cluster events",
            "Recent events of a cluster, newest first, optionally of one severity.",
            ClusterEventsArgs,
            one_cluster,
            events_execute,
        ),
        spec(
            "palette_cluster_cost",
            "Palette cluster cost",
            "A cluster's cost over the last day, week or month, with its compute/storage breakdown.",
            ClusterCostArgs,
            one_cluster,
            cost_execute,
        ),
        spec(
            "palette_list_profiles",
            "List cluster profiles",
            "Cluster profiles of the project with their packs, optionally for one cloud type.",
            ListProfilesArgs,
            catalogue("ClusterProfile"),
            profiles_execute,
        ),
        spec(
            "palette_get_profile",
            "Get a cluster profile",
            "The full cluster profile (v1ClusterProfile).",
            ProfileArgs,
            catalogue("ClusterProfile"),
            profile_execute,
        ),
        spec(
            "palette_list_packs",
            "List packs",
            "Packs in the registries, by name substring or layer.",
            ListPacksArgs,
            catalogue("Pack"),
            packs_execute,
        ),
        spec(
            "palette_diagnose_cluster",
            "Diagnose a Palette cluster",
            "A health score from 0 to 100 with the findings behind it: state, health, conditions, "
            "machine pools and warning events.",
            ClusterArgs,
            one_cluster,
            diagnose_execute,
        ),
        spec(
            "palette_compare_clusters",
            "Compare two Palette clusters",
            "Profile, pack version and pack values drift between two clusters (values are compared by "
            "digest and changed keys, never shown).",
            CompareArgs,
            compare_prepare,
            compare_execute,
        ),
        spec(
            "palette_recommend_profile",
            "Recommend a cluster profile",
            "Existing profiles and packs ranked by fit for a workload description, with reasons. "
            "Deterministic; creates nothing.",
            RecommendArgs,
            catalogue("ClusterProfile"),
            recommend_execute,
        ),
    ]
