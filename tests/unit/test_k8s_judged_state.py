"""What a judged write is pinned to: identity, spec generation, labels and annotations;
and how the guarded write retries a stale version but nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import Conflict, NotFound
from gateway.kubernetes.guards import GUARD_ATTEMPTS, JudgedState, guarded_write


def _obj(**meta: Any) -> dict[str, Any]:
    base = {
        "uid": "u1",
        "generation": 3,
        "resourceVersion": "100",
        "labels": {"app": "web"},
        "annotations": {},
    }
    return {"metadata": {**base, **meta}, "spec": {"replicas": 2}, "status": {"readyReplicas": 2}}


JUDGED = JudgedState.of(_obj())


def test_status_and_resource_version_churn_is_not_drift() -> None:
    live = _obj(resourceVersion="250")
    live["status"] = {"readyReplicas": 0, "conditions": [{"type": "Available", "status": "False"}]}
    assert JUDGED.drift(live) is None


def test_the_deployment_controllers_revision_annotation_is_not_drift() -> None:
    assert JUDGED.drift(_obj(annotations={"deployment.kubernetes.io/revision": "7"})) is None


@pytest.mark.parametrize(
    ("live", "said"),
    [
        (_obj(uid="u2"), "it was deleted and created again (its uid differs)"),
        (_obj(generation=4), "its spec changed (generation 3 -> 4)"),
        (_obj(labels={"app": "web", "tier": "gold"}), "its labels changed (tier)"),
        (_obj(annotations={"exempt": "yes"}), "its annotations changed (exempt)"),
    ],
)
def test_identity_spec_labels_and_annotations_are_drift(live: dict[str, Any], said: str) -> None:
    assert JUDGED.drift(live) == said


@pytest.mark.parametrize(
    "stale",
    [
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified',
        # A delete with a resourceVersion precondition, as kube-apiserver 1.30 refuses it.
        'Operation cannot be fulfilled on Deployment.apps "web": the ResourceVersion in the precondition '
        "(101) does not match the ResourceVersion in record (102). The object might have been modified",
    ],
)
async def test_a_stale_version_is_read_and_checked_again(stale: str) -> None:
    versions = iter(["101", "102"])
    written: list[str] = []

    async def read() -> dict[str, Any]:
        return _obj(resourceVersion=next(versions))

    async def write(version: str) -> str:
        written.append(version)
        if version == "101":
            raise Conflict(stale)
        return "done"

    assert await guarded_write(JUDGED, read, write, what="Deployment dev/web") == "done"
    assert written == ["101", "102"]


async def test_a_field_ownership_conflict_is_reported_not_retried() -> None:
    calls = 0

    async def read() -> dict[str, Any]:
        return _obj()

    async def write(version: str) -> str:
        nonlocal calls
        calls += 1
        raise Conflict('Apply failed with 1 conflict: conflict with "hpa" using apps/v1: .spec.replicas')

    with pytest.raises(Conflict, match="Apply failed"):
        await guarded_write(JUDGED, read, write, what="Deployment dev/web")
    assert calls == 1


async def test_an_object_that_never_holds_still_is_given_up_on() -> None:
    calls = 0

    async def read() -> dict[str, Any]:
        return _obj()

    async def write(version: str) -> str:
        nonlocal calls
        calls += 1
        raise Conflict(
            "Precondition failed: ResourceVersion in precondition: 100, ResourceVersion in object meta: 101"
        )

    with pytest.raises(
        Conflict, match=f"kept changing while the judged write was attempted {GUARD_ATTEMPTS} times"
    ):
        await guarded_write(JUDGED, read, write, what="Deployment dev/web")
    assert calls == GUARD_ATTEMPTS


async def test_drift_and_disappearance_write_nothing() -> None:
    async def never(version: str) -> str:
        raise AssertionError("written")

    async def respecced() -> dict[str, Any]:
        return _obj(generation=9)

    async def gone() -> dict[str, Any]:
        raise NotFound('deployments.apps "web" not found')

    with pytest.raises(
        Conflict, match=r"Deployment dev/web changed after policy judged it: its spec changed"
    ):
        await guarded_write(JUDGED, respecced, never, what="Deployment dev/web")
    with pytest.raises(Conflict, match="Deployment dev/web no longer exists; nothing was written"):
        await guarded_write(JUDGED, gone, never, what="Deployment dev/web")
