"""Redaction: every tool result is cleaned here before it leaves the gateway.

``redact(value, paths)`` returns a copy of a JSON-like value in which

- Secret ``data`` / ``stringData`` values are replaced, wherever a mapping looks like a
  Secret (``kind: Secret``, or a Secret's ``type`` such as ``Opaque`` next to ``data``;
  also the items of a ``SecretList``, which Kubernetes returns without their own kind),
  together with the ``last-applied-configuration`` annotation that copies them;
- environment values whose names look secret (``env: [{name: DB_PASSWORD, value: …}]``)
  and string values under mapping keys that look secret (``password``, ``apiKey``, …);
- bearer tokens, JWTs, cloud access keys and private-key PEM blocks inside any string;
- every value under the JSON-pointer-like ``paths`` a decision's ``redact`` obligation
  names (``/data``, ``/items/*/data``; ``*`` matches any key or index; keys are kept).

Redaction never fails and never shrinks a structure: keys stay, values become
``REDACTED``, so the model still sees which fields exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["REDACTED", "redact", "redact_text", "secret_name"]

REDACTED = "<redacted>"

_SECRET_TYPES = re.compile(
    r"^(Opaque|kubernetes\.io/.+|bootstrap\.kubernetes\.io/.+|helm\.sh/release\.v\d+)$"
)
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Names of variables whose values are credentials, matched case-insensitively anywhere in the
# name, so DB_PASSWORD, apiKey, AWS_SECRET_ACCESS_KEY and STRIPE_KEY all count.
_CREDENTIAL = (
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|"
    r"authorization|session[-_]?key|signing[-_]?key|encryption[-_]?key|conn(ection)?[-_]?string|dsn"
)
_SECRET_VAR = re.compile(rf"{_CREDENTIAL}|(^|[-_])key($|[-_])", re.IGNORECASE)
# Mapping keys are stricter: a bare `key` is a label key in selectors and tolerations.
_SECRET_KEY = re.compile(_CREDENTIAL, re.IGNORECASE)
# Names that point at a secret or describe it rather than hold it.
_REFERENCE_NAME = re.compile(r"(name|ref|path|file|keys|id|uid|seconds|type|mode)$", re.IGNORECASE)

_TEXT_PATTERNS: tuple[re.Pattern[str], ...] = (
    # PEM private keys (RSA, EC, OPENSSH, ENCRYPTED, plain PKCS#8), possibly truncated.
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.DOTALL),
    # JSON Web Tokens: base64url header and payload (both JSON objects, so `eyJ`) and signature.
    re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"),
    # Authorization header values.
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"(?i)(?<=basic )[A-Za-z0-9+/]{8,}=*"),
    # AWS access key ids, and secret keys written next to their name.
    re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    re.compile(r"(?i)(?P<keep>aws_secret_access_key\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
    # GCP API keys and OAuth client secrets.
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"\bGOCSPX-[0-9A-Za-z_-]{20,}"),
    # Azure storage account keys and SAS signatures, client secrets.
    re.compile(r"(?i)(?<=accountkey=)[A-Za-z0-9+/=]{20,}"),
    re.compile(r"(?i)(?<=sig=)[A-Za-z0-9%+/=]{20,}"),
    re.compile(r"\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}\b"),
    # GitHub, GitLab, Slack tokens and `user:password@` in URLs.
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,})"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
)


def secret_name(name: str) -> bool:
    """Whether an environment variable's name says its value is a credential."""
    return bool(_SECRET_VAR.search(name)) and not _REFERENCE_NAME.search(name)


def _secret_key(name: str) -> bool:
    return bool(_SECRET_KEY.search(name)) and not _REFERENCE_NAME.search(name)


def redact_text(text: str) -> str:
    """``text`` with every credential pattern replaced by ``REDACTED``."""
    for pattern in _TEXT_PATTERNS:
        if pattern.search(text):
            text = pattern.sub(_substitute, text)
    return text


def _substitute(match: re.Match[str]) -> str:
    # A pattern may keep its leading context (`aws_secret_access_key = <redacted>`).
    return (match.groupdict().get("keep") or "") + REDACTED


def redact(value: Any, paths: Sequence[str] = ()) -> Any:
    """A redacted copy of ``value`` (see the module docstring). ``value`` is not changed."""
    cleaned = _walk(value)
    for path in paths:
        cleaned = _blank_path(cleaned, _split(path))
    return cleaned


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return _walk_mapping(value)
    if isinstance(value, (list, tuple)):
        return [_walk(v) for v in value]
    return value


def _walk_mapping(value: Mapping[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(key, str) and isinstance(item, str) and _secret_key(key):
            out[key] = REDACTED
        else:
            out[key] = _walk(item)
    if _is_secret(out):
        _blank_secret(out)
    if out.get("kind") == "SecretList" and isinstance(out.get("items"), list):
        for item in out["items"]:
            if isinstance(item, dict):
                _blank_secret(item)
    if _is_env_var(out):
        out["value"] = REDACTED
    return out


def _is_secret(obj: Mapping[str, Any]) -> bool:
    if obj.get("kind") == "Secret":
        return True
    kind_type = obj.get("type")
    return (
        isinstance(kind_type, str)
        and bool(_SECRET_TYPES.match(kind_type))
        and (isinstance(obj.get("data"), Mapping) or isinstance(obj.get("stringData"), Mapping))
    )


def _blank_secret(obj: dict[str, Any]) -> None:
    for field in ("data", "stringData"):
        if field in obj:
            obj[field] = _blank(obj[field])
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            metadata["annotations"] = {**annotations, _LAST_APPLIED: REDACTED}


def _is_env_var(obj: Mapping[str, Any]) -> bool:
    name = obj.get("name")
    return isinstance(name, str) and "value" in obj and obj["value"] != REDACTED and secret_name(name)


def _blank(value: Any) -> Any:
    """Every leaf replaced, keys and list lengths kept."""
    if isinstance(value, Mapping):
        return {k: _blank(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_blank(v) for v in value]
    return REDACTED


def _split(path: str) -> list[str]:
    # RFC 6901: "/a//b" has an empty key in the middle; "" is the whole document.
    if path == "":
        return []
    parts = path.split("/")[1:] if path.startswith("/") else path.split("/")
    return [p.replace("~1", "/").replace("~0", "~") for p in parts]


def _blank_path(value: Any, parts: list[str]) -> Any:
    if not parts:
        return _blank(value)
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        keys: Iterable[Any] = value.keys() if head == "*" else ([head] if head in value else [])
        updated = dict(value)
        for key in list(keys):
            updated[key] = _blank_path(value[key], rest)
        return updated
    if isinstance(value, list):
        updated_list = list(value)
        for index in _indexes(head, len(value)):
            updated_list[index] = _blank_path(value[index], rest)
        return updated_list
    return value


def _indexes(head: str, length: int) -> range | list[int]:
    if head == "*":
        return range(length)
    if head.isdigit() and int(head) < length:
        return [int(head)]
    return []
