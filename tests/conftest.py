"""Fixtures shared by every suite: the real OPA binary serving the project's bundle, and
the database backends (``storage_fixtures``: SQLite and a real PostgreSQL).

Every test under tests/integration/ needs a binary beyond Python (``opa``, and
``kube-apiserver`` + etcd for ``kube``, Node.js for the conformance and JCS recipes): it is
marked ``integration`` here, whatever its module says, so ``pytest -m "not integration"``
is the loop that needs only Python. tests/unit/ never starts one, except in their
PostgreSQL variants, which are marked ``integration`` (and ``postgres``) by the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_fixtures import backend, db, postgres_backend, postgres_server

from gateway.local.opa import OpaServer, build_bundle

__all__ = ["backend", "bundle_path", "db", "opa_server", "postgres_backend", "postgres_server"]

ROOT = Path(__file__).resolve().parent.parent
REGO_DIR = ROOT / "rego"
INTEGRATION = ROOT / "tests" / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's policy, built once per test session with the real ``opa build`` and the
    same optimisation ``make bundle`` ships (``REGO_OPTIMIZE`` in mk/rego.mk)."""
    out = tmp_path_factory.mktemp("bundle") / "gateway.tar.gz"
    return build_bundle(REGO_DIR, out, revision="test", extra_args=_shipped_build_flags())


def _shipped_build_flags() -> list[str]:
    """``REGO_OPTIMIZE`` from mk/rego.mk, so tests judge the bundle users run."""
    for line in (ROOT / "mk" / "rego.mk").read_text().splitlines():
        name, sep, value = line.partition(":=")
        if sep and name.strip() == "REGO_OPTIMIZE":
            return value.split()
    raise AssertionError("mk/rego.mk defines no REGO_OPTIMIZE")


@pytest.fixture(scope="session")
def opa_server(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    """A real OPA on a free loopback port serving the bundle; stopped by pid at the end."""
    server = OpaServer(bundle_path, log_path=tmp_path_factory.mktemp("opa") / "opa.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
