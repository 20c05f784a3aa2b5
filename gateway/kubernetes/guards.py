"""What a parked write is guarded by: the state of its target that policy judged.

A live object changes all the time without anyone touching what was judged: controllers
write its status whenever a pod restarts, and every such write bumps ``resourceVersion``.
So a judged write is not pinned to the resourceVersion it saw. It is pinned to the
object's identity (``uid``), its ``generation`` (the API server bumps it on every spec
change, never on a status change) and the labels and annotations policy reads. Before
executing, the write reads the object again, refuses with a Conflict that says what
changed if any of these differ, and otherwise writes with the resourceVersion of that
fresh read as a precondition, so nothing can slip in between the check and the write. A
status update in that instant only costs another read (``GUARD_ATTEMPTS`` in all).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.errors import Conflict, NotFound
from gateway.kubernetes.images import policy_image

__all__ = ["CONTROLLER_ANNOTATIONS", "GUARD_ATTEMPTS", "JudgedState", "guarded_write", "object_ref"]

JSON = dict[str, Any]
T = TypeVar("T")
GUARD_ATTEMPTS = 5
# Annotations controllers maintain on the objects they manage, without a spec change.
CONTROLLER_ANNOTATIONS = frozenset({"deployment.kubernetes.io/revision"})
# How the API server words a failed resourceVersion / uid precondition (409 Conflict): an
# update's, a patch's, and a delete's ("the ResourceVersion in the precondition (1289) does
# not match the ResourceVersion in record (1295). The object might have been modified").
_STALE_MARKERS = ("the object has been modified", "in precondition", "the object might have been modified")


def _metadata(obj: JSON | None) -> JSON:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def _annotations(meta: JSON) -> dict[str, Any]:
    return {k: v for k, v in (meta.get("annotations") or {}).items() if k not in CONTROLLER_ANNOTATIONS}


@dataclass(frozen=True)
class JudgedState:
    """The guarded part of a judged object (the before-image in the proposed action)."""

    uid: str | None
    generation: int | None
    labels: dict[str, Any]
    annotations: dict[str, Any]

    @classmethod
    def of(cls, image: JSON | None) -> JudgedState:
        meta = _metadata(image)
        generation = meta.get("generation")
        return cls(
            uid=meta.get("uid"),
            generation=generation if isinstance(generation, int) else None,
            labels=dict(meta.get("labels") or {}),
            annotations=_annotations(meta),
        )

    def drift(self, live: JSON) -> str | None:
        """What changed in ``live`` (a raw object from the API) since it was judged, or None."""
        meta = _metadata(policy_image(live))
        if meta.get("uid") != self.uid:
            return "it was deleted and created again (its uid differs)"
        generation = meta.get("generation")
        if self.generation is not None and generation != self.generation:
            return f"its spec changed (generation {self.generation} -> {generation})"
        labels = dict(meta.get("labels") or {})
        if labels != self.labels:
            return f"its labels changed ({_keys_changed(self.labels, labels)})"
        annotations = _annotations(meta)
        if annotations != self.annotations:
            return f"its annotations changed ({_keys_changed(self.annotations, annotations)})"
        return None


def object_ref(kind: str, name: str, namespace: str | None) -> str:
    """How errors name the object: ``Deployment dev/web`` or ``Node node-1``."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _stale_version(exc: Conflict) -> bool:
    """A Conflict from the version precondition (retry), not from field ownership (report)."""
    text = str(exc).lower()
    return any(marker.lower() in text for marker in _STALE_MARKERS)


def _keys_changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    shown = ", ".join(keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


async def guarded_write(
    judged: JudgedState,
    read: Callable[[], Awaitable[JSON]],
    write: Callable[[str], Awaitable[T]],
    *,
    what: str,
    on_read: Callable[[JSON], None] | None = None,
) -> T:
    """Read the live object, check it against ``judged``, then ``write(resource_version)``
    with the version just read as precondition; a Conflict from the write means the object
    moved in between (status churn) and is read and checked again. ``on_read`` is given
    each live object that passed the check, before its write: the last one is the object
    as the write found it (the journal's before-image)."""
    for _ in range(GUARD_ATTEMPTS):
        try:
            live = await read()
        except NotFound as exc:
            raise Conflict(f"{what} no longer exists; nothing was written, propose the call again") from exc
        drift = judged.drift(live)
        if drift is not None:
            raise Conflict(
                f"{what} changed after policy judged it: {drift}; nothing was written, propose the call again"
            )
        version = _metadata(live).get("resourceVersion")
        if not version:
            raise Conflict(f"{what} has no resourceVersion; refusing to write it blindly")
        if on_read is not None:
            on_read(live)
        try:
            return await write(str(version))
        except Conflict as exc:
            if not _stale_version(exc):
                raise
    raise Conflict(
        f"{what} kept changing while the judged write was attempted {GUARD_ATTEMPTS} times; "
        "nothing was written, try again"
    )
