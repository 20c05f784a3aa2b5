"""The Kubernetes ToolSpecs over a fake client: catalogue, log bounds, fail-closed execution."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.contracts import Decision, Obligations, PlannedCall, Principal, ProposedAction, Target
from gateway.errors import BackendError, Forbidden, NotFound
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.contexts import ClusterCatalog, ClusterContext
from gateway.kubernetes.tools import TOOL_NAMES, build_specs
from gateway.settings import Settings
from gateway.tools import ExecutionContext, ToolSpec

CORE = {
    "kind": "APIGroupDiscoveryList",
    "items": [
        {
            "metadata": {"name": ""},
            "versions": [
                {
                    "version": "v1",
                    "resources": [
                        {
                            "resource": "pods",
                            "responseKind": {"kind": "Pod"},
                            "scope": "Namespaced",
                            "shortNames": ["po"],
                        },
                        {"resource": "namespaces", "responseKind": {"kind": "Namespace"}, "scope": "Cluster"},
                        {
                            "resource": "configmaps",
                            "responseKind": {"kind": "ConfigMap"},
                            "scope": "Namespaced",
                            "shortNames": ["cm"],
                        },
                    ],
                }
            ],
        }
    ],
}
PRINCIPAL = Principal(subject="t", transport="internal", authenticated=True)


class FakeClient:
    cluster = "fake"
    server = "https://fake"

    def __init__(self) -> None:
        self.namespace_reads = 0
        self.log_requests: list[int] = []
        self.forbid_namespaces = False

    async def discovery(self, path: str, aggregated: bool) -> dict[str, Any]:
        return CORE if path == "/api" else {"kind": "APIGroupDiscoveryList", "items": []}

    async def get(self, kind: Any, name: str, namespace: str | None) -> dict[str, Any]:
        if kind.kind == "Namespace":
            self.namespace_reads += 1
            if self.forbid_namespaces:
                raise Forbidden('namespaces "dev" is forbidden')
            if name == "gone":
                raise NotFound('namespaces "gone" not found')
            return {"metadata": {"name": name, "labels": {"environment": "production"}}}
        return {"metadata": {"name": name, "namespace": namespace}}

    async def pod_logs(self, namespace: str, pod: str, *, tail_lines: int, **_: Any) -> str:
        self.log_requests.append(tail_lines)
        return "\n".join(f"line {i}" for i in range(tail_lines))


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def specs(client: FakeClient) -> dict[str, ToolSpec[Any]]:
    catalog = ClusterCatalog([ClusterContext("fake", "https://fake")], default="fake", kubeconfig=None)
    pool = ClusterPool(catalog, Settings(kube_default_log_lines=50), lambda _context: client)
    return {spec.name: spec for spec in build_specs(pool)}


async def _plan(spec: ToolSpec[Any], **arguments: Any) -> tuple[Any, PlannedCall]:
    args = spec.args.model_validate(arguments)
    prepared = await spec.prepare(args)
    actions = tuple(
        ProposedAction(tool=spec.name, backend=spec.backend, operation=spec.operation, effect=spec.effect,
                       target=p.target, args=p.policy_args or args.model_dump(mode="json"), object=p.object,
                       current=p.current, principal=PRINCIPAL)
        for p in prepared
    )  # fmt: skip
    return args, PlannedCall(tool=spec.name, call_args=args.model_dump(mode="json"), actions=actions)


def _allow(max_log_lines: int | None) -> Decision:
    return Decision(outcome="allow", obligations=Obligations(max_log_lines=max_log_lines))


def test_the_catalogue_matches_the_contract(specs: dict[str, ToolSpec[Any]]) -> None:
    assert tuple(specs) == TOOL_NAMES
    effects = {name: (s.operation, s.effect, s.idempotent) for name, s in specs.items()}
    assert effects["k8s_apply"] == ("apply", "write", True)
    assert effects["k8s_scale"] == ("scale", "write", True)
    assert effects["k8s_set_resources"] == ("set_resources", "write", True)
    assert effects["k8s_restart"] == ("restart", "write", False)
    assert effects["k8s_delete"] == ("delete", "delete", False)
    assert specs["k8s_delete"].annotations.destructive_hint is True
    for name in ("k8s_clusters", "k8s_list", "k8s_get", "k8s_events", "k8s_logs", "k8s_cluster_info",
                 "k8s_nodes", "k8s_resource_usage", "k8s_diagnose"):  # fmt: skip
        assert effects[name] == (name.removeprefix("k8s_"), "read", True)
        assert specs[name].annotations.read_only_hint is True


def test_every_argument_is_described_for_the_model(specs: dict[str, ToolSpec[Any]]) -> None:
    for spec in specs.values():
        assert spec.backend == "kubernetes"
        assert len(spec.description) > 30
        for field, info in spec.args.model_fields.items():
            assert info.description, f"{spec.name}.{field} has no description"


@pytest.mark.parametrize(
    ("tail_lines", "bound", "expected", "capped"),
    [(None, None, 50, False), (500, 100, 100, True), (20, 100, 20, False), (None, 10, 10, True)],
)
async def test_log_lines_are_bounded_by_the_decision(
    specs: dict[str, ToolSpec[Any]],
    client: FakeClient,
    tail_lines: int | None,
    bound: int | None,
    expected: int,
    capped: bool,
) -> None:
    spec = specs["k8s_logs"]
    args, call = await _plan(spec, pod="p", namespace="dev", tail_lines=tail_lines)
    result = await spec.execute(args, ExecutionContext(call=call, decision=_allow(bound)))
    assert client.log_requests == [expected]
    assert result["line_count"] == expected
    assert result["capped_by_policy"] is capped


async def test_a_zero_line_obligation_reads_no_logs_at_all(
    specs: dict[str, ToolSpec[Any]], client: FakeClient
) -> None:
    spec = specs["k8s_logs"]
    args, call = await _plan(spec, pod="p", namespace="dev")
    result = await spec.execute(args, ExecutionContext(call=call, decision=_allow(0)))
    assert (result["lines"], client.log_requests) == ([], [])


async def test_reads_reuse_a_namespace_environment_read_moments_ago(
    specs: dict[str, ToolSpec[Any]], client: FakeClient
) -> None:
    for _ in range(3):
        _, call = await _plan(specs["k8s_get"], kind="cm", name="a", namespace="dev")
        assert call.actions[0].target.environment == "production"
    assert client.namespace_reads == 1


async def test_an_unreadable_namespace_fails_the_call_instead_of_guessing(
    specs: dict[str, ToolSpec[Any]], client: FakeClient
) -> None:
    client.forbid_namespaces = True
    with pytest.raises(Forbidden, match="its environment is unknown"):
        await _plan(specs["k8s_get"], kind="cm", name="a", namespace="dev")


async def test_a_missing_namespace_is_not_found(specs: dict[str, ToolSpec[Any]]) -> None:
    with pytest.raises(NotFound, match="namespace 'gone' does not exist"):
        await _plan(specs["k8s_list"], kind="po", namespace="gone")


async def test_apply_refuses_a_manifest_other_than_the_one_judged(specs: dict[str, ToolSpec[Any]]) -> None:
    spec = specs["k8s_apply"]
    judged = ProposedAction(
        tool="k8s_apply", backend="kubernetes", operation="apply", effect="write",
        target=Target(cluster="fake", kind="ConfigMap", api_version="v1", namespace="dev", name="a"),
        args={"manifest_sha256": "0" * 64, "manifest_bytes": 1, "documents": 1}, principal=PRINCIPAL,
    )  # fmt: skip
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: dev}\n"
    args = spec.args.model_validate({"manifest": manifest})
    call = PlannedCall(tool="k8s_apply", call_args={"manifest": manifest}, actions=(judged,))
    with pytest.raises(BackendError, match="does not match the one policy judged"):
        await spec.execute(args, ExecutionContext(call=call, decision=_allow(None)))


async def test_delete_refuses_to_run_without_the_judged_object_identity(
    specs: dict[str, ToolSpec[Any]],
) -> None:
    spec = specs["k8s_delete"]
    judged = ProposedAction(
        tool="k8s_delete", backend="kubernetes", operation="delete", effect="delete",
        target=Target(cluster="fake", kind="ConfigMap", api_version="v1", namespace="dev", name="a"),
        current=None, principal=PRINCIPAL,
    )  # fmt: skip
    args = spec.args.model_validate({"kind": "cm", "name": "a", "namespace": "dev"})
    call = PlannedCall(tool="k8s_delete", call_args=args.model_dump(), actions=(judged,))
    with pytest.raises(BackendError, match="no object identity"):
        await spec.execute(args, ExecutionContext(call=call, decision=_allow(None)))
