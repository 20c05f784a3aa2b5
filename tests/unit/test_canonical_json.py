"""Canonical JSON is RFC 8785: the RFC's own examples, the ``rfc8785`` package as the
definition on generated values, NaN and unsafe integers refused, and the call fingerprint
computed once per call."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contracts import (
    PlannedCall,
    Principal,
    ProposedAction,
    Target,
    canonical_json,
    canonical_json_v1,
)

# Section 3.2.2 of RFC 8785: numbers as ECMAScript prints them, strings minimally escaped.
RFC_INPUT = (
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
    ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
    ' "literals": [null, true, false]}'
)
RFC_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)

_keys = st.text(max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)
# The values the gateway hashes most: no fractional numbers, ASCII keys.
_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_the_rfc_example_is_encoded_as_the_rfc_prints_it() -> None:
    assert canonical_json(json.loads(RFC_INPUT)) == RFC_OUTPUT


def test_keys_are_sorted_by_utf16_code_units_as_the_rfc_orders_them() -> None:
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    encoded = canonical_json(dict.fromkeys(keys, 0))
    assert list(json.loads(encoded)) == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@settings(max_examples=400, deadline=None)
@given(_values)
def test_every_value_is_encoded_exactly_as_the_rfc8785_package_encodes_it(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value).decode("utf-8")


@settings(max_examples=200, deadline=None)
@given(_plain_values)
def test_values_without_fractions_have_the_same_bytes_as_before_rfc8785(value: Any) -> None:
    # So calls parked before the upgrade keep their fingerprint.
    assert canonical_json(value) == canonical_json_v1(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (math.nan, "not representable"),
        (math.inf, "not representable"),
        (-math.inf, "not representable"),
        ({"a": [1, math.nan]}, "not representable"),
        (2**53, "safe integer domain"),
        (-(2**53), "safe integer domain"),
        ({1: "a"}, "keys must be strings"),
        ({"a": "\ud800"}, "surrogate|non-UTF-8"),
        ({"a": {1}}, "unsupported type"),
    ],
    ids=["nan", "inf", "-inf", "nested-nan", "2^53", "-2^53", "int-key", "lone-surrogate", "set"],
)
def test_values_json_cannot_carry_exactly_are_refused(value: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        canonical_json(value)


def _call(replicas: int = 3) -> PlannedCall:
    action = ProposedAction(
        tool="k8s_scale",
        backend="kubernetes",
        operation="scale",
        effect="write",
        target=Target(namespace="dev", kind="Deployment", name="api"),
        args={"replicas": replicas},
        principal=Principal(subject="alice", transport="stdio", authenticated=True),
    )
    return PlannedCall(tool="k8s_scale", call_args={"replicas": replicas}, actions=(action,))


def test_a_call_is_fingerprinted_once_and_a_changed_copy_again() -> None:
    call = _call()
    first = call.fingerprint()
    assert call.fingerprint() is first
    assert call == PlannedCall.model_validate(call.model_dump())  # the cached value is not compared
    changed = call.model_copy(update={"call_args": {"replicas": 4}})
    assert changed.fingerprint() != first
    assert call.model_copy().fingerprint() == first
