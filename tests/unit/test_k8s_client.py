"""Loading the Kubernetes configuration: explicit settings must work or fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.kubernetes.client import KubeClient
from gateway.settings import Settings


def _kubeconfig(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t0ken"}}],
                "contexts": [
                    {"name": "staging", "context": {"cluster": "c", "user": "u"}},
                    {"name": "prod-eu", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "staging",
            }
        )
    )
    return path


def test_the_context_names_the_cluster_and_nothing_is_sent_at_startup(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig")
    client = KubeClient.from_settings(Settings(kubeconfig=config))
    assert client is not None
    assert (client.cluster, client.server) == ("staging", "https://127.0.0.1:6443")
    client.close()
    chosen = KubeClient.from_settings(Settings(kubeconfig=config, kube_context="prod-eu"))
    assert chosen is not None
    assert chosen.cluster == "prod-eu"
    chosen.close()


def test_an_unknown_context_is_a_config_error_listing_the_contexts(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(
        ConfigError, match=r"context 'nope' is not in the kubeconfig \(contexts: prod-eu, staging\)"
    ):
        KubeClient.from_settings(Settings(kubeconfig=config, kube_context="nope"))


def test_a_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no usable Kubernetes configuration"):
        KubeClient.from_settings(Settings(kubeconfig=tmp_path / "absent"))


def test_the_error_never_carries_the_token(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: s3cr3t-t0ken}}]\n")
    with pytest.raises(ConfigError) as caught:
        KubeClient.from_settings(Settings(kubeconfig=config))
    assert "s3cr3t-t0ken" not in str(caught.value)
