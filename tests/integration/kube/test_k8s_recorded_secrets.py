"""Recorded decisions hold no Secret value in any form: a Secret applied and read through
the real gateway (MCP client, project bundle, real kube-apiserver) leaves its decisions
recorded for replay without the value, its base64 or even its digest."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from gateway.kubernetes.secrets import digest
from gateway.kubernetes.tools import open_backend
from gateway.local.opa import OpaServer
from gateway.recording import MASKED_PATHS
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]

PASSWORD = "tr0ub4dor-and-3-horses"
TOKEN = "recorded-token-value"


SEEDED = "sandbox-only-not-a-real-password"  # the seeded payments/postgres-credentials


async def test_secret_writes_and_reads_are_recorded_without_their_values(
    kube_settings: Settings, kube_seeded: Any, opa_server: OpaServer, kube_namespace: str, tmp_path: Path
) -> None:
    settings = kube_settings.model_copy(
        update={
            "opa_url": opa_server.url,
            "db_path": tmp_path / "gateway.db",
            "subject": "alice",
            "groups": ("sre",),
        }
    )
    encoded = base64.b64encode(TOKEN.encode()).decode()

    def secret(name: str, namespace: str) -> str:
        return f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {namespace}}}
stringData: {{password: {PASSWORD}}}
data: {{token: {encoded}}}
"""

    async with Client(build_server(settings, backends=[open_backend])) as mcp:
        # A new Secret (no before-image), then the seeded one changed (before- and after-image).
        for manifest in (secret("recorded", kube_namespace), secret("postgres-credentials", "payments")):
            judged = await mcp.call_tool("k8s_apply", {"manifest": manifest})
            assert judged.structured_content is not None, judged.content
        read = await mcp.call_tool(
            "k8s_get", {"kind": "secret", "name": "postgres-credentials", "namespace": "payments"}
        )
        assert not read.is_error, read.content
    # The server's shutdown wrote what the recorder held.
    with sqlite3.connect(settings.db_path) as conn:
        rows = conn.execute("SELECT tool, erased_json FROM decision_records ORDER BY seq").fetchall()
        everything = repr(conn.execute("SELECT * FROM decision_records").fetchall())
    assert [tool for tool, _ in rows] == ["k8s_apply", "k8s_apply", "k8s_get"]
    seeded = base64.b64encode(SEEDED.encode()).decode()
    for value in (
        PASSWORD,
        TOKEN,
        encoded,
        SEEDED,
        seeded,
        *(digest(v.encode()) for v in (PASSWORD, TOKEN, SEEDED)),
    ):
        assert value not in everything
    erased = [set(json.loads(e)) for _, e in rows]
    assert erased[0] == {"/input/object/data"}  # the server folded stringData into data
    assert erased[1] == {"/input/object/data", "/input/current/data"}
    assert erased[1] <= set(MASKED_PATHS)
