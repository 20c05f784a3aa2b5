"""Messages a person can act on, against the real kube-apiserver: what it refuses reaches
the caller as its cause (not its decoding plumbing or a Go dump of the caller's own object),
and policy quotes quantities as the caller wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kube_support import ToolRunner
from mcp import Client

from gateway.errors import Invalid
from gateway.kubernetes.tools import open_backend
from gateway.local.opa import OpaServer
from gateway.server import build_server
from gateway.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kube]


def _deployment(namespace: str, *, replicas: str = "1", app: str = "web") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec: {{containers: [{{name: c, image: "registry.example.com/web:1.0"}}]}}
"""


async def test_a_wrongly_typed_field_names_the_object_and_the_field(
    kube_tools: ToolRunner, kube_namespace: str
) -> None:
    with pytest.raises(Invalid) as raised:
        await kube_tools.plan("k8s_apply", manifest=_deployment(kube_namespace, replicas='"three"'))
    message = str(raised.value)
    assert message.startswith(f"Deployment {kube_namespace}/web: .spec.replicas: expected numeric")
    assert "typed patch object" not in message


async def test_an_immutable_field_says_so_without_a_go_dump_of_the_object(
    kube_tools: ToolRunner, kube_namespace: str
) -> None:
    await kube_tools.execute(await kube_tools.plan("k8s_apply", manifest=_deployment(kube_namespace)))
    with pytest.raises(Invalid) as raised:
        await kube_tools.plan("k8s_apply", manifest=_deployment(kube_namespace, app="other"))
    message = str(raised.value)
    assert 'Deployment.apps "web" is invalid: spec.selector: field is immutable' in message
    assert "LabelSelector{" not in message
    assert "map[string]string" not in message


_SIZED = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: sized, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: sized}}}}
  template:
    metadata: {{labels: {{app: sized}}}}
    spec:
      containers:
      - name: web
        image: registry.example.com/shop/web:2.1.0
        resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{cpu: 200m, memory: 256Mi}}}}
"""


@pytest.fixture
def gated(kube_settings: Settings, opa_server: OpaServer, tmp_path: Path) -> Settings:
    """The Kubernetes backend behind the real OPA with the project's bundle, as alice (sre)."""
    update = {"opa_url": opa_server.url, "db_path": tmp_path / "gateway.db", "subject": "alice"}
    return kube_settings.model_copy(update={**update, "groups": ("sre",)})


async def test_policy_quotes_quantities_as_the_caller_wrote_them(
    kube_tools: ToolRunner, gated: Settings, kube_namespace: str
) -> None:
    sized = _SIZED.format(namespace=kube_namespace)
    await kube_tools.execute(await kube_tools.plan("k8s_apply", manifest=sized))

    def source(settings: Settings, check: Any) -> Any:
        return open_backend(settings, check)

    arguments = {
        "kind": "deployment",
        "name": "sized",
        "namespace": kube_namespace,
        "container": "web",
        "requests": {"memory": "1.5Gi"},
        "limits": {"memory": "3Gi"},
    }
    async with Client(build_server(gated, backends=[source])) as client:
        result = await client.call_tool("k8s_set_resources", arguments)
    text = "\n".join(c.text for c in result.content if c.type == "text")
    assert result.is_error, text
    assert "OPS-CHANGE-001" in text
    assert "memory request changes from 128Mi to 1.5Gi" in text
    assert "1536Mi" not in text
