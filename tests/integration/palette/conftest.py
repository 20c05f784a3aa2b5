"""The Palette integration fixtures: the fake Palette API as a native process (its spec
checks on), and gateway settings pointing at it and at the real OPA with the real bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from palette_mcp_support import API_KEY, fake_admin

from gateway.local.fake_palette import FakePaletteServer
from gateway.local.opa import OpaServer
from gateway.local.palette_spec import default_spec_path
from gateway.settings import Settings


@pytest.fixture(scope="session")
def fake_palette(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePaletteServer]:
    server = FakePaletteServer(
        api_key=API_KEY,
        admin=True,
        spec_path=default_spec_path(),
        log_path=tmp_path_factory.mktemp("fake-palette") / "fake.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def palette(fake_palette: FakePaletteServer) -> Iterator[FakePaletteServer]:
    """The fake, freshly seeded; after the test, proof that nothing drifted from the spec."""
    fake_admin(fake_palette, "POST", "reset")
    yield fake_palette
    assert fake_admin(fake_palette, "GET", "violations")["violations"] == []


@pytest.fixture
def palette_settings(opa_server: OpaServer, palette: FakePaletteServer, tmp_path: Path) -> Settings:
    env = palette.environment()
    return Settings(
        opa_url=opa_server.url,
        db_path=tmp_path / "gateway.db",
        subject="alice",
        groups=("sre",),
        PALETTE_HOST=env["PALETTE_HOST"],
        PALETTE_API_KEY=env["PALETTE_API_KEY"],
        PALETTE_PROJECT_UID=env["PALETTE_PROJECT_UID"],
        palette_max_backoff_seconds=0.2,
        opa_timeout_seconds=5.0,
    )
