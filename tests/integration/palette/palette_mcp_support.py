"""Helpers of the Palette integration tests: the planted API key and the fake's admin calls."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from gateway.local.fake_palette import FakePaletteServer

API_KEY = "pk-integration-7c1b9e55d0a4-PLANTED"


def fake_admin(fake: FakePaletteServer, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{fake.url}/__admin/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())
