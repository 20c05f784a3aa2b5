"""Objects as policy judges them and as read tools return them: noise removed.

``managedFields`` is bookkeeping of the server (who set which field when); it is large
and says nothing about what the object does, so neither policy nor the model sees it.
Secret values never reach policy (``policy_image``); in read results they stay for the
decision's redaction obligation to remove, but the last-applied annotation, which would
bypass that obligation, is digested.
"""

from __future__ import annotations

from typing import Any

from gateway.kubernetes.secrets import digest_last_applied, digest_secret_values, is_secret

__all__ = ["policy_image", "read_view", "without_noise"]

JSON = dict[str, Any]


def without_noise(obj: JSON) -> JSON:
    """A copy without ``metadata.managedFields``. Only the top level and ``metadata`` are
    copied (a deep copy of every read costs more than the rest of the backend's work);
    nothing below is modified here, so ``obj`` stays as it was."""
    out = dict(obj)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return out


def policy_image(obj: JSON | None) -> JSON | None:
    """The before- or after-image in a proposed action."""
    if obj is None:
        return None
    clean = without_noise(obj)
    return digest_secret_values(clean) if is_secret(clean) else clean


def read_view(obj: JSON, *, kind: str, api_version: str) -> JSON:
    """One object as a read tool returns it; list items get their ``kind`` back."""
    clean = {"apiVersion": api_version, "kind": kind, **without_noise(obj)}
    if is_secret(clean):
        digest_last_applied(clean)
    return clean
