"""Admission of a tool call's arguments: size, shape and types, before anything leaves the process.

The messages name the fields and what is expected and never echo a rejected value (it may be
a secret the model was about to send somewhere), unlike pydantic's default text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.contracts import canonical_json
from gateway.errors import InvalidArguments, PayloadTooLarge
from gateway.tools import ToolSpec

__all__ = ["argument_size", "check_size", "validate_arguments", "validate_model"]

ModelT = TypeVar("ModelT", bound=BaseModel)

_MAX_FIELD_ERRORS = 8


def argument_size(arguments: Mapping[str, Any]) -> int:
    """Bytes of the canonical JSON of ``arguments``: what the size limit is measured on."""
    return len(canonical_json(dict(arguments)).encode("utf-8"))


def check_size(arguments: Mapping[str, Any], limit: int) -> None:
    """Raise ``PayloadTooLarge`` when the arguments exceed ``limit`` bytes."""
    size = argument_size(arguments)
    if size > limit:
        raise PayloadTooLarge(f"arguments are {size} bytes, above the limit of {limit} bytes")


def validate_arguments(spec: ToolSpec[Any], arguments: Mapping[str, Any]) -> BaseModel:
    """``arguments`` validated by the tool's ``args`` model; raises ``InvalidArguments``."""
    validated: BaseModel = validate_model(spec.name, spec.args, arguments)
    return validated


def validate_model(tool: str, model: type[ModelT], arguments: Mapping[str, Any]) -> ModelT:
    """``arguments`` validated by ``model``. Unknown arguments are refused (a misspelt
    optional argument would otherwise be silently ignored). Raises ``InvalidArguments``."""
    fields = model.model_fields
    known = {f.alias or name for name, f in fields.items()} | set(fields)
    unknown = sorted(str(k) for k in arguments if k not in known)
    if unknown:
        raise InvalidArguments(
            f"invalid arguments for {tool}: unknown argument(s) {', '.join(unknown)[:200]}; "
            f"expected {', '.join(sorted(fields)) or 'no arguments'}"
        )
    try:
        return model.model_validate(dict(arguments))
    except ValidationError as exc:
        # Some clients send lists and objects as JSON text; accept that, as the MCP SDK does.
        decoded = _decode_json_strings(arguments)
        if decoded is not None:
            try:
                return model.model_validate(decoded)
            except ValidationError:
                pass
        raise InvalidArguments(_describe(tool, exc)) from None


def _decode_json_strings(arguments: Mapping[str, Any]) -> dict[str, Any] | None:
    changed = False
    out = dict(arguments)
    for key, value in arguments.items():
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                out[key] = json.loads(value)
                changed = True
            except ValueError:
                continue
    return out if changed else None


def _describe(tool: str, exc: ValidationError) -> str:
    """Field locations, what is expected, never the rejected value (it may be a secret)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:_MAX_FIELD_ERRORS]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - _MAX_FIELD_ERRORS
    return f"invalid arguments for {tool}: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
