"""The HTTP transport over a real socket: bearer tokens reach the tool as the principal,
and foreign hosts and origins are refused before anything else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from http_support import mcp_client, serving, whoami_server
from mcp.shared.exceptions import MCPError
from typer.testing import CliRunner

from gateway.auth import append_token
from gateway.cli import app as cli
from gateway.errors import ConfigError
from gateway.http import build_app
from gateway.settings import Settings

pytestmark = pytest.mark.integration

_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
_MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"tokens_file": tmp_path / "tokens.jsonl", "db_path": tmp_path / "gateway.db"}
    values.update(overrides)
    return Settings.model_validate(values)


async def test_tool_sees_the_principal_of_the_bearer_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    alice = append_token(settings.tokens_file, subject="alice", groups=("sre",))  # type: ignore[arg-type]
    bob = append_token(settings.tokens_file, subject="bob", groups=())  # type: ignore[arg-type]
    async with serving(build_app(whoami_server(settings), settings)) as url:
        async with mcp_client(url, alice) as client:
            as_alice = (await client.call_tool("whoami", {})).structured_content
        async with mcp_client(url, bob) as client:
            as_bob = (await client.call_tool("whoami", {})).structured_content
    assert as_alice == {"subject": "alice", "groups": ["sre"], "transport": "http", "authenticated": True}
    assert as_bob == {"subject": "bob", "groups": [], "transport": "http", "authenticated": True}


async def test_read_only_mode_hands_the_tool_the_anonymous_principal(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tokens_file=None, anonymous="read-only")
    async with serving(build_app(whoami_server(settings), settings)) as url, mcp_client(url) as client:
        seen = (await client.call_tool("whoami", {})).structured_content
    assert seen == {"subject": "anonymous", "groups": [], "transport": "http", "authenticated": False}


async def test_request_without_a_token_is_refused_with_a_bearer_challenge(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    append_token(settings.tokens_file, subject="alice", groups=())  # type: ignore[arg-type]
    async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
        resp = await http.post(f"{url}/mcp", json=_INIT, headers=_MCP_HEADERS)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer ")


def _mcp_error(exc: BaseException) -> MCPError:
    """The ``MCPError`` the client raised, out of the task groups it may be wrapped in."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            try:
                return _mcp_error(inner)
            except LookupError:
                continue
    raise LookupError(f"no MCPError in {exc!r}")


async def _refusal(url: str, token: str | None) -> str:
    try:
        async with mcp_client(url, token):
            pass
    except BaseException as exc:
        return _mcp_error(exc).error.message
    raise AssertionError("the client connected")


async def test_the_mcp_client_shows_why_its_token_was_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    append_token(settings.tokens_file, subject="alice", groups=())  # type: ignore[arg-type]
    bob = append_token(settings.tokens_file, subject="bob", groups=())  # type: ignore[arg-type]
    async with serving(build_app(whoami_server(settings), settings)) as url:
        missing = await _refusal(url, None)
        unknown = await _refusal(url, "pgw_never-issued")
        async with mcp_client(url, bob):
            pass
        revoke = ["token", "revoke", "--subject", "bob", "--tokens-file", str(settings.tokens_file)]
        assert CliRunner().invoke(cli, revoke).exit_code == 0
        revoked = await _refusal(url, bob)
    assert missing == "this gateway needs a bearer token: send `Authorization: Bearer <token>`"
    for message in (unknown, revoked):
        assert "the bearer token is not valid (unknown or revoked)" in message
        assert "gateway token create" in message
    assert "Server returned an error response" not in missing + unknown + revoked


async def test_the_mcp_client_shows_the_size_limit_of_an_oversized_request(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_argument_bytes=1024)
    alice = append_token(settings.tokens_file, subject="alice", groups=())  # type: ignore[arg-type]
    async with serving(build_app(whoami_server(settings), settings)) as url, mcp_client(url, alice) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("whoami", {"text": "x" * 100_000})
        still = (await client.call_tool("whoami", {})).structured_content
    message = raised.value.error.message
    assert "larger than this gateway accepts" in message
    assert "tool arguments may be at most 1024 bytes (GATEWAY_MAX_ARGUMENT_BYTES)" in message
    assert still is not None
    assert still["subject"] == "alice"


async def test_a_token_created_while_running_is_accepted_without_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    append_token(settings.tokens_file, subject="alice", groups=())  # type: ignore[arg-type]
    async with serving(build_app(whoami_server(settings), settings)) as url:
        carol = append_token(settings.tokens_file, subject="carol", groups=("platform",))  # type: ignore[arg-type]
        async with mcp_client(url, carol) as client:
            seen = (await client.call_tool("whoami", {})).structured_content
    assert seen is not None
    assert seen["subject"] == "carol"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example.com"}, 421),
        ({"Host": "evil.example.com:8000"}, 421),
        ({"Origin": "http://evil.example.com"}, 403),
    ],
)
async def test_foreign_host_or_origin_is_refused_before_authentication(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    settings = _settings(tmp_path)
    token = append_token(settings.tokens_file, subject="alice", groups=())  # type: ignore[arg-type]
    async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
        unauthenticated = await http.post(f"{url}/mcp", json=_INIT, headers={**_MCP_HEADERS, **headers})
        authenticated = await http.post(
            f"{url}/mcp", json=_INIT, headers={**_MCP_HEADERS, **headers, "Authorization": f"Bearer {token}"}
        )
    assert unauthenticated.status_code == status
    assert authenticated.status_code == status


async def test_configured_public_host_and_origin_are_accepted(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        allowed_hosts=("gateway.example.com",),
        allowed_origins=("https://console.example.com",),
    )
    token = append_token(settings.tokens_file, subject="alice", groups=())  # type: ignore[arg-type]
    headers = {
        **_MCP_HEADERS,
        "Host": "gateway.example.com",
        "Origin": "https://console.example.com",
        "Authorization": f"Bearer {token}",
    }
    async with serving(build_app(whoami_server(settings), settings)) as url, httpx.AsyncClient() as http:
        accepted = await http.post(f"{url}/mcp", json=_INIT, headers=headers)
        loopback = await http.post(f"{url}/mcp", json=_INIT, headers={**headers, "Host": "127.0.0.1"})
    assert accepted.status_code == 200
    # Configuring hosts replaces the loopback defaults: only what the operator listed passes.
    assert loopback.status_code == 421


def test_http_without_tokens_file_or_anonymous_access_refuses_to_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tokens_file=None)
    with pytest.raises(ConfigError, match="GATEWAY_TOKENS_FILE"):
        build_app(whoami_server(settings), settings)


def test_malformed_tokens_file_refuses_to_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.tokens_file.write_text("not json\n")  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="line 1"):
        build_app(whoami_server(settings), settings)
