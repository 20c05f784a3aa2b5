"""The gateway against the project's own bundle (fixture ``opa_server``): in-test tools named
like the real Kubernetes ones, so the real rules judge them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from gateway_support import settings_for
from mcp import Client
from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts import Target
from gateway.local.opa import OpaServer
from gateway.runtime import CheckFn
from gateway.server import build_server
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolSpec

pytestmark = pytest.mark.integration

NAMESPACES = {"dev": "development", "payments": "production"}


class ObjectArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="Kind.")
    name: str = Field(description="Name.")
    namespace: str = Field(description="Namespace.")


class InMemoryCluster:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def _target(self, args: ObjectArgs) -> Target:
        return Target(
            cluster="sandbox",
            namespace=args.namespace,
            api_version="v1" if args.kind == "Secret" else "apps/v1",
            kind=args.kind,
            name=args.name,
            environment=NAMESPACES[args.namespace],
        )

    async def _prepare(self, args: ObjectArgs) -> list[Prepared]:
        return [Prepared(target=self._target(args), current={"metadata": {"name": args.name}})]

    async def _get(self, args: ObjectArgs, ctx: ExecutionContext) -> dict[str, Any]:
        # No `kind` and no `type`: only the decision's redact obligation can hide `data`.
        return {"metadata": {"name": args.name}, "data": {"password": "cGFzc3dvcmQxMjM="}}

    async def _delete(self, args: ObjectArgs, ctx: ExecutionContext) -> dict[str, Any]:
        self.deleted.append(args.name)
        return {"deleted": args.name}

    def source(self) -> Any:
        @asynccontextmanager
        async def open_backend(settings: Settings, check: CheckFn) -> AsyncIterator[list[ToolSpec[Any]]]:
            common: dict[str, Any] = {"backend": "kubernetes", "args": ObjectArgs, "prepare": self._prepare}
            yield [
                ToolSpec(name="k8s_get", title="Get", description="Get.", operation="get", effect="read",
                         execute=self._get, **common),
                ToolSpec(name="k8s_delete", title="Delete", description="Delete.", operation="delete",
                         effect="delete", execute=self._delete, **common),
            ]  # fmt: skip

        return open_backend


async def test_project_policy_allows_reads_and_its_obligations_redact_secret_values(
    opa_server: OpaServer, tmp_path: Path
) -> None:
    cluster = InMemoryCluster()
    async with Client(
        build_server(settings_for(opa_server.url, tmp_path), backends=[cluster.source()])
    ) as client:
        result = await client.call_tool("k8s_get", {"kind": "Secret", "name": "db", "namespace": "dev"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["data"] == {"password": "<redacted>"}


async def test_project_policy_needs_two_approvals_to_delete_in_production(
    opa_server: OpaServer, tmp_path: Path
) -> None:
    cluster = InMemoryCluster()
    async with Client(
        build_server(settings_for(opa_server.url, tmp_path), backends=[cluster.source()])
    ) as client:
        result = await client.call_tool(
            "k8s_delete", {"kind": "Deployment", "name": "api", "namespace": "payments"}
        )
    assert not result.is_error, result.content
    body = result.structured_content
    assert body is not None
    assert body["outcome"] == "needs_approval"
    assert body["approval"]["min_approvals"] == 2
    assert body["approval"]["allow_self_approval"] is False
    assert body["bundle_revision"] == "test"
    assert cluster.deleted == []
