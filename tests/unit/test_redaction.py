"""Redaction: a secret planted anywhere in a result never survives, and nothing else is lost."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.redaction import REDACTED, redact, redact_text, secret_name

MARK = "zq9SECRETzq9"  # a value no redaction pattern matches by itself

# A JWT, bearer token, PEM block and cloud keys, each carrying MARK in the secret part.
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ" + MARK + "In0.c2lnbmF0dXJl" + MARK
PEM = f"-----BEGIN RSA PRIVATE KEY-----\nMIIEow{MARK}IBAAKCAQEA\nAbC{MARK}==\n-----END RSA PRIVATE KEY-----"
TEXT_SECRETS = [
    JWT,
    f"Authorization: Bearer abc{MARK}def.ghi",
    PEM,
    f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn{MARK}",  # truncated block
    "AKIA" + "ABCDEFGHIJ234567",
    "aws_secret_access_key = " + ("wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKE0"),
    "AIza" + "SyA1234567890abcdefghijklmnopqrstuv",
    "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + "A" * 30 + MARK + "==",
    f"postgres://admin:pw{MARK}@db:5432/app",
    "ghp_" + "a1B2c3D4" * 5,
]


def _leaks(value: Any, needles: list[str]) -> list[str]:
    dumped = json.dumps(value)
    return [n for n in needles if n in dumped]


def test_secret_data_and_string_data_values_are_replaced_and_keys_kept() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": MARK}},
        "data": {"password": MARK},
        "stringData": {"user": MARK},
        "type": "Opaque",
    }
    out = redact(secret)
    assert out["data"] == {"password": REDACTED}
    assert out["stringData"] == {"user": REDACTED}
    assert out["metadata"]["name"] == "db"
    assert not _leaks(out, [MARK])
    assert secret["data"] == {"password": MARK}  # the input is not changed


def test_secrets_in_a_list_without_their_own_kind_are_recognised_by_type() -> None:
    listing = {"items": [{"metadata": {"name": "a"}, "type": "kubernetes.io/tls", "data": {"tls.key": MARK}}]}
    assert not _leaks(redact(listing), [MARK])


def test_secret_list_items_are_redacted() -> None:
    listing = {"kind": "SecretList", "items": [{"metadata": {"name": "a"}, "data": {"k": MARK}}]}
    assert redact(listing)["items"][0]["data"] == {"k": REDACTED}


def test_secret_looking_environment_values_are_replaced() -> None:
    pod = {
        "env": [
            {"name": "DB_PASSWORD", "value": MARK},
            {"name": "STRIPE_KEY", "value": MARK},
            {"name": "LOG_LEVEL", "value": "debug"},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
        ]
    }
    out = redact(pod)
    assert [e.get("value") for e in out["env"]] == [REDACTED, REDACTED, "debug", None]
    assert out["env"][3]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "t"}


def test_label_keys_and_secret_references_are_not_mistaken_for_secrets() -> None:
    spec = {
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}],
        "volumes": [{"secret": {"secretName": "tls"}}],
        "password": MARK,
        "passwordSecretRef": "db-creds",
    }
    out = redact(spec)
    assert out["tolerations"][0]["value"] == "gpu"
    assert out["volumes"][0]["secret"]["secretName"] == "tls"
    assert out["passwordSecretRef"] == "db-creds"
    assert out["password"] == REDACTED


def test_every_text_pattern_is_redacted_inside_longer_text() -> None:
    for planted in TEXT_SECRETS:
        cleaned = redact_text(f"log line: {planted} (end)")
        assert planted not in cleaned, planted
        assert MARK not in cleaned, planted
        assert cleaned.startswith("log line: ")


def test_aws_secret_key_keeps_its_name() -> None:
    assert redact_text("aws_secret_access_key=" + "x" * 40) == "aws_secret_access_key=" + REDACTED


def test_obligation_paths_blank_every_value_below_them() -> None:
    result = {
        "items": [
            {"metadata": {"name": "a"}, "data": {"k": "v", "n": {"deep": 1}}},
            {"metadata": {"name": "b"}},
        ],
        "note": "kept",
    }
    out = redact(result, ["/items/*/data", "/missing/path", "/items/7/data"])
    assert out["items"][0]["data"] == {"k": REDACTED, "n": {"deep": REDACTED}}
    assert out["items"][1] == {"metadata": {"name": "b"}}
    assert out["note"] == "kept"


def test_obligation_paths_use_json_pointer_escapes() -> None:
    result = {"metadata": {"annotations": {"a/b": "x", "c": "y"}}}
    out = redact(result, ["/metadata/annotations/a~1b"])
    assert out["metadata"]["annotations"] == {"a/b": REDACTED, "c": "y"}


def test_plain_values_survive() -> None:
    result = {"replicas": 3, "ready": True, "image": "nginx:1.27", "ratio": 0.5, "none": None}
    assert redact(result) == result


def test_secret_names() -> None:
    assert secret_name("DB_PASSWORD")
    assert secret_name("AWS_SECRET_ACCESS_KEY")
    assert not secret_name("DB_PASSWORD_FILE")
    assert not secret_name("HOSTNAME")


# Property: plant a secret at a random place of a random JSON document.

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
_json = st.recursive(
    _json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def _planted(draw: st.DrawFn) -> tuple[Any, list[str]]:
    kind = draw(st.sampled_from(["secret", "env", "text", "obligation"]))
    secret = MARK + draw(st.text(alphabet="abcdef0123456789", min_size=4, max_size=8))
    if kind == "secret":
        field = draw(st.sampled_from(["data", "stringData"]))
        carrier: Any = {
            "kind": "Secret",
            "metadata": {"name": "x"},
            field: {draw(st.text(max_size=5)): secret},
        }
    elif kind == "env":
        name = draw(st.sampled_from(["DB_PASSWORD", "api_token", "GITHUB_TOKEN", "clientSecret", "MY_KEY"]))
        carrier = {"name": name, "value": secret}
    elif kind == "text":
        template = draw(st.sampled_from(TEXT_SECRETS))
        secret = template
        carrier = draw(st.text(max_size=5)) + " " + template + " " + draw(st.text(max_size=5))
    else:
        carrier = {"confidential": {"nested": [secret]}}
    document = draw(_json)
    return _insert(draw, document, carrier), [secret, MARK]


def _insert(draw: st.DrawFn, document: Any, carrier: Any) -> Any:
    if isinstance(document, dict) and document and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(document)))
        return {**document, key: _insert(draw, document[key], carrier)}
    if isinstance(document, list) and document and draw(st.booleans()):
        index = draw(st.integers(0, len(document) - 1))
        return [*document[:index], _insert(draw, document[index], carrier), *document[index + 1 :]]
    return {"wrapper": document, "planted": [carrier]}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_planted())
def test_a_secret_planted_anywhere_never_survives(planted: tuple[Any, list[str]]) -> None:
    document, needles = planted
    # A decision names where a tool puts confidential fields; here: wherever it was planted.
    out = redact(document, _paths_to(document, "confidential"))
    assert not _leaks(out, needles)


def _paths_to(value: Any, key: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{prefix}/{str(k).replace('~', '~0').replace('/', '~1')}"
            if k == key:
                found.append(here)
            found.extend(_paths_to(v, key, here))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(_paths_to(v, key, f"{prefix}/{i}"))
    return found


@given(_json)
def test_redaction_is_idempotent(document: Any) -> None:
    once = redact(document)
    assert redact(once) == once
