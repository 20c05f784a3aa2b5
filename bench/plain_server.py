"""The floor ``make bench-e2e`` measures the gateway against: an ungated MCP server.

Same MCP SDK (``MCPServer``, streamable HTTP under uvicorn with the gateway's settings),
same official ``kubernetes`` client (one ``ApiClient`` from the same kubeconfig, each
request run in a worker thread as the gateway's client does, JSON decoded, managedFields
dropped), the same two reads as the gateway's ``k8s_get`` and ``k8s_list`` for the kinds
the benchmark uses. No policy, no audit, no authentication, no redaction: what a read
costs when nobody checks it.

    .venv/bin/python -m bench.plain_server --kubeconfig PATH --port N [--context sandbox]
"""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

import anyio.to_thread
import uvicorn
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from mcp.server.mcpserver import MCPServer

__all__ = ["build"]

# The kinds the benchmark reads: short name -> (typed API, its resource name in its method names).
_KINDS = {"deploy": (k8s.AppsV1Api, "deployment"), "pod": (k8s.CoreV1Api, "pod")}


def _trimmed(item: dict[str, Any]) -> dict[str, Any]:
    metadata = item.get("metadata")
    if isinstance(metadata, dict):
        item["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return item


def build(kubeconfig: str, context: str) -> MCPServer[Any]:
    api = k8s_config.new_client_from_config(kubeconfig, context=context, persist_config=False)

    apis = {kind: typed(api) for kind, (typed, _) in _KINDS.items()}

    async def request(kind: str, verb: str, *args: Any, **query: Any) -> dict[str, Any]:
        method = getattr(apis[kind], f"{verb}_namespaced_{_KINDS[kind][1]}")
        call = functools.partial(method, *args, _preload_content=False, _request_timeout=30, **query)
        response = await anyio.to_thread.run_sync(call)
        decoded: dict[str, Any] = json.loads(response.data)
        return decoded

    server: MCPServer[Any] = MCPServer(name="plain-kubernetes")

    @server.tool()
    async def k8s_get(kind: str, name: str, namespace: str) -> dict[str, Any]:
        """Get one object by kind and name."""
        return _trimmed(await request(kind, "read", name, namespace))

    @server.tool()
    async def k8s_list(kind: str, namespace: str, limit: int = 100) -> dict[str, Any]:
        """List objects of one kind in a namespace."""
        found = await request(kind, "list", namespace, limit=limit)
        items = [_trimmed(i) for i in found.get("items") or []]
        return {"kind": kind, "namespace": namespace, "items": items, "count": len(items)}

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", default="sandbox")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    app = build(options.kubeconfig, options.context).streamable_http_app(streamable_http_path="/mcp")
    config = uvicorn.Config(app, host="127.0.0.1", port=options.port, log_config=None, lifespan="on")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
