"""Diagnose, compare and recommend as pure functions: the edges the fake does not seed."""

from __future__ import annotations

from typing import Any

from gateway.palette.compare import compare_clusters
from gateway.palette.diagnose import diagnose
from gateway.palette.recommend import recommend


def cluster(state: str, templates: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": "u1", "name": "c1"},
        "spec": {"clusterProfileTemplates": templates or []},
        "status": {"state": state, **status},
    }


def overview(health: str, pools: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    return {
        "spec": {
            "cloudConfig": {
                "machinePools": [
                    {"name": f"p{i}", "size": s, "healthy": h} for i, (s, h) in enumerate(pools or [])
                ]
            }
        },
        "status": {"health": {"state": health}},
    }


def test_a_healthy_running_cluster_scores_100_with_no_findings() -> None:
    result = diagnose(cluster("Running"), overview("Healthy", [(3, 3)]), [])
    assert (result.score, result.verdict, result.findings) == (100, "healthy", [])


def test_a_deleting_cluster_is_critical() -> None:
    result = diagnose(cluster("Deleting"), overview("Unknown"), [])
    assert result.verdict == "critical"
    assert result.findings[0].source == "state"


def test_a_running_cluster_without_heartbeat_is_marked_down() -> None:
    result = diagnose(cluster("Running"), overview("Unknown"), [])
    assert result.score == 90
    assert result.findings[0].message.startswith("health is Unknown")


def test_noisy_events_cannot_sink_the_score_alone() -> None:
    events = [{"severity": "Warning", "reason": "R", "message": "m"}] * 50
    result = diagnose(cluster("Running"), overview("Healthy"), events)
    assert result.score == 75  # capped at five findings
    assert len(result.findings) == 5


def test_error_events_weigh_more_than_warnings() -> None:
    result = diagnose(cluster("Running"), overview("Healthy"), [{"severity": "Error", "reason": "Crash"}])
    assert result.score == 90
    assert result.findings[0].severity == "critical"


def test_the_score_never_goes_below_zero() -> None:
    conditions = [{"type": f"T{i}", "status": "False"} for i in range(5)]
    events = [{"severity": "Error"}] * 5
    result = diagnose(cluster("Failed", conditions=conditions), overview("UnHealthy", [(3, 0)] * 3), events)
    assert result.score == 0


def _template(name: str, packs: list[dict[str, Any]], version: str = "1.0.0") -> dict[str, Any]:
    return {"name": name, "profileVersion": version, "packs": packs}


def test_identical_clusters_are_in_sync() -> None:
    packs = [{"name": "k8s", "tag": "1.30", "values": "a: 1"}]
    report = compare_clusters(
        cluster("Running", [_template("p", packs)]), cluster("Running", [_template("p", packs)])
    )
    assert report["in_sync"] is True


def test_value_drift_of_non_mapping_values_reports_digests_only() -> None:
    a = cluster("Running", [_template("p", [{"name": "x", "tag": "1", "values": "- secret-one"}])])
    b = cluster("Running", [_template("p", [{"name": "x", "tag": "1", "values": "- secret-two"}], "2.0.0")])
    report = compare_clusters(a, b)
    drift = report["packs"]["value_drift"][0]
    assert drift["changed_keys"] is None
    assert drift["a"] != drift["b"]
    assert "secret" not in str(report)
    assert report["profiles"]["version_drift"] == [{"profile": "p", "a": "1.0.0", "b": "2.0.0"}]


def _profile(name: str, cloud: str, packs: list[str], description: str = "") -> dict[str, Any]:
    return {
        "metadata": {"uid": name, "name": name, "annotations": {"description": description}},
        "specSummary": {
            "published": {"cloudType": cloud, "type": "add-on", "packs": [{"name": p} for p in packs]}
        },
    }


def test_profiles_for_another_cloud_are_not_recommended() -> None:
    profiles = [
        _profile("gpu-azure", "azure", ["nvidia-gpu-operator"]),
        _profile("gpu-aws", "aws", ["nvidia"]),
    ]
    result = recommend("gpu inference", profiles, [], "aws")
    assert [p["name"] for p in result["profiles"]] == ["gpu-aws"]


def test_no_match_says_so() -> None:
    result = recommend("quantum annealing", [_profile("web", "aws", ["nginx"])], [], None)
    assert result["profiles"] == []
    assert "no existing profile" in result["note"]


def test_ties_break_by_name_so_answers_are_stable() -> None:
    profiles = [_profile("b-db", "all", ["postgres"]), _profile("a-db", "all", ["postgres"])]
    result = recommend("postgres", profiles, [], None)
    assert [p["name"] for p in result["profiles"]] == ["a-db", "b-db"]
