"""Admission of a tool call's arguments: size, shape and types, before anything leaves the process.

The one validation of a call's arguments: ``validate_model`` with the tool's pydantic model,
which the pipeline carries on to planning and execution (the MCP SDK does not validate them
again). Lists and objects sent as JSON text are refused like any other wrong type: the SDK's
decoding of them is bypassed with its validation. The messages name the fields and what is
expected and never echo a rejected value (it may be a secret the model was about to send
somewhere), unlike pydantic's default text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.contracts import canonical_json
from gateway.errors import InvalidArguments, PayloadTooLarge

__all__ = ["argument_size", "check_size", "validate_model"]

ModelT = TypeVar("ModelT", bound=BaseModel)

_MAX_FIELD_ERRORS = 8


def argument_size(arguments: Mapping[str, Any]) -> int:
    """Bytes of the canonical JSON of ``arguments``: what the size limit is measured on.

    Raises ``InvalidArguments`` for a value JSON cannot carry exactly (NaN, Infinity, an
    integer beyond ±2**53): such a call could neither be judged nor fingerprinted.
    """
    try:
        return len(canonical_json(dict(arguments)).encode("utf-8"))
    except ValueError:
        raise InvalidArguments(
            "invalid arguments: a number is NaN, infinite or an integer beyond ±2^53, which JSON "
            "cannot carry exactly; send it as a string or a smaller number"
        ) from None


def check_size(arguments: Mapping[str, Any], limit: int) -> None:
    """Raise ``PayloadTooLarge`` when the arguments exceed ``limit`` bytes (and
    ``InvalidArguments`` when they cannot be measured, see ``argument_size``)."""
    size = argument_size(arguments)
    if size > limit:
        raise PayloadTooLarge(f"arguments are {size} bytes, above the limit of {limit} bytes")


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
        raise InvalidArguments(_describe(tool, exc)) from None


def _describe(tool: str, exc: ValidationError) -> str:
    """Field locations, what is expected, never the rejected value (it may be a secret)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:_MAX_FIELD_ERRORS]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - _MAX_FIELD_ERRORS
    return f"invalid arguments for {tool}: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
