"""Shared by the Palette unit tests: the fake Palette app in-process, and a client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gateway.local.fake_palette import DEMO_PROJECT, FakeConfig, create_app
from gateway.local.fake_palette.samples import aws_create_body as aws_body
from gateway.local.palette_spec import default_spec_path
from gateway.palette.client import PaletteClient

__all__ = ["API_KEY", "Sleeps", "admin", "aws_body", "cluster_uid", "fake_app", "palette_client"]

API_KEY = "pk-test-1f2e3d4c5b6a-SECRET"


class Sleeps:
    """Records backoff delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def fake_app(**overrides: Any) -> Any:
    config: dict[str, Any] = {"api_key": API_KEY, "admin": True, "spec_path": default_spec_path()}
    config.update(overrides)
    return create_app(FakeConfig(**config))


@asynccontextmanager
async def palette_client(
    app: Any, *, api_key: str = API_KEY, project: str | None = DEMO_PROJECT, **kwargs: Any
) -> AsyncIterator[PaletteClient]:
    client = PaletteClient(
        base_url="http://127.0.0.1",
        api_key=api_key,
        project_uid=project,
        timeout=5.0,
        transport=httpx.ASGITransport(app=app),
        **kwargs,
    )
    async with client:
        yield client


async def admin(app: Any, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        response = await http.request(method, f"/__admin/{path}", json=body)
        response.raise_for_status()
        return response.json()


async def cluster_uid(client: PaletteClient, name: str) -> str:
    body = {
        "filter": {
            "conjunction": "and",
            "filterGroups": [
                {
                    "conjunction": "and",
                    "filters": [
                        {
                            "property": "clusterName",
                            "type": "string",
                            "condition": {"string": {"operator": "eq", "match": {"values": [name]}}},
                        }
                    ],
                }
            ],
        }
    }
    found = await client.search_clusters(body)
    assert len(found) == 1, found
    return str(found[0]["metadata"]["uid"])
