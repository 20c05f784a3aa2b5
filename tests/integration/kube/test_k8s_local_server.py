"""The local etcd + kube-apiserver pair: state survives a restart, a stolen port is replaced."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gateway.local.kube import KubeApiServer

pytestmark = [pytest.mark.integration, pytest.mark.kube]


def _core(server: KubeApiServer) -> tuple[k8s.ApiClient, k8s.CoreV1Api]:
    api = k8s_config.new_client_from_config(
        str(server.kubeconfig_path), context="sandbox", persist_config=False
    )
    return api, k8s.CoreV1Api(api)


def test_objects_and_tokens_survive_a_restart_and_a_taken_port_is_replaced(tmp_path: Path) -> None:
    first = KubeApiServer(tmp_path / "state")
    first.start()
    try:
        api, core = _core(first)
        core.create_namespace({"metadata": {"name": "kept", "labels": {"environment": "production"}}})
        api.close()
    finally:
        first.stop()

    second = KubeApiServer(tmp_path / "state")
    with socket.socket() as squatter:  # someone else takes the port chosen for the API server
        squatter.bind(("127.0.0.1", second.port))
        squatter.listen()
        taken = second.port
        second.start()
    try:
        assert second.port != taken
        assert second.admin_token == first.admin_token
        api, core = _core(second)
        assert core.read_namespace("kept").metadata.labels["environment"] == "production"
        api.close()
    finally:
        second.stop()
