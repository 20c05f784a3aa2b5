"""Fixtures the gateway suites share: a real OPA serving the small test policy
(``gateway_support.TEST_POLICY``), once per module, and gateway settings pointing at it.
A module that needs another policy defines its own ``opa``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_support import running_policy, settings_for

from gateway.local.opa import OpaServer
from gateway.settings import Settings


@pytest.fixture(scope="module")
def opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    with running_policy(tmp_path_factory.mktemp("opa")) as server:
        yield server


@pytest.fixture
def settings(opa: OpaServer, tmp_path: Path) -> Settings:
    return settings_for(opa.url, tmp_path)
