"""Bearer tokens: the tokens file, its reload, and the ASGI middleware that uses it."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.auth import BearerAuthMiddleware, TokenStore, append_token, hash_token, new_token
from gateway.contracts import Principal
from gateway.errors import ConfigError
from gateway.identity import ANONYMOUS, PRINCIPAL_SCOPE_KEY


def _bump_mtime(path: Path) -> None:
    """Make a rewrite visible even on file systems with coarse timestamps."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_new_tokens_are_distinct_and_only_their_hash_is_stored(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    first = append_token(tokens, subject="alice", groups=("sre",))
    second = append_token(tokens, subject="bob", groups=())
    assert first != second
    text = tokens.read_text()
    assert first not in text
    assert second not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines == [
        {"sha256": hash_token(first), "subject": "alice", "groups": ["sre"]},
        {"sha256": hash_token(second), "subject": "bob", "groups": []},
    ]


def test_tokens_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    tokens = tmp_path / "sub" / "tokens.jsonl"
    append_token(tokens, subject="alice", groups=())
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600


def test_append_keeps_a_hand_edited_last_line_separate(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    tokens.write_text(json.dumps({"sha256": hash_token(new_token()), "subject": "carol"}))  # no newline
    append_token(tokens, subject="dave", groups=())
    assert [json.loads(line)["subject"] for line in tokens.read_text().splitlines()] == ["carol", "dave"]


def test_token_maps_to_its_principal(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    token = append_token(tokens, subject="alice", groups=("sre", "oncall"))
    store = TokenStore(tokens)
    assert store.authenticate(token) == Principal(
        subject="alice", groups=("sre", "oncall"), transport="http", authenticated=True
    )


@pytest.mark.parametrize("presented", ["", "pgw_unknown", "x" * 10_000])
def test_unknown_empty_or_oversized_token_authenticates_nobody(tmp_path: Path, presented: str) -> None:
    tokens = tmp_path / "tokens.jsonl"
    append_token(tokens, subject="alice", groups=())
    assert TokenStore(tokens).authenticate(presented) is None


def test_comments_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    token = new_token()
    tokens.write_text(f'# operators\n\n{{"sha256": "{hash_token(token)}", "subject": "alice"}}\n')
    store = TokenStore(tokens)
    assert len(store) == 1
    principal = store.authenticate(token)
    assert principal is not None
    assert principal.subject == "alice"


def test_a_tokens_file_created_after_start_is_picked_up(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    store = TokenStore(tokens)
    assert len(store) == 0
    assert store.authenticate("pgw_anything") is None
    token = append_token(tokens, subject="alice", groups=())
    assert store.authenticate(token) is not None


@pytest.mark.parametrize(
    "line",
    [
        "pgw_this-is-a-pasted-token",
        '{"sha256": "abc", "subject": "alice"}',
        '{"sha256": "' + "0" * 64 + '", "subject": ""}',
        '{"sha256": "' + "0" * 64 + '", "subject": "alice", "groups": "sre"}',
        '{"sha256": "' + "0" * 64 + '", "subject": "alice", "role": "admin"}',
    ],
)
def test_malformed_line_is_named_without_echoing_it(tmp_path: Path, line: str) -> None:
    tokens = tmp_path / "tokens.jsonl"
    tokens.write_text(line + "\n")
    with pytest.raises(ConfigError, match="line 1") as info:
        TokenStore(tokens)
    assert "pasted-token" not in str(info.value)


def test_a_token_added_later_works_without_restart(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    append_token(tokens, subject="alice", groups=())
    store = TokenStore(tokens)
    later = append_token(tokens, subject="bob", groups=("sre",))
    principal = store.authenticate(later)
    assert principal is not None
    assert principal.subject == "bob"


def test_a_revoked_token_stops_working_without_restart(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    revoked = append_token(tokens, subject="alice", groups=())
    kept = append_token(tokens, subject="bob", groups=())
    store = TokenStore(tokens)
    assert store.authenticate(revoked) is not None
    tokens.write_text(tokens.read_text().splitlines()[1] + "\n")
    _bump_mtime(tokens)
    assert store.authenticate(revoked) is None
    assert store.authenticate(kept) is not None


def test_a_file_broken_after_start_rejects_every_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = tmp_path / "tokens.jsonl"
    token = append_token(tokens, subject="alice", groups=())
    store = TokenStore(tokens)
    with tokens.open("a") as out:
        out.write("not json\n")
    _bump_mtime(tokens)
    with caplog.at_level(logging.ERROR, logger="gateway.auth"):
        assert store.authenticate(token) is None
    assert "line 2" in caplog.text
    assert token not in caplog.text


def test_a_deleted_file_rejects_every_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    token = append_token(tokens, subject="alice", groups=())
    store = TokenStore(tokens)
    tokens.unlink()
    assert store.authenticate(token) is None


def test_append_refuses_a_file_the_gateway_could_not_read(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.jsonl"
    tokens.write_text("garbage\n")
    with pytest.raises(ConfigError):
        append_token(tokens, subject="alice", groups=())
    assert tokens.read_text() == "garbage\n"


# --- middleware -------------------------------------------------------------------------


def _app(store: TokenStore | None, anonymous: Any, failures: list[str] | None = None) -> TestClient:
    async def who(request: Request) -> JSONResponse:
        principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
        return JSONResponse(principal.model_dump(mode="json") if principal else None)

    inner = Starlette(routes=[Route("/mcp", who, methods=["GET"]), Route("/healthz", who, methods=["GET"])])
    app = BearerAuthMiddleware(
        inner,
        tokens=store,
        anonymous=anonymous,
        public_paths={"/healthz"},
        on_failure=failures.append if failures is not None else None,
    )
    return TestClient(app)


@pytest.fixture
def token_and_store(tmp_path: Path) -> tuple[str, TokenStore]:
    tokens = tmp_path / "tokens.jsonl"
    token = append_token(tokens, subject="alice", groups=("sre",))
    return token, TokenStore(tokens)


def test_valid_bearer_token_puts_its_principal_in_the_scope(token_and_store: tuple[str, TokenStore]) -> None:
    token, store = token_and_store
    resp = _app(store, "reject").get("/mcp", headers={"Authorization": f"bearer {token}"})
    assert resp.status_code == 200
    assert resp.json() == {"subject": "alice", "groups": ["sre"], "transport": "http", "authenticated": True}


def test_no_token_is_refused_with_a_bearer_challenge(token_and_store: tuple[str, TokenStore]) -> None:
    _, store = token_and_store
    failures: list[str] = []
    resp = _app(store, "reject", failures).get("/mcp")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer ")
    assert failures == ["missing_token"]


def test_no_token_in_read_only_mode_is_the_anonymous_principal(
    token_and_store: tuple[str, TokenStore],
) -> None:
    _, store = token_and_store
    resp = _app(store, "read-only").get("/mcp")
    assert resp.status_code == 200
    assert resp.json() == ANONYMOUS.model_dump(mode="json")


@pytest.mark.parametrize("header", ["Bearer pgw_wrong", "Basic YWxpY2U6c2VjcmV0", "Bearer", "pgw_raw"])
@pytest.mark.parametrize("anonymous", ["reject", "read-only"])
def test_a_bad_credential_is_refused_never_downgraded_to_anonymous(
    token_and_store: tuple[str, TokenStore], header: str, anonymous: str
) -> None:
    _, store = token_and_store
    failures: list[str] = []
    resp = _app(store, anonymous, failures).get("/mcp", headers={"Authorization": header})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    assert failures == ["invalid_token"]
    assert "wrong" not in resp.text


def test_without_a_tokens_file_every_token_is_refused() -> None:
    resp = _app(None, "read-only").get("/mcp", headers={"Authorization": "Bearer pgw_anything"})
    assert resp.status_code == 401


def test_public_paths_need_no_token_and_carry_no_principal(token_and_store: tuple[str, TokenStore]) -> None:
    _, store = token_and_store
    resp = _app(store, "reject").get("/healthz")
    assert resp.status_code == 200
    assert resp.json() is None
