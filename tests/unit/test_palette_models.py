"""The create body as policy relies on it, the spec loader's override and the fake's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import InvalidArguments
from gateway.local.fake_palette.__main__ import main as fake_main
from gateway.local.fake_palette.samples import aws_create_body
from gateway.local.palette_spec import SpecValidator, default_spec_path
from gateway.palette.models import CreateClusterArgs, UpdateProfilesArgs, parse_create_body


def test_the_create_body_gets_its_cloud_type_and_keeps_unknown_fields() -> None:
    body = aws_create_body("a", [("w", 2, "m5.large")], environment="dev")
    body["spec"]["policies"] = {"backupPolicy": {"schedule": "@daily"}}
    parsed = parse_create_body(body, "aws")
    assert parsed["spec"]["cloudType"] == "aws"
    assert parsed["spec"]["policies"] == {"backupPolicy": {"schedule": "@daily"}}
    assert parsed["metadata"]["labels"] == {"environment": "dev"}


def test_a_contradicting_cloud_type_is_refused() -> None:
    body = aws_create_body("a", [("w", 2, "m5.large")])
    body["spec"]["cloudType"] = "azure"
    with pytest.raises(InvalidArguments, match="is not cloud_type 'aws'"):
        parse_create_body(body, "aws")


def test_errors_name_fields_but_never_echo_values() -> None:
    body = aws_create_body("a", [("w", 2, "m5.large")])
    body["spec"]["cloudAccountUid"] = {"token": "s3cr3t-value"}
    body["metadata"]["name"] = "Not_A_Valid_Name"
    with pytest.raises(InvalidArguments) as info:
        parse_create_body(body, "aws")
    message = str(info.value)
    assert "spec.cloudAccountUid" in message
    assert "metadata.name" in message
    assert "s3cr3t" not in message
    assert "Not_A_Valid_Name" not in message


@pytest.mark.parametrize("size", [-1, 1.5, True, "3"])
def test_pool_sizes_must_be_plain_non_negative_integers(size: object) -> None:
    body = aws_create_body("a", [("w", 2, "m5.large")])
    body["spec"]["machinepoolconfig"][0]["poolConfig"]["size"] = size
    with pytest.raises(InvalidArguments, match="size"):
        parse_create_body(body, "aws")


def test_unsupported_cloud_types_and_empty_profile_lists_are_argument_errors() -> None:
    with pytest.raises(ValueError, match="cloud_type"):
        CreateClusterArgs.model_validate({"cloud_type": "openstack", "spec": {}})
    with pytest.raises(ValueError, match="profiles"):
        UpdateProfilesArgs.model_validate({"uid": "abc", "profiles": []})
    with pytest.raises(ValueError, match="uid"):
        UpdateProfilesArgs.model_validate({"uid": "../etc", "profiles": [{"uid": "p"}]})


def test_the_spec_path_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {
        "paths": {},
        "definitions": {"v1Thing": {"type": "object", "required": ["a"], "x-omitempty": True}},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    monkeypatch.setenv("GATEWAY_PALETTE_SPEC", str(path))
    assert default_spec_path() == path
    validator = SpecValidator()
    assert validator.errors("v1Thing", {"a": 1}) == []
    assert validator.errors("v1Thing", {}) == ["v1Thing: <root>: 'a' is a required property"]
    with pytest.raises(KeyError):
        validator.errors("v1Missing", {})


def test_the_fake_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PALETTE_API_KEY", raising=False)
    assert fake_main(["--port", "1"]) == 2
