"""Secret values replaced by digests before an object reaches policy.

A Secret's ``data`` (base64) and ``stringData`` (plain) values become
``sha256:<hex>`` of the decoded bytes, so the same value digests alike in either field
and policy can still compare before- and after-images. kubectl's last-applied annotation
repeats the whole manifest, values included, so it is digested too.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from typing import Any

__all__ = ["LAST_APPLIED", "digest", "digest_last_applied", "digest_secret_values", "is_secret"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def digest(value: bytes) -> str:
    return "sha256:" + hashlib.sha256(value).hexdigest()


def is_secret(obj: dict[str, Any], kind: str | None = None, api_version: str | None = None) -> bool:
    """``kind``/``api_version`` stand in for list items, which carry neither."""
    return (obj.get("kind") or kind) == "Secret" and (obj.get("apiVersion") or api_version) == "v1"


def _decoded(value: Any) -> bytes:
    text = value if isinstance(value, str) else str(value)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # Not valid base64: the server will reject it; digest what was given.
        return text.encode("utf-8")


def digest_secret_values(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Secret with every value digested (callers check ``is_secret``)."""
    out = copy.deepcopy(obj)
    data = out.get("data")
    if isinstance(data, dict):
        out["data"] = {key: digest(_decoded(value)) for key, value in data.items()}
    string_data = out.get("stringData")
    if isinstance(string_data, dict):
        out["stringData"] = {key: digest(str(value).encode("utf-8")) for key, value in string_data.items()}
    digest_last_applied(out)
    return out


def digest_last_applied(obj: dict[str, Any]) -> None:
    """The last-applied annotation of a Secret holds its values in clear. Replaces
    ``obj["metadata"]["annotations"]`` with a new mapping; ``obj["metadata"]`` must be
    the caller's own."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict) and isinstance(annotations.get(LAST_APPLIED), str):
        value = digest(annotations[LAST_APPLIED].encode("utf-8"))
        metadata["annotations"] = {**annotations, LAST_APPLIED: value}
