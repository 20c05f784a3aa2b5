"""Rollback end to end on the living sandbox: an MCP client over streamable HTTP → the gateway →
the real OPA with the project's bundle → the real kube-apiserver with its controllers; the
approver's CLI signs with the real ``ssh-keygen`` through the approvals API; the journal and
queue are the real SQLite store, reopened when the gateway restarts.

What policy says about a rollback comes from the bundle as shipped: a restore in a
development namespace is allowed, a delete needs approval (destructive_actions), anything in
production needs another human (production_protection), a forced rollback needs approval
(rollback), and a principal outside its scope is denied (principal_scope).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml
from kube_support import comparable, kube_source
from kube_support import reply_body as _body
from kube_support import reply_text as _text
from kubernetes import client as k8s
from mcp import Client
from mcp_types import CallToolResult
from typer.testing import CliRunner

from gateway.auth import append_token
from gateway.cli import app
from gateway.http import build_app
from gateway.local.opa import OpaServer
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.runtime import RuntimeSlot
from gateway.server import build_server
from gateway.settings import Settings

# The HTTP helpers of the suites one level up (serving an app in a thread, an MCP client
# with a bearer token), whichever directory pytest collected first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from http_support import mcp_client, serving_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.kube]

JSON = dict[str, Any]
runner = CliRunner()
_KINDS = ("deployments", "services", "configmaps")


def snapshot(api: Any, namespace: str) -> dict[str, JSON]:
    """Every Deployment, Service and ConfigMap of the namespace, by kind/name, comparable."""
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    listed = {
        "deployments": apps.list_namespaced_deployment(namespace).items,
        "services": core.list_namespaced_service(namespace).items,
        "configmaps": core.list_namespaced_config_map(namespace).items,
    }
    out = {}
    for kind in _KINDS:
        for item in listed[kind]:
            raw = api.sanitize_for_serialization(item)
            raw.setdefault(
                "kind", {"deployments": "Deployment", "services": "Service"}.get(kind, "ConfigMap")
            )
            out[f"{kind}/{raw['metadata']['name']}"] = comparable(raw)
    return out


def _manifest(namespace: str, *, image: str = "registry.example.com/shop/web:2.1.0", replicas: int = 2,
              tier: str | None = None, mode: str = "fast") -> str:  # fmt: skip
    labels = {"app": "shop", **({"tier": tier} if tier else {})}
    container = {
        "name": "web",
        "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "200m", "memory": "256Mi"},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "shop-settings", "namespace": namespace},
        "data": {"mode": mode},
    }
    return yaml.safe_dump_all([config, deployment, service])


class Served:
    """The gateway serving MCP and the approvals API over HTTP, with alice (the agent's
    principal, group sre), bob (an approver whose SSH key the gateway trusts) and mallory
    (group developers, scoped to namespace dev)."""

    def __init__(self, tmp: Path, settings: Settings) -> None:
        self.tmp = tmp
        tokens = tmp / "tokens.jsonl"
        self.tokens = {
            "alice": append_token(tokens, subject="alice", groups=("sre",)),
            "bob": append_token(tokens, subject="bob", groups=("sre",)),
            "mallory": append_token(tokens, subject="mallory", groups=("developers",)),
        }
        self.key = tmp / "bob_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f", str(self.key)], check=True
        )
        signers = tmp / "allowed_signers"
        signers.write_text(f"bob {Path(str(self.key) + '.pub').read_text()}")
        self.settings = settings.model_copy(
            update={
                "transport": "http",
                "tokens_file": tokens,
                "approval_signatures": "required",
                "allowed_signers_file": signers,
                "db_path": tmp / "gateway.db",
            }
        )
        self.url = ""

    @contextmanager
    def running(self) -> Iterator[str]:
        slot = RuntimeSlot()
        server = build_server(self.settings, backends=[kube_source], slot=slot)
        with serving_in_thread(build_app(server, self.settings, slot=slot)) as url:
            self.url = url
            yield url

    @asynccontextmanager
    async def mcp(self, who: str = "alice") -> AsyncIterator[Client]:
        async with mcp_client(self.url, self.tokens[who]) as client:
            yield client

    def cli(self, who: str, *args: str) -> tuple[int, str, str]:
        env = {
            "GATEWAY_URL": self.url,
            "GATEWAY_TOKEN": self.tokens[who],
            "GATEWAY_SIGNING_KEY": str(self.key),
        }
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    async def audit(self) -> list[Any]:
        store = await QueueStore.open(
            self.settings.db_path, sealer=Sealer.from_settings(self.settings, create=False)
        )
        try:
            records = list(reversed(await store.audit.recent(limit=500)))
            await store.audit.verify()
        finally:
            await store.close()
        return records


@pytest.fixture
def served(kube_settings: Settings, kube_seeded: Any, opa_server: OpaServer, tmp_path: Path) -> Served:
    return Served(
        tmp_path, kube_settings.model_copy(update={"opa_url": opa_server.url, "opa_timeout_seconds": 5.0})
    )


@pytest.fixture
def production_shop(kube_admin: Any) -> Iterator[str]:
    """A namespace labelled environment=production holding Deployment ``shop`` (2 replicas),
    created behind the gateway's back."""
    name = f"prod-{uuid4().hex[:8]}"
    core = k8s.CoreV1Api(kube_admin)
    core.create_namespace({"metadata": {"name": name, "labels": {"environment": "production"}}})
    deployment = next(d for d in yaml.safe_load_all(_manifest(name)) if d["kind"] == "Deployment")
    k8s.AppsV1Api(kube_admin).create_namespaced_deployment(name, deployment)
    yield name
    core.delete_namespace(name)


async def _call(client: Client, tool: str, arguments: JSON) -> CallToolResult:
    return await client.call_tool(tool, arguments)


async def _until_done(client: Client, action_id: str) -> JSON:
    for _ in range(300):
        state = _body(await client.call_tool("gateway_action", {"action_id": action_id}))
        if state["state"] in ("succeeded", "failed"):
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"action {action_id} did not finish")


async def test_an_mcp_session_applies_rolls_back_and_leaves_the_cluster_as_it_was(
    served: Served, kube_admin: Any, kube_namespace: str
) -> None:
    empty = snapshot(kube_admin, kube_namespace)
    with served.running():
        async with served.mcp() as mcp:
            created = await _call(mcp, "k8s_apply", {"manifest": _manifest(kube_namespace)})
            assert not created.is_error, _text(created)
            first = snapshot(kube_admin, kube_namespace)
            assert set(first) - set(empty) == {
                "configmaps/shop-settings",
                "deployments/shop",
                "services/shop",
            }

            newer = _manifest(
                kube_namespace,
                image="registry.example.com/shop/web:2.2.0",
                replicas=3,
                tier="front",
                mode="safe",
            )
            changed = await _call(mcp, "k8s_apply", {"manifest": newer})
            assert not changed.is_error, _text(changed)
            assert snapshot(kube_admin, kube_namespace) != first

            # The restore is a write in a development namespace: allowed, run at once.
            undo = await _call(mcp, "gateway_rollback", {"action_id": _body(changed)["action_id"]})
            assert not undo.is_error, _text(undo)
            assert snapshot(kube_admin, kube_namespace) == first
            shown = _body(await mcp.call_tool("gateway_action", {"action_id": _body(changed)["action_id"]}))
            assert shown["rolled_back"]["by_action"] == _body(undo)["action_id"]
            assert shown["rolled_back"]["subject"] == "alice"

            # Undoing the creation deletes: that needs a human, who signs with ssh-keygen.
            parked = await _call(mcp, "gateway_rollback", {"action_id": _body(created)["action_id"]})
            assert _body(parked)["outcome"] == "needs_approval", _text(parked)
            assert "OPS-DESTRUCT-001" in _text(parked)
            code, out, err = served.cli(
                "bob", "queue", "approve", _body(parked)["action_id"], "--reason", "undo"
            )
            assert code == 0, err
            done = await _until_done(mcp, _body(parked)["action_id"])
            assert done["state"] == "succeeded", done

        code, out, err = served.cli("bob", "queue", "show", _body(created)["action_id"])
        assert code == 0, err
        assert "Rolled back  by alice at" in out
        assert _body(parked)["action_id"] in out

    assert snapshot(kube_admin, kube_namespace) == empty
    records = await served.audit()
    links = [(r.kind, r.detail.get("rollback_of")) for r in records if r.tool == "gateway_rollback"]
    assert ("decision", _body(changed)["action_id"]) in links
    assert ("execution", _body(created)["action_id"]) in links
    marks = {r.action_id: r.detail["by_action"] for r in records if r.kind == "rolled_back"}
    assert marks == {
        _body(changed)["action_id"]: _body(undo)["action_id"],
        _body(created)["action_id"]: _body(parked)["action_id"],
    }


async def test_a_rollback_outside_the_callers_scope_is_denied_by_policy_and_changes_nothing(
    served: Served, kube_admin: Any, kube_namespace: str
) -> None:
    # mallory may propose rollbacks of others' actions (GATEWAY_ROLLBACK_GROUPS), but her
    # group acts in namespace dev only: policy judges the inverse like any write there.
    served.settings = served.settings.model_copy(update={"rollback_groups": ("developers",)})
    with served.running():
        async with served.mcp() as mcp:
            created = _body(await _call(mcp, "k8s_apply", {"manifest": _manifest(kube_namespace)}))
        before = snapshot(kube_admin, kube_namespace)
        async with served.mcp("mallory") as mcp:
            denied = await _call(mcp, "gateway_rollback", {"action_id": created["action_id"]})
            state = _body(await mcp.call_tool("gateway_action", {"action_id": created["action_id"]}))

    assert denied.is_error
    assert _body(denied)["outcome"] == "deny"
    assert "GW-SCOPE-001" in _text(denied)
    assert snapshot(kube_admin, kube_namespace) == before
    assert state["rolled_back"] is False
    records = await served.audit()
    assert [(r.kind, r.outcome) for r in records if r.tool == "gateway_rollback"] == [("decision", "deny")]


async def test_drift_is_refused_with_what_changed_and_forcing_it_needs_another_human(
    served: Served, kube_admin: Any, kube_namespace: str
) -> None:
    apps = k8s.AppsV1Api(kube_admin)
    with served.running():
        async with served.mcp() as mcp:
            await _call(mcp, "k8s_apply", {"manifest": _manifest(kube_namespace)})
            scale = {"kind": "deploy", "name": "shop", "namespace": kube_namespace, "replicas": 4}
            scaled = _body(await _call(mcp, "k8s_scale", scale))
            apps.patch_namespaced_deployment(
                "shop", kube_namespace, {"spec": {"replicas": 6}}
            )  # someone else

            refused = await _call(mcp, "gateway_rollback", {"action_id": scaled["action_id"]})
            assert refused.is_error
            assert "spec.replicas: 4 -> 6" in _text(refused)
            assert "force=true" in _text(refused)

            code, out, err = served.cli("alice", "queue", "rollback", scaled["action_id"], "--force")
            assert code == 0, err
            assert "needs approval" in out
            assert "OPS-ROLLBACK-001" in out
            assert apps.read_namespaced_deployment("shop", kube_namespace).spec.replicas == 6
            rollback = out.split("rollback ", 1)[1].split()[0]
            code, _, err = served.cli("bob", "queue", "approve", rollback, "--reason", "forced, reviewed")
            assert code == 0, err
            done = await _until_done(mcp, rollback)

    assert done["state"] == "succeeded", done
    assert apps.read_namespaced_deployment("shop", kube_namespace).spec.replicas == 2
    records = await served.audit()
    refusals = [r for r in records if r.tool == "gateway_rollback" and r.kind == "failure"]
    assert refusals[0].detail["stage"] == "prepare"
    decisions = [r for r in records if r.tool == "gateway_rollback" and r.kind == "decision"]
    assert decisions
    assert {r.detail["rollback_of"] for r in decisions} == {scaled["action_id"]}


async def test_a_rollback_in_production_waits_for_another_human_across_gateway_restarts(
    served: Served, kube_admin: Any, production_shop: str
) -> None:
    apps = k8s.AppsV1Api(kube_admin)
    scale = {"kind": "deploy", "name": "shop", "namespace": production_shop, "replicas": 5}
    with served.running():
        async with served.mcp() as mcp:
            parked = _body(await _call(mcp, "k8s_scale", scale))
            assert parked["outcome"] == "needs_approval"
            assert served.cli("bob", "queue", "approve", parked["action_id"])[0] == 0
            assert (await _until_done(mcp, parked["action_id"]))["state"] == "succeeded"
    assert apps.read_namespaced_deployment("shop", production_shop).spec.replicas == 5

    with served.running():  # a new gateway process's runtime: the journal and keys from disk
        code, out, err = served.cli("alice", "queue", "rollback", parked["action_id"][:8], "--json")
        assert code == 0, err
        proposed = yaml.safe_load(out)
        assert proposed["status"] == "pending", proposed
        assert "OPS-PROD-001" in {r["code"] for r in proposed["decision"]["reasons"]}
        assert served.cli("alice", "queue", "approve", proposed["rollback_id"])[0] == 1  # not her own

    with served.running():
        assert served.cli("bob", "queue", "approve", proposed["rollback_id"])[0] == 0
        async with served.mcp() as mcp:
            done = await _until_done(mcp, proposed["rollback_id"])
            original = _body(await mcp.call_tool("gateway_action", {"action_id": parked["action_id"]}))

    assert done["state"] == "succeeded", done
    assert apps.read_namespaced_deployment("shop", production_shop).spec.replicas == 2
    assert original["rolled_back"]["by_action"] == proposed["rollback_id"]


async def test_bad_rollback_requests_are_clear_errors_that_reach_neither_policy_nor_the_cluster(
    served: Served, kube_admin: Any, kube_namespace: str, production_shop: str
) -> None:
    with served.running():
        async with served.mcp() as mcp:
            mine = _body(await _call(mcp, "k8s_apply", {"manifest": _manifest(kube_namespace)}))
            scale = {"kind": "deploy", "name": "shop", "namespace": production_shop, "replicas": 3}
            pending = _body(await _call(mcp, "k8s_scale", scale))
            unknown = await _call(mcp, "gateway_rollback", {"action_id": str(uuid4())})
            never = await _call(mcp, "gateway_rollback", {"action_id": pending["action_id"]})
            malformed = await _call(mcp, "gateway_rollback", {"action_id": "not an id!"})
        async with served.mcp("mallory") as mcp:
            theirs = await _call(mcp, "gateway_rollback", {"action_id": mine["action_id"]})
        before = snapshot(kube_admin, kube_namespace)
        code, _, err = served.cli("mallory", "queue", "rollback", mine["action_id"])

    assert "no executed change has id" in _text(unknown)
    assert f"action {pending['action_id']} is pending: it never executed" in _text(never)
    assert "action_id" in _text(malformed)
    assert "you may not roll back" in _text(theirs)
    assert all(r.is_error for r in (unknown, never, malformed, theirs))
    assert (code, "you may not roll back" in err) == (1, True)
    assert snapshot(kube_admin, kube_namespace) == before
    records = await served.audit()
    assert {r.kind for r in records if r.tool == "gateway_rollback"} == {"rejected_request"}
