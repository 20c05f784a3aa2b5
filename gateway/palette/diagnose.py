"""A cluster's health as a score from 0 to 100 with the findings that cost points.

Pure function of what Palette reports: the cluster (``v1SpectroCluster``), its overview
(``v1SpectroClusterUidSummary``: health, machine pools) and its events. Every deduction is
a finding, so the score explains itself; deductions per source are capped so one noisy
source cannot hide the others.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["Diagnosis", "Finding", "diagnose"]

FindingSeverity = Literal["info", "warning", "critical"]

_STATE_PENALTY: dict[str, tuple[int, FindingSeverity, str]] = {
    "running": (0, "info", "cluster is running"),
    "pending": (20, "warning", "cluster is waiting to be provisioned"),
    "provisioning": (20, "warning", "cluster is still provisioning"),
    "importing": (20, "warning", "cluster is being imported"),
    "updating": (10, "info", "cluster is being updated"),
    "deleting": (60, "critical", "cluster is being deleted"),
    "deleted": (100, "critical", "cluster is deleted"),
    "failed": (60, "critical", "cluster provisioning failed"),
    "error": (60, "critical", "cluster is in an error state"),
}


class Finding(BaseModel):
    severity: FindingSeverity
    source: Literal["state", "health", "conditions", "machine_pools", "events"]
    message: str
    penalty: int


class Diagnosis(BaseModel):
    uid: str
    name: str
    score: int
    verdict: Literal["healthy", "degraded", "critical"]
    state: str
    health: str
    findings: list[Finding]


def _state(state: str) -> list[Finding]:
    penalty, severity, message = _STATE_PENALTY.get(
        state.lower(), (30, "warning", f"cluster is in an unusual state {state or 'unknown'!r}")
    )
    return [Finding(severity=severity, source="state", message=message, penalty=penalty)]


def _health(health: dict[str, Any], running: bool) -> list[Finding]:
    state = str(health.get("state") or "Unknown")
    found: list[Finding] = []
    if state.lower() == "unhealthy":
        found.append(
            Finding(
                severity="critical",
                source="health",
                message="Palette reports the cluster unhealthy",
                penalty=30,
            )
        )
    elif state.lower() != "healthy" and running:
        found.append(
            Finding(
                severity="warning",
                source="health",
                message=f"health is {state}: no recent heartbeat",
                penalty=10,
            )
        )
    for cond in (health.get("conditions") or [])[:3]:
        found.append(
            Finding(
                severity="warning",
                source="health",
                message=f"{cond.get('type', 'health')}: {cond.get('message', '')}".strip(),
                penalty=5,
            )
        )
    return found


def _conditions(conditions: list[dict[str, Any]]) -> list[Finding]:
    found = []
    for cond in conditions:
        if str(cond.get("status", "")).lower() == "false":
            message = f"condition {cond.get('type')} is False"
            if cond.get("reason") or cond.get("message"):
                message += f" ({cond.get('reason') or ''}: {cond.get('message') or ''})"
            found.append(Finding(severity="warning", source="conditions", message=message, penalty=10))
    return found[:3]


def _pools(pools: list[dict[str, Any]]) -> list[Finding]:
    found = []
    for pool in pools:
        size, healthy = int(pool.get("size") or 0), pool.get("healthy")
        if isinstance(healthy, int) and healthy < size:
            found.append(
                Finding(
                    severity="warning",
                    source="machine_pools",
                    message=f"pool {pool.get('name')}: {healthy} of {size} machines healthy",
                    penalty=10,
                )
            )
    return found[:3]


def _events(events: list[dict[str, Any]]) -> list[Finding]:
    found = []
    for event in events:
        severity = str(event.get("severity") or "").lower()
        if severity in ("warning", "error"):
            found.append(
                Finding(
                    severity="critical" if severity == "error" else "warning",
                    source="events",
                    message=f"{event.get('reason', 'Event')}: {event.get('message', '')}",
                    penalty=10 if severity == "error" else 5,
                )
            )
    return found[:5]


def diagnose(cluster: dict[str, Any], overview: dict[str, Any], events: list[dict[str, Any]]) -> Diagnosis:
    meta = cluster.get("metadata") or {}
    status = cluster.get("status") or {}
    ov_status = overview.get("status") or {}
    health = ov_status.get("health") or {}
    state = str(status.get("state") or ov_status.get("state") or "")
    pools = ((overview.get("spec") or {}).get("cloudConfig") or {}).get("machinePools") or []
    findings = [
        *_state(state),
        *_health(health, state.lower() == "running"),
        *_conditions(status.get("conditions") or ov_status.get("conditions") or []),
        *_pools(pools),
        *_events(events),
    ]
    score = max(0, 100 - sum(f.penalty for f in findings))
    verdict: Literal["healthy", "degraded", "critical"] = (
        "healthy" if score >= 80 else "degraded" if score >= 50 else "critical"
    )
    return Diagnosis(
        uid=str(meta.get("uid", "")),
        name=str(meta.get("name", "")),
        score=score,
        verdict=verdict,
        state=state or "unknown",
        health=str(health.get("state") or "Unknown"),
        findings=[f for f in findings if f.penalty > 0],
    )
