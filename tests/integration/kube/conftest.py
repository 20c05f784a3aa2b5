"""Fixtures for the Kubernetes backend suites.

One living cluster per session, shared by every suite that needs real cluster behaviour
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok's simulated nodes):

``kube_cluster``     the running ``SandboxCluster`` (admin and restricted contexts), with
                     the sandbox seed (three nodes, ``dev`` and ``payments``) running
``kube_seeded``      the same, for tests that read the seeded objects
``kube_settings``    gateway ``Settings`` pointing at it (context ``sandbox``, admin)
``restricted_settings`` the same as the restricted user (context ``sandbox-restricted``)
``kube_admin``       a plain sync ``ApiClient`` (admin) for arranging and checking state
                     behind the gateway's back
``kube_namespace``   a fresh namespace per test (labelled ``environment=development``),
                     ready for pods (its ``default`` ServiceAccount exists)
``kube_tools``       the backend's tools, opened per test, driven by ``ToolRunner``

And one quiet API server (etcd + kube-apiserver, no controllers) for what only a cluster
without controllers shows: ``quiet_apiserver``, ``quiet_seeded``, ``quiet_tools``.
Controllers there would rewrite what those tests assert on.

Many clusters: ``quiet_prod_eu`` is a second quiet API server (context ``prod-eu``, seeded
the same), for tests that need two real clusters behind one gateway.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kube_support import ToolRunner
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gateway.kubernetes.tools import open_backend
from gateway.local.cluster import SandboxCluster
from gateway.local.kube import KubeApiServer
from gateway.local.sandbox_seed import seed_sandbox, wait_until_alive
from gateway.settings import Settings


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxCluster]:
    """The whole control plane and kwok on free loopback ports; stopped by pid at the end."""
    cluster = SandboxCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        seed_sandbox(cluster.kubeconfig_path)
        wait_until_alive(cluster.kubeconfig_path, timeout=120)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kube_seeded(kube_cluster: SandboxCluster) -> SandboxCluster:
    return kube_cluster


@pytest.fixture(scope="session")
def kube_settings(kube_cluster: SandboxCluster, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        kubeconfig=kube_cluster.kubeconfig_path,
        kube_context="sandbox",
        db_path=tmp_path_factory.mktemp("db") / "gateway.db",
    )


@pytest.fixture(scope="session")
def restricted_settings(kube_settings: Settings) -> Settings:
    return kube_settings.model_copy(update={"kube_context": "sandbox-restricted"})


@pytest.fixture(scope="session")
def kube_admin(kube_cluster: SandboxCluster) -> Iterator[Any]:
    api = k8s_config.new_client_from_config(
        str(kube_cluster.kubeconfig_path), context="sandbox", persist_config=False
    )
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def kube_namespace(kube_admin: Any) -> Iterator[str]:
    """A namespace of its own for each test, ready for pods; deleted afterwards (the
    namespace controller removes what is in it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = k8s.CoreV1Api(kube_admin)
    core.create_namespace({"metadata": {"name": name, "labels": {"environment": "development"}}})
    deadline = time.monotonic() + 30
    while not core.list_namespaced_service_account(name, field_selector="metadata.name=default").items:
        assert time.monotonic() < deadline, "the controllers did not create the default ServiceAccount"
        time.sleep(0.1)
    yield name
    core.delete_namespace(name)


@pytest.fixture
async def kube_tools(kube_settings: Settings) -> AsyncIterator[ToolRunner]:
    async with open_backend(kube_settings) as specs:
        yield ToolRunner(specs)


@pytest.fixture(scope="session")
def quiet_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    """etcd and kube-apiserver only: nothing reconciles, nothing runs."""
    server = KubeApiServer(tmp_path_factory.mktemp("quiet"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def quiet_seeded(quiet_apiserver: KubeApiServer) -> KubeApiServer:
    seed_sandbox(quiet_apiserver.kubeconfig_path, nodes_within=None)  # no kwok: nodes never come up
    return quiet_apiserver


@pytest.fixture
async def quiet_tools(quiet_seeded: KubeApiServer, tmp_path: Any) -> AsyncIterator[ToolRunner]:
    settings = Settings(
        kubeconfig=quiet_seeded.kubeconfig_path, kube_context="sandbox", db_path=tmp_path / "gateway.db"
    )
    async with open_backend(settings) as specs:
        yield ToolRunner(specs)


@pytest.fixture(scope="session")
def quiet_prod_eu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    """A second quiet API server, its context named ``prod-eu`` (production by the
    project's policy data, whatever its namespaces say), seeded like the sandbox."""
    server = KubeApiServer(tmp_path_factory.mktemp("prod-eu"), context="prod-eu")
    server.start()
    try:
        seed_sandbox(server.kubeconfig_path, context="prod-eu", nodes_within=None)
        yield server
    finally:
        server.stop()
