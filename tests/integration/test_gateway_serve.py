"""``gateway serve --transport stdio`` as a real child process driven by a real MCP client:
stdout carries only the protocol, and the principal is the configured identity."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from gateway.local.opa import OpaServer
from gateway.queue.store import QueueStore

pytestmark = pytest.mark.integration

GATEWAY = str(Path(sys.executable).with_name("gateway"))


async def test_stdio_server_answers_as_the_configured_identity(opa: OpaServer, tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    params = StdioServerParameters(
        command=GATEWAY,
        args=["serve", "--transport", "stdio", "--log-level", "DEBUG"],
        env={
            "HOME": str(tmp_path),  # no ~/.kube/config: the Kubernetes tools are left out
            "GATEWAY_OPA_URL": opa.url,
            "GATEWAY_DB_PATH": str(db),
            "GATEWAY_SUBJECT": "dave",
            "GATEWAY_GROUPS": '["sre"]',
        },
        cwd=str(tmp_path),
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        checked = await client.call_tool("gateway_check", {"tool": "k8s_get", "arguments": {}})
    assert {"gateway_check", "gateway_action"} <= names
    assert checked.is_error
    assert "unknown tool 'k8s_get'" in checked.content[0].text  # type: ignore[union-attr]

    store = await QueueStore.open(db)
    try:
        [event] = await store.audit.recent(limit=5)
    finally:
        await store.close()
    assert (event.kind, event.subject, event.transport) == ("rejected_request", "dave", "stdio")


def test_serve_refuses_an_unusable_setting_with_exit_code_2(tmp_path: Path) -> None:
    import subprocess

    completed = subprocess.run(
        [GATEWAY, "serve", "--transport", "http"],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "GATEWAY_OPA_TIMEOUT_SECONDS": "-1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "opa_timeout_seconds" in completed.stderr
    assert completed.stdout == ""


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"GATEWAY_WEBHOOKS": '[{"url": "ftp://hooks.example.com/x"}]', "GATEWAY_WEBHOOK_SECRET": "s"},
            "not http",
        ),
        ({"GATEWAY_WEBHOOKS": '[{"url": "https://hooks.example.com/x"}]'}, "GATEWAY_WEBHOOK_SECRET"),
    ],
)
def test_serve_refuses_a_bad_webhook_before_starting(tmp_path: Path, env: dict[str, str], says: str) -> None:
    import subprocess

    completed = subprocess.run(
        [GATEWAY, "serve", "--transport", "http"],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert says in completed.stderr
    assert "Traceback" not in completed.stderr
