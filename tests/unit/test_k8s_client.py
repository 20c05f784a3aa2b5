"""Loading the Kubernetes configuration: which contexts exist, the pod's own service
account, and errors that say what is wrong without quoting a credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.kubernetes.client import KubeClient, load_catalog
from gateway.kubernetes.contexts import ClusterContext
from gateway.settings import Settings

TOKEN = "s3cr3t-t0ken-value"
KEY_DATA = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tc2VjcmV0LWtleS1kYXRh"


def _kubeconfig(path: Path, **extra_users: dict[str, Any]) -> Path:
    users = [{"name": "u", "user": {"token": TOKEN}}]
    users += [{"name": name, "user": user} for name, user in extra_users.items()]
    contexts = [
        {"name": "staging", "context": {"cluster": "c", "user": "u", "namespace": "web"}},
        {"name": "prod-eu", "context": {"cluster": "eu", "user": "u"}},
    ]
    contexts += [{"name": f"ctx-{name}", "context": {"cluster": "c", "user": name}} for name in extra_users]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}},
                    {"name": "eu", "cluster": {"server": "https://admin:pw@eu.example.com:443/k8s?x=1"}},
                ],
                "users": users,
                "contexts": contexts,
                "current-context": "staging",
            }
        )
    )
    return path


def test_every_context_is_offered_with_its_server_and_nothing_is_sent(tmp_path: Path) -> None:
    catalog = load_catalog(Settings(kubeconfig=_kubeconfig(tmp_path / "kubeconfig")))
    assert catalog is not None
    assert catalog.names == ("staging", "prod-eu")
    assert catalog.default == "staging"
    assert catalog.context("staging") == ClusterContext("staging", "https://127.0.0.1:6443", "web")
    # User information, query and fragment are never shown.
    assert catalog.context("prod-eu").server == "https://eu.example.com:443/k8s"
    client = KubeClient.connect(catalog.context("prod-eu"), Settings(), kubeconfig=tmp_path / "kubeconfig")
    assert (client.cluster, client.server) == ("prod-eu", "https://eu.example.com:443/k8s")
    client.close()


def test_the_configured_context_is_the_default(tmp_path: Path) -> None:
    settings = Settings(kubeconfig=_kubeconfig(tmp_path / "kubeconfig"), kube_context="prod-eu")
    catalog = load_catalog(settings)
    assert catalog is not None
    assert catalog.default == "prod-eu"


def test_an_unknown_context_is_a_config_error_listing_the_contexts(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(
        ConfigError, match=r"context 'nope' is not in the kubeconfig \(contexts: prod-eu, staging\)"
    ):
        load_catalog(Settings(kubeconfig=config, kube_context="nope"))


def test_a_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no usable Kubernetes configuration"):
        load_catalog(Settings(kubeconfig=tmp_path / "absent"))


def test_no_configuration_at_all_offers_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.kubernetes.client.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "none"))
    assert load_catalog(Settings(kube_service_account_dir=tmp_path / "sa")) is None


def test_a_broken_user_entry_is_named_without_quoting_it(tmp_path: Path) -> None:
    # The library's message prints the whole entry, here the token written beside `user`.
    config = _kubeconfig(tmp_path / "kubeconfig")
    document = yaml.safe_load(config.read_text())
    document["users"] = [{"name": "u", "token": TOKEN, "client-key-data": KEY_DATA}]
    config.write_text(yaml.safe_dump(document))
    catalog = load_catalog(Settings(kubeconfig=config))
    assert catalog is not None
    with pytest.raises(ConfigError) as caught:
        KubeClient.connect(catalog.context("staging"), Settings(), kubeconfig=config)
    assert str(caught.value) == "cluster 'staging' cannot be used: its kubeconfig entry has no 'user'"
    assert TOKEN in str(caught.value.__cause__)  # what the message was kept from


def test_a_context_without_a_server_is_refused_rather_than_sent_to_localhost(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig")
    document = yaml.safe_load(config.read_text())
    document["clusters"][0]["cluster"] = {"insecure-skip-tls-verify": True}
    config.write_text(yaml.safe_dump(document))
    catalog = load_catalog(Settings(kubeconfig=config))
    assert catalog is not None
    assert catalog.context("staging").server == "-"
    with pytest.raises(
        ConfigError, match="cluster 'staging' cannot be used: its kubeconfig names no server URL"
    ):
        KubeClient.connect(catalog.context("staging"), Settings(), kubeconfig=config)


def test_a_kubeconfig_without_contexts_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: s3cr3t-t0ken}}]\n")
    with pytest.raises(ConfigError, match="no usable Kubernetes configuration") as caught:
        load_catalog(Settings(kubeconfig=config))
    assert "s3cr3t" not in str(caught.value)


def _service_account(tmp_path: Path, token: str = TOKEN) -> Path:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(token)
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (account / "namespace").write_text("gateway-system\n")
    return account


def _in_pod(account: Path, **more: Any) -> Settings:
    return Settings(
        KUBERNETES_SERVICE_HOST="10.96.0.1",
        KUBERNETES_SERVICE_PORT="443",
        kube_service_account_dir=account,
        **more,
    )


def test_in_a_pod_without_a_kubeconfig_the_service_account_is_the_default(tmp_path: Path) -> None:
    settings = _in_pod(_service_account(tmp_path), kube_in_cluster_context="hub")
    catalog = load_catalog(settings)
    assert catalog is not None
    assert (catalog.names, catalog.default) == (("hub",), "hub")
    context = catalog.context("hub")
    assert context == ClusterContext("hub", "https://10.96.0.1:443", "gateway-system", in_cluster=True)
    client = KubeClient.connect(context, settings, kubeconfig=None)
    assert (client.cluster, client.server) == ("hub", "https://10.96.0.1:443")
    client.close()


def test_a_pod_with_a_kubeconfig_uses_the_kubeconfig_unless_the_service_account_is_allowed(
    tmp_path: Path,
) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig")
    account = _service_account(tmp_path)
    only_kubeconfig = load_catalog(_in_pod(account, kubeconfig=config))
    assert only_kubeconfig is not None
    assert only_kubeconfig.names == ("staging", "prod-eu")
    both = load_catalog(_in_pod(account, kubeconfig=config, kube_contexts=("staging", "in-cluster")))
    assert both is not None
    assert both.names == ("staging", "in-cluster")
    assert both.default == "staging"


def test_a_pod_without_its_token_is_not_in_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.kubernetes.client.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "none"))
    assert load_catalog(_in_pod(tmp_path / "no-such-dir")) is None


def test_a_service_account_without_its_ca_fails_with_the_reason(tmp_path: Path) -> None:
    account = _service_account(tmp_path)
    (account / "ca.crt").unlink()
    settings = _in_pod(account)
    catalog = load_catalog(settings)
    assert catalog is not None
    with pytest.raises(
        ConfigError, match="cluster 'in-cluster' cannot be used: Service certification"
    ) as caught:
        KubeClient.connect(catalog.context("in-cluster"), settings, kubeconfig=None)
    assert TOKEN not in str(caught.value)
