"""Many clusters without a server: which contexts are offered, the ``cluster`` argument,
and the pool of clients (built once, bounded, reused, closed; judged cluster on execute)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio
import pytest
import yaml

from gateway.arguments import validate_model
from gateway.contracts import Decision, PlannedCall, Principal, ProposedAction, Target
from gateway.errors import BackendError, BackendUnavailable, ConfigError, InvalidArguments, PolicyUnavailable
from gateway.kubernetes.args import GetArgs, ListArgs, for_clusters
from gateway.kubernetes.client import KubeClient, load_catalog
from gateway.kubernetes.clusters import ClusterPool
from gateway.kubernetes.contexts import ClusterCatalog, ClusterContext
from gateway.kubernetes.tools import build_specs
from gateway.settings import Settings
from gateway.tools import ExecutionContext

PRINCIPAL = Principal(subject="t", transport="internal", authenticated=True)


def _contexts(*names: str) -> list[ClusterContext]:
    return [ClusterContext(name, f"https://{name}.example:6443") for name in names]


def _select(names: Sequence[str], current: str | None = None, **settings: Any) -> ClusterCatalog:
    catalog = ClusterCatalog.select(
        Settings(**settings), kubeconfig=(_contexts(*names), current), in_cluster=None
    )
    assert catalog is not None
    return catalog


# -- which contexts --------------------------------------------------------------------


def test_the_allow_list_keeps_the_contexts_it_names_or_matches() -> None:
    notes: list[str] = []
    catalog = ClusterCatalog.select(
        Settings(kube_contexts=("sandbox", "prod-*", "staging")),
        kubeconfig=(_contexts("sandbox", "prod-eu", "prod-us", "admin-secret"), "sandbox"),
        in_cluster=None,
        warn=notes,
    )
    assert catalog is not None
    assert catalog.names == ("sandbox", "prod-eu", "prod-us")
    assert notes == ["GATEWAY_KUBE_CONTEXTS entry 'staging' matches no context"]


def test_the_allow_list_is_read_from_the_environment_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_KUBE_CONTEXTS", "sandbox, prod-*")
    assert Settings().kube_contexts == ("sandbox", "prod-*")


def test_an_allow_list_matching_nothing_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_KUBE_CONTEXTS matches none"):
        _select(["a", "b"], kube_contexts=("c",))


@pytest.mark.parametrize(
    ("names", "current", "settings", "default"),
    [
        (["a", "b"], "b", {}, "b"),
        (["a", "b"], "b", {"kube_context": "a"}, "a"),
        (["a", "b"], "b", {"kube_contexts": ("a",)}, "a"),  # the only one left
        (["a", "b", "c"], "c", {"kube_contexts": ("a", "b")}, None),  # current not allowed: name one
        (["a", "b"], None, {}, None),
    ],
)
def test_the_default_context(
    names: list[str], current: str | None, settings: dict[str, Any], default: str | None
) -> None:
    assert _select(names, current, kubeconfig=None, **settings).default == default


def test_a_default_outside_the_allow_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_KUBE_CONTEXT 'b' is not allowed"):
        _select(["a", "b"], "a", kube_context="b", kube_contexts=("a",))


def test_contexts_with_unprintable_names_are_not_offered() -> None:
    notes: list[str] = []
    catalog = ClusterCatalog.select(
        Settings(),
        kubeconfig=(
            _contexts("ok", "bad\nname", "", "x" * 300, "arn:aws:eks:eu-west-1:1:cluster/prod"),
            "ok",
        ),
        in_cluster=None,
        warn=notes,
    )
    assert catalog is not None
    assert catalog.names == ("ok", "arn:aws:eks:eu-west-1:1:cluster/prod")
    assert len(notes) == 3


def test_the_service_account_may_not_shadow_a_kubeconfig_context() -> None:
    pod = ClusterContext("sandbox", "https://10.96.0.1:443", in_cluster=True)
    with pytest.raises(ConfigError, match="two contexts are named 'sandbox'"):
        ClusterCatalog.select(
            Settings(kube_contexts=("sandbox",), kube_context="sandbox"),
            kubeconfig=(_contexts("sandbox"), "sandbox"),
            in_cluster=pod,
        )


# -- the cluster argument --------------------------------------------------------------


def test_the_cluster_argument_lists_the_allowed_contexts_and_defaults_to_the_default() -> None:
    catalog = _select(["sandbox", "prod-eu"], "sandbox")
    model = for_clusters(ListArgs, catalog)
    schema = model.model_json_schema()["properties"]["cluster"]
    assert (schema["enum"], schema["default"]) == (["sandbox", "prod-eu"], "sandbox")
    assert validate_model("k8s_list", model, {"kind": "pod"}).cluster == "sandbox"
    assert validate_model("k8s_list", model, {"kind": "pod", "cluster": "prod-eu"}).cluster == "prod-eu"


def test_unknown_and_disallowed_clusters_get_the_same_answer_without_the_name() -> None:
    # "admin-secret" is in the kubeconfig but not allowed; "nope" is nowhere: nothing tells them apart.
    catalog = ClusterCatalog.select(
        Settings(kube_contexts=("sandbox", "prod-*")),
        kubeconfig=(_contexts("sandbox", "prod-eu", "admin-secret"), "sandbox"),
        in_cluster=None,
    )
    assert catalog is not None
    model = for_clusters(GetArgs, catalog)
    messages = []
    for name in ("admin-secret", "nope", "prod-eu; rm -rf /", "../../etc", "\x00", "ü" * 400):
        with pytest.raises(InvalidArguments) as caught:
            validate_model("k8s_get", model, {"kind": "pod", "name": "x", "cluster": name})
        messages.append(str(caught.value))
        assert name.strip() not in str(caught.value) or not name.strip()
    assert "use one of: sandbox, prod-eu" in messages[0]
    assert messages[0] == messages[1] == messages[2]
    assert "admin-secret" not in " ".join(messages)


def test_without_a_default_the_cluster_is_required() -> None:
    model = for_clusters(GetArgs, _select(["a", "b"]))
    assert "cluster" in model.model_json_schema()["required"]
    with pytest.raises(InvalidArguments, match="cluster: Field required"):
        validate_model("k8s_get", model, {"kind": "pod", "name": "x"})


# -- the pool ----------------------------------------------------------------------------


class FakeClient:
    def __init__(self, cluster: str, *, fail_version: bool = False) -> None:
        self.cluster = cluster
        self.server = f"https://{cluster}.example:6443"
        self.closed = False
        self.fail_version = fail_version

    async def version(self) -> dict[str, Any]:
        if self.fail_version:
            raise BackendUnavailable(
                f"the Kubernetes API of cluster {self.cluster!r} is unreachable (OSError)"
            )
        return {"gitVersion": "v1.30.14"}

    async def discovery(self, path: str, aggregated: bool) -> dict[str, Any]:
        return {"kind": "APIGroupDiscoveryList", "items": []}

    async def get(self, kind: Any, name: str, namespace: str | None) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"environment": "development"}}}

    def close(self) -> None:
        self.closed = True


class Connector:
    """Builds fake clients in the worker thread, slowly, counting how many at once."""

    def __init__(self, *, fail: Sequence[str] = (), delay: float = 0.0) -> None:
        self.fail = set(fail)
        self.delay = delay
        self.built: list[FakeClient] = []
        self.lock = threading.Lock()

    def __call__(self, context: ClusterContext) -> FakeClient:
        time.sleep(self.delay)
        if context.name in self.fail:
            raise ConfigError(f"cluster {context.name!r} cannot be used: its kubeconfig entry has no 'user'")
        client = FakeClient(context.name, fail_version=context.name.startswith("down"))
        with self.lock:
            self.built.append(client)
        return client


def _pool(names: Sequence[str], connect: Connector, *, max_clients: int = 16, **kwargs: Any) -> ClusterPool:
    catalog = ClusterCatalog(_contexts(*names), default=names[0], kubeconfig=None)
    return ClusterPool(catalog, Settings(kube_max_clients=max_clients), connect, **kwargs)


async def test_a_client_is_built_once_per_cluster_and_reused() -> None:
    connect = Connector()
    pool = _pool(["a", "b"], connect)
    first = await pool.backend("a")
    assert await pool.backend("a") is first
    await pool.backend("b")
    assert [c.cluster for c in connect.built] == ["a", "b"]


async def test_two_first_calls_to_a_cluster_build_one_client() -> None:
    connect = Connector(delay=0.2)
    pool = _pool(["a", "b"], connect)
    found: list[Any] = []

    async def use(name: str) -> None:
        found.append(await pool.backend(name))

    async with anyio.create_task_group() as group:
        for name in ("a", "a", "a", "b", "b"):
            group.start_soon(use, name)
    assert sorted(c.cluster for c in connect.built) == ["a", "b"]
    assert len({id(b) for b in found}) == 2


async def test_the_least_recently_used_client_is_closed_beyond_the_bound() -> None:
    connect = Connector()
    pool = _pool(["a", "b", "c"], connect, max_clients=2)
    await pool.backend("a")
    await pool.backend("b")
    await pool.backend("a")  # b is now the least recently used
    await pool.backend("c")
    assert pool.live == ("a", "c")
    closed = {c.cluster: c.closed for c in connect.built}
    assert closed == {"a": False, "b": True, "c": False}
    await pool.backend("b")  # built again on its next use
    assert [c.cluster for c in connect.built] == ["a", "b", "c", "b"]
    pool.close()
    assert all(c.closed for c in connect.built)


async def test_a_cluster_whose_credentials_fail_fails_alone_and_is_tried_again() -> None:
    connect = Connector(fail=["broken"])
    pool = _pool(["a", "broken"], connect)
    with pytest.raises(
        BackendUnavailable, match="cluster 'broken' cannot be used: its kubeconfig entry has no 'user'"
    ):
        await pool.backend("broken")
    assert (await pool.backend("a")).client.cluster == "a"
    connect.fail.clear()
    assert (await pool.backend("broken")).client.cluster == "broken"


async def test_a_name_outside_the_catalog_is_an_argument_error() -> None:
    with pytest.raises(InvalidArguments, match="use one of: a, b"):
        await _pool(["a", "b"], Connector()).backend("c")


def _judged_call(tool: str, *clusters: str | None) -> PlannedCall:
    actions = tuple(
        ProposedAction(tool=tool, backend="kubernetes", operation="get", effect="read", principal=PRINCIPAL,
                       target=Target(cluster=cluster, kind="Pod", api_version="v1", name="p"))
        for cluster in clusters
    )  # fmt: skip
    return PlannedCall(tool=tool, call_args={}, actions=actions)


async def test_execution_uses_the_judged_cluster_not_the_default() -> None:
    pool = _pool(["a", "b"], Connector())
    args = GetArgs(kind="pod", name="p", namespace="dev")  # no cluster: the default is "a"
    ctx = ExecutionContext(call=_judged_call("k8s_get", "b"), decision=Decision(outcome="allow"))
    assert (await pool.judged(args, ctx)).client.cluster == "b"


@pytest.mark.parametrize(
    ("asked", "judged", "message"),
    [
        ("a", ("b",), "names cluster 'a' but policy judged it on 'b'"),
        (None, ("a", "b"), "does not name one cluster"),
        (None, (None,), "does not name one cluster"),
        (None, ("gone",), "cluster 'gone', which the gateway may no longer use"),
    ],
)
async def test_execution_refuses_a_call_whose_cluster_is_in_doubt(
    asked: str | None, judged: tuple[str | None, ...], message: str
) -> None:
    pool = _pool(["a", "b"], Connector())
    args = GetArgs(kind="pod", name="p", namespace="dev", cluster=asked)
    ctx = ExecutionContext(call=_judged_call("k8s_get", *judged), decision=Decision(outcome="allow"))
    with pytest.raises(BackendError, match=message):
        await pool.judged(args, ctx)


async def test_a_probe_reuses_a_live_client_and_closes_the_one_it_built() -> None:
    connect = Connector()
    pool = _pool(["a", "b"], connect)
    live = await pool.backend("a")
    assert await pool.probe("a") == {"reachable": True, "version": "v1.30.14", "error": None}
    assert await pool.probe("b") == {"reachable": True, "version": "v1.30.14", "error": None}
    assert not live.client.closed
    probe_client = connect.built[-1]
    assert (probe_client.cluster, probe_client.closed, pool.live) == ("b", True, ("a",))


# -- k8s_clusters ------------------------------------------------------------------------


async def _listing(pool: ClusterPool) -> dict[str, Any]:
    spec = {s.name: s for s in build_specs(pool)}["k8s_clusters"]
    args = spec.args.model_validate({})
    prepared = await spec.prepare(args)
    assert prepared[0].target == Target()  # every cluster: judged as a fleet-wide read
    call = spec.plan(args, prepared, PRINCIPAL)
    result: dict[str, Any] = await spec.execute(
        args, ExecutionContext(call=call, decision=Decision(outcome="allow"))
    )
    return result


async def test_k8s_clusters_lists_each_cluster_with_what_policy_data_says() -> None:
    asked: list[list[str]] = []

    async def environments(names: Sequence[str]) -> dict[str, str]:
        asked.append(list(names))
        return {"prod-eu": "production"}

    pool = _pool(
        ["sandbox", "prod-eu", "down-1", "broken"], Connector(fail=["broken"]), environments=environments
    )
    result = await _listing(pool)
    assert asked == [["sandbox", "prod-eu", "down-1", "broken"]]
    by_name = {c["name"]: c for c in result["clusters"]}
    assert (result["count"], result["default"], result["environments_note"]) == (4, "sandbox", None)
    assert by_name["sandbox"] == {
        "name": "sandbox", "default": True, "server": "https://sandbox.example:6443", "namespace": None,
        "in_cluster": False, "environment": None, "reachable": True, "version": "v1.30.14", "error": None,
    }  # fmt: skip
    assert by_name["prod-eu"]["environment"] == "production"
    assert (by_name["down-1"]["reachable"], by_name["down-1"]["version"]) == (False, None)
    assert "unreachable" in by_name["down-1"]["error"]
    assert by_name["broken"]["error"] == "cluster 'broken' cannot be used: its kubeconfig entry has no 'user'"


async def test_k8s_clusters_says_when_policy_could_not_be_asked() -> None:
    async def environments(names: Sequence[str]) -> dict[str, str]:
        raise PolicyUnavailable("OPA could not be reached (ClientConnectorError)")

    result = await _listing(_pool(["a"], Connector(), environments=environments))
    assert result["clusters"][0]["environment"] is None
    assert result["environments_note"] == (
        "environments unknown: policy could not be asked (OPA could not be reached (ClientConnectorError))"
    )


async def test_k8s_clusters_shows_nothing_of_a_kubeconfigs_credentials(tmp_path: Any) -> None:
    secrets = ["EXEC-ARG-SECRET", "ID-TOKEN-SECRET", "S0VZLVNFQ1JFVA==", "TOKEN-SECRET", "PASS-SECRET"]
    users = {
        "exec": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "false",
                          "args": [f"--token={secrets[0]}"], "env": [{"name": "T", "value": secrets[3]}]}},
        "oidc": {"auth-provider": {"name": "oidc", "config": {"id-token": secrets[1],
                                                              "refresh-token": secrets[3]}}},
        "certs": {"client-certificate-data": "Zm9v", "client-key-data": secrets[2]},
        "basic": {"username": "u", "password": secrets[4], "token": secrets[3]},
    }  # fmt: skip
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": f"https://admin:{secrets[4]}@127.0.0.1:1"}}],
            "users": [{"name": name, "user": user} for name, user in users.items()],
            "contexts": [{"name": name, "context": {"cluster": "c", "user": name}} for name in users],
            "current-context": "exec",
        })
    )  # fmt: skip
    settings = Settings(kubeconfig=config, kube_connect_timeout_seconds=0.5)
    catalog = load_catalog(settings)
    assert catalog is not None
    pool = ClusterPool(catalog, settings, partial(KubeClient.connect, settings=settings, kubeconfig=config))
    listing = await _listing(pool)
    assert [c["name"] for c in listing["clusters"]] == list(users)
    assert {c["server"] for c in listing["clusters"]} == {"https://127.0.0.1:1"}
    text = json.dumps(listing)
    assert not [s for s in secrets if s in text]
    pool.close()
