"""`gateway token create | list | revoke`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.auth import TokenStore, hash_token
from gateway.cli import app

runner = CliRunner()


def _create(tokens: Path, *args: str) -> str:
    result = runner.invoke(app, ["token", "create", "--tokens-file", str(tokens), *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_create_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    token = _create(tokens, "--subject", "alice", "--group", "sre", "--group", "oncall")
    assert token.startswith("pgw_")
    assert token not in tokens.read_text()
    assert json.loads(tokens.read_text()) == {
        "sha256": hash_token(token),
        "subject": "alice",
        "groups": ["sre", "oncall"],
    }
    principal = TokenStore(tokens).authenticate(token)
    assert principal is not None
    assert principal.groups == ("sre", "oncall")


def test_create_uses_the_configured_tokens_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "configured.jsonl"
    monkeypatch.setenv("GATEWAY_TOKENS_FILE", str(tokens))
    result = runner.invoke(app, ["token", "create", "--subject", "alice"])
    assert result.exit_code == 0
    assert TokenStore(tokens).authenticate(result.stdout.strip()) is not None


def test_create_without_a_tokens_file_explains_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_TOKENS_FILE", raising=False)
    result = runner.invoke(app, ["token", "create", "--subject", "alice"])
    assert result.exit_code == 2
    assert "GATEWAY_TOKENS_FILE" in result.output


def test_create_refuses_an_empty_subject_and_changes_nothing(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    result = runner.invoke(app, ["token", "create", "--tokens-file", str(tokens), "--subject", ""])
    assert result.exit_code == 2
    assert not tokens.exists()


def test_list_shows_subjects_and_hash_prefixes_never_tokens(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    token = _create(tokens, "--subject", "alice", "--group", "sre", "--comment", "laptop")
    result = runner.invoke(app, ["token", "list", "--tokens-file", str(tokens)])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{hash_token(token)[:12]}  alice  sre  # laptop"


def test_revoke_by_subject_removes_only_that_subjects_tokens(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    alice = _create(tokens, "--subject", "alice")
    bob = _create(tokens, "--subject", "bob")
    store = TokenStore(tokens)
    result = runner.invoke(app, ["token", "revoke", "--tokens-file", str(tokens), "--subject", "alice"])
    assert result.exit_code == 0
    assert store.authenticate(alice) is None
    assert store.authenticate(bob) is not None


def test_revoke_by_hash_prefix(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    first = _create(tokens, "--subject", "alice")
    second = _create(tokens, "--subject", "alice")
    prefix = hash_token(first)[:10]
    result = runner.invoke(app, ["token", "revoke", "--tokens-file", str(tokens), "--sha256", prefix])
    assert result.exit_code == 0
    store = TokenStore(tokens)
    assert store.authenticate(first) is None
    assert store.authenticate(second) is not None


@pytest.mark.parametrize(
    "args",
    [[], ["--subject", "alice", "--sha256", "abcdef12"], ["--sha256", "abc"], ["--subject", "nobody"]],
)
def test_revoke_with_a_bad_selector_changes_nothing(tmp_path: Path, args: list[str]) -> None:
    tokens = tmp_path / "tokens.jsonl"
    _create(tokens, "--subject", "alice")
    before = tokens.read_text()
    result = runner.invoke(app, ["token", "revoke", "--tokens-file", str(tokens), *args])
    assert result.exit_code == 2
    assert tokens.read_text() == before
