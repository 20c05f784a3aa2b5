"""Fixtures for the Kubernetes backend suites: one real etcd + kube-apiserver per session.

``kube_apiserver``   the running server (admin and restricted tokens, kubeconfig)
``kube_seeded``      the same server with the sandbox seed applied once
``kube_settings``    gateway ``Settings`` pointing at it (context ``sandbox``, admin)
``restricted_settings`` the same as the restricted user (context ``sandbox-restricted``)
``kube_admin``       a plain sync ``ApiClient`` (admin) for arranging and checking state
                     behind the gateway's back
``kube_namespace``   a fresh namespace per test (labelled ``environment=development``)
``kube_tools``       the backend's tools, opened per test, driven by ``ToolRunner``
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kube_support import ToolRunner
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gateway.kubernetes.tools import open_backend
from gateway.local.kube import KubeApiServer
from gateway.local.sandbox_seed import seed_sandbox
from gateway.settings import Settings


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    """etcd and kube-apiserver on free loopback ports; stopped by pid at the end."""
    server = KubeApiServer(tmp_path_factory.mktemp("kube"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kube_seeded(kube_apiserver: KubeApiServer) -> KubeApiServer:
    seed_sandbox(kube_apiserver.kubeconfig_path)
    return kube_apiserver


@pytest.fixture(scope="session")
def kube_settings(kube_apiserver: KubeApiServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        kubeconfig=kube_apiserver.kubeconfig_path,
        kube_context="sandbox",
        db_path=tmp_path_factory.mktemp("db") / "gateway.db",
    )


@pytest.fixture(scope="session")
def restricted_settings(kube_apiserver: KubeApiServer, kube_settings: Settings) -> Settings:
    return kube_settings.model_copy(update={"kube_context": "sandbox-restricted"})


@pytest.fixture(scope="session")
def kube_admin(kube_apiserver: KubeApiServer) -> Iterator[Any]:
    api = k8s_config.new_client_from_config(
        str(kube_apiserver.kubeconfig_path), context="sandbox", persist_config=False
    )
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def kube_namespace(kube_admin: Any) -> Iterator[str]:
    """A namespace of its own for each test; removed afterwards (it stays Terminating:
    no namespace controller runs, but its name is never reused)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = k8s.CoreV1Api(kube_admin)
    core.create_namespace({"metadata": {"name": name, "labels": {"environment": "development"}}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
async def kube_tools(kube_settings: Settings) -> AsyncIterator[ToolRunner]:
    async with open_backend(kube_settings) as specs:
        yield ToolRunner(specs)
