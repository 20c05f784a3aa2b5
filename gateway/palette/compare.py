"""Drift between two clusters: which profiles each runs, and per pack, version and values.

Values are compared, never shown: a pack's values can hold credentials, so drift is
reported as the top-level keys that differ (when both sides are YAML mappings) and short
digests, not as a diff of the text.
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

__all__ = ["compare_clusters"]


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _templates(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(t.get("name")): t for t in (cluster.get("spec") or {}).get("clusterProfileTemplates") or []}


def _packs(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(p.get("name")): p for t in _templates(cluster).values() for p in t.get("packs") or []}


def _changed_keys(a: str, b: str) -> list[str] | None:
    try:
        left, right = yaml.safe_load(a or "{}"), yaml.safe_load(b or "{}")
    except yaml.YAMLError:
        return None
    if not isinstance(left, dict) or not isinstance(right, dict):
        return None
    return sorted(str(k) for k in set(left) | set(right) if left.get(k) != right.get(k))


def _side(cluster: dict[str, Any]) -> dict[str, str]:
    meta = cluster.get("metadata") or {}
    return {"uid": str(meta.get("uid", "")), "name": str(meta.get("name", ""))}


def compare_clusters(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The drift report between two ``v1SpectroCluster`` documents."""
    ta, tb = _templates(a), _templates(b)
    profiles = {
        "only_in_a": sorted(set(ta) - set(tb)),
        "only_in_b": sorted(set(tb) - set(ta)),
        "version_drift": [
            {"profile": n, "a": ta[n].get("profileVersion"), "b": tb[n].get("profileVersion")}
            for n in sorted(set(ta) & set(tb))
            if ta[n].get("profileVersion") != tb[n].get("profileVersion")
        ],
    }
    pa, pb = _packs(a), _packs(b)
    version_drift, value_drift = [], []
    for name in sorted(set(pa) & set(pb)):
        va, vb = (
            pa[name].get("tag") or pa[name].get("version"),
            pb[name].get("tag") or pb[name].get("version"),
        )
        if va != vb:
            version_drift.append({"pack": name, "layer": pa[name].get("layer"), "a": va, "b": vb})
        xa, xb = str(pa[name].get("values") or ""), str(pb[name].get("values") or "")
        if xa != xb:
            value_drift.append(
                {"pack": name, "changed_keys": _changed_keys(xa, xb), "a": _digest(xa), "b": _digest(xb)}
            )
    packs = {
        "only_in_a": sorted(set(pa) - set(pb)),
        "only_in_b": sorted(set(pb) - set(pa)),
        "version_drift": version_drift,
        "value_drift": value_drift,
    }
    drifted = any(profiles.values()) or any(packs.values())
    return {"a": _side(a), "b": _side(b), "in_sync": not drifted, "profiles": profiles, "packs": packs}
