"""Rank existing cluster profiles and packs against a workload description.

Deterministic and explainable, no model involved: the description is tokenised, each token
expanded through a small synonym table (``ml`` → ``gpu``, ``cuda`` …), and every profile or
pack earns points for each concept it matches in its name, description and pack names, and
for fitting the requested cloud type. Ties break by name, so the same question always gets
the same answer.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["recommend"]

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "ml": ("gpu", "nvidia", "cuda", "training", "inference"),
    "ai": ("gpu", "nvidia", "cuda", "training", "inference"),
    "llm": ("gpu", "nvidia", "cuda", "inference"),
    "training": ("gpu", "nvidia"),
    "gpu": ("nvidia", "cuda"),
    "database": ("postgres", "data", "redis", "stateful"),
    "db": ("postgres", "data", "stateful"),
    "sql": ("postgres",),
    "cache": ("redis",),
    "monitoring": ("prometheus", "grafana", "observability", "metrics", "alerting"),
    "observability": ("prometheus", "metrics", "logging", "monitoring"),
    "logs": ("loki", "logging"),
    "logging": ("loki",),
    "web": ("api", "web", "general", "services"),
    "api": ("web", "services", "general"),
    "microservices": ("web", "api", "services"),
    "edge": ("edge", "vsphere", "datacenter"),
    "onprem": ("vsphere", "datacenter"),
}
_STOP = frozenset(
    {"a", "an", "and", "the", "for", "with", "of", "to", "on", "in", "we", "our", "need", "run"}
)
_TOP = 5


def _tokens(text: str) -> set[str]:
    return {t for t in re.findall(r"[a-z0-9]+", text.lower()) if len(t) > 1 and t not in _STOP}


def _concepts(description: str) -> dict[str, str]:
    """Each matchable word mapped to the description word it came from (for the reasons)."""
    out: dict[str, str] = {}
    for token in sorted(_tokens(description)):
        out.setdefault(token, token)
        for synonym in _SYNONYMS.get(token, ()):
            out.setdefault(synonym, token)
    return out


def _score(
    concepts: dict[str, str], fields: dict[str, str], cloud: str | None, wanted_cloud: str | None
) -> tuple[int, list[str]]:
    score, reasons, used = 0, [], set()
    for where, text in fields.items():
        words = _tokens(text)
        for concept, origin in concepts.items():
            if concept in words and (concept, where) not in used:
                used.add((concept, where))
                score += 3 if where == "name" else 2 if where == "packs" else 1
                via = "" if concept == origin else f" (from '{origin}')"
                reasons.append(f"'{concept}' in {where}{via}")
    if wanted_cloud is not None and cloud is not None:
        if cloud == wanted_cloud:
            score += 2
            reasons.append(f"built for {cloud}")
        elif cloud == "all":
            score += 1
            reasons.append("works on every cloud type")
        else:
            return 0, []
    return score, reasons


def recommend(
    description: str, profiles: list[dict[str, Any]], packs: list[dict[str, Any]], cloud_type: str | None
) -> dict[str, Any]:
    """Ranked profile (``v1ClusterProfileSummary``) and pack (``v1PackMetadata``) suggestions."""
    concepts = _concepts(description)
    ranked_profiles: list[dict[str, Any]] = []
    for profile in profiles:
        meta = profile.get("metadata") or {}
        published = ((profile.get("specSummary") or {}).get("published")) or {}
        pack_names = " ".join(str(p.get("name", "")) for p in published.get("packs") or [])
        fields = {
            "name": str(meta.get("name", "")).replace("-", " "),
            "description": str((meta.get("annotations") or {}).get("description", "")),
            "packs": pack_names.replace("-", " "),
        }
        score, reasons = _score(concepts, fields, published.get("cloudType"), cloud_type)
        if score > 0 and reasons:
            ranked_profiles.append(
                {
                    "uid": meta.get("uid"),
                    "name": meta.get("name"),
                    "type": published.get("type"),
                    "cloud_type": published.get("cloudType"),
                    "score": score,
                    "reasons": reasons,
                }
            )
    ranked_packs: list[dict[str, Any]] = []
    for pack in packs:
        spec = pack.get("spec") or {}
        meta = pack.get("metadata") or {}
        clouds = spec.get("cloudTypes") or []
        cloud = cloud_type if cloud_type in clouds else ("all" if "all" in clouds else (clouds or [None])[0])
        fields = {
            "name": str(spec.get("name", "")).replace("-", " "),
            "description": str((meta.get("annotations") or {}).get("description", "")),
        }
        score, reasons = _score(concepts, fields, cloud, cloud_type)
        if score > 0 and reasons:
            ranked_packs.append(
                {"name": spec.get("name"), "layer": spec.get("layer"), "score": score, "reasons": reasons}
            )
    ranked_profiles.sort(key=lambda r: (-int(r["score"]), str(r["name"])))
    # One entry per pack name: the catalogue lists a pack once per version.
    seen: set[str] = set()
    unique_packs: list[dict[str, Any]] = []
    for entry in sorted(ranked_packs, key=lambda r: (-int(r["score"]), str(r["name"]))):
        if entry["name"] not in seen:
            seen.add(str(entry["name"]))
            unique_packs.append(entry)
    return {
        "workload": description,
        "cloud_type": cloud_type,
        "profiles": ranked_profiles[:_TOP],
        "packs": unique_packs[:_TOP],
        "note": "ranked by keyword fit; nothing was created or changed"
        if ranked_profiles or unique_packs
        else "no existing profile or pack matches this description",
    }
