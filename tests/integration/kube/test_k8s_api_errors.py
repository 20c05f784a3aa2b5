"""What the real kube-apiserver refuses reaches the caller as its cause, not as the API
server's decoding plumbing or a Go dump of the caller's own object."""

from __future__ import annotations

import pytest
from kube_support import ToolRunner

from gateway.errors import Invalid

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
