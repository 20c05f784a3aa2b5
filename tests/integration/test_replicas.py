"""Several gateway replicas on one PostgreSQL database (real processes, real OPA, real
server): MCP sessions on different replicas share one queue; approvers racing on different
replicas produce one execution; a replica killed while executing leaves its action
``interrupted`` once its lease lapses, never re-run; a call waiting for approval survives its
replica going away; stateless HTTP behind a load balancer without affinity; one audit chain
that verifies afterwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import mcp_client, serving_in_thread
from mcp import MCPError
from queue_harness import TOOL, queue_opa
from replica_support import Replica, Replicas, legacy_client, replicas, round_robin, wait_for
from storage_fixtures import make_backend

from gateway.local.opa import OpaServer
from gateway.server import WAIT_META_KEY

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
_ = queue_opa

GATEWAY_CLI = Path(sys.executable).with_name("gateway")
LEASE = 3.0


@pytest.fixture(scope="module")
def group(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, queue_opa: OpaServer
) -> Iterator[Replicas]:
    """Three replicas (stateless HTTP, lease 3 s) on one PostgreSQL database for the module."""
    workdir = tmp_path_factory.mktemp("replicas")
    database = make_backend(request, "postgres", workdir)
    db = next(database)
    try:
        with replicas(db, queue_opa, workdir, lease_seconds=LEASE) as started:
            started.start(3)
            yield started
    finally:
        database.close()


def _body(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content or {})


async def _park(replica: Replica, token: str, line: str, sleep: float = 0.0) -> str:
    async with mcp_client(replica.url, token) as client:
        parked = _body(await client.call_tool(TOOL, {"line": line, "sleep_seconds": sleep}))
    assert parked["state"] == "pending", parked
    return str(parked["action_id"])


async def _state(group: Replicas, replica: Replica, action_id: str) -> str:
    async with httpx.AsyncClient(
        base_url=replica.url, headers={"Authorization": f"Bearer {group.tokens['bob']}"}, trust_env=False
    ) as api:
        return str((await api.get(f"/api/v1/actions/{action_id}")).json()["state"])


async def _approve(group: Replicas, replica: Replica, who: str, action_id: str) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=replica.url,
        headers={"Authorization": f"Bearer {group.tokens[who]}"},
        timeout=30,
        trust_env=False,
    ) as api:
        return await api.post(
            f"/api/v1/actions/{action_id}/approve", json={"reason": f"{who} on {replica.name}"}
        )


async def _settled(
    group: Replicas, replica: Replica, action_id: str, *states: str, within: float = 30
) -> str:
    deadline = time.monotonic() + within
    while (state := await _state(group, replica, action_id)) not in states:
        assert time.monotonic() < deadline, f"{action_id} still {state}"
        await asyncio.sleep(0.1)
    return state


async def test_sessions_on_different_replicas_share_one_queue(group: Replicas) -> None:
    one, two, three = group.members[:3]
    action_id = await _park(one, group.tokens["alice"], "shared")

    async with mcp_client(two.url, group.tokens["alice"]) as client:
        seen = _body(await client.call_tool("gateway_action", {"action_id": action_id}))
        assert seen["state"] == "pending"
        assert (await _approve(group, three, "bob", action_id)).status_code == 200
        await _settled(group, two, action_id, "succeeded")
        done = _body(await client.call_tool("gateway_action", {"action_id": action_id}))
    assert done["result"] == {"appended": "shared", "action": action_id}
    assert [line.split()[1] for line in group.done()].count("shared") == 1


async def test_two_approvers_racing_on_different_replicas_produce_one_execution(group: Replicas) -> None:
    one, two = group.members[:2]
    lines = [f"race-{n}" for n in range(5)]
    ids = [await _park(one, group.tokens["alice"], line) for line in lines]
    for action_id in ids:
        bob, carol = await asyncio.gather(
            _approve(group, one, "bob", action_id), _approve(group, two, "carol", action_id)
        )
        # quorum 1: one approval lands, the other finds the action no longer pending
        assert sorted([bob.status_code, carol.status_code]) == [200, 409], (bob.text, carol.text)
    for action_id in ids:
        await _settled(group, two, action_id, "succeeded")
    executed = [line.split()[1] for line in group.done()]
    assert all(executed.count(line) == 1 for line in lines), executed


async def test_a_waiting_call_is_woken_on_its_replica_when_another_replica_approves(group: Replicas) -> None:
    one, _, three = group.members[:3]
    async with mcp_client(one.url, group.tokens["alice"]) as client:
        call = asyncio.create_task(
            client.call_tool(TOOL, {"line": "woken"}, meta={WAIT_META_KEY: 60})  # type: ignore[typeddict-unknown-key]
        )
        pending = await _pending_action(group, three, "woken")
        assert (await _approve(group, three, "carol", pending)).status_code == 200
        result = _body(await asyncio.wait_for(call, timeout=30))
    assert result == {"appended": "woken", "action": pending, "action_id": pending}


async def _pending_action(group: Replicas, replica: Replica, line: str) -> str:
    """The id of the pending append of ``line``, once it is parked."""
    async with httpx.AsyncClient(
        base_url=replica.url, headers={"Authorization": f"Bearer {group.tokens['bob']}"}, trust_env=False
    ) as api:
        for _ in range(300):
            for row in (await api.get("/api/v1/actions", params={"state": "pending"})).json():
                shown = (await api.get(f"/api/v1/actions/{row['id']}")).json()
                if shown["call"]["call_args"].get("line") == line:
                    return str(row["id"])
            await asyncio.sleep(0.1)
    raise AssertionError(f"no pending call appends {line!r}")


async def test_a_replica_killed_while_executing_leaves_its_action_interrupted_after_the_lease(
    group: Replicas,
) -> None:
    action_id = await _park(group.members[0], group.tokens["alice"], "doomed", sleep=60)
    assert (await _approve(group, group.members[1], "bob", action_id)).status_code == 200
    [started] = wait_for(lambda: [s for s in group.started() if " doomed " in s], what="execution start")
    executor = next(r for r in group.members if r.proc.pid == int(started.split()[2]))
    executor.kill()
    killed_at = time.monotonic()
    survivor = next(r for r in group.members if r.proc.poll() is None)

    assert await _settled(group, survivor, action_id, "interrupted", within=LEASE + 30) == "interrupted"
    # Not before the lease lapsed: the last heartbeat was at most a sixth of it before the kill.
    assert time.monotonic() - killed_at >= LEASE * 5 / 6 - 0.2
    refused = await _approve(group, survivor, "carol", action_id)
    assert refused.status_code == 409
    await asyncio.sleep(1)
    assert [s for s in group.started() if " doomed " in s] == [started]  # never re-run
    assert not [d for d in group.done() if " doomed " in d]
    group.members.remove(executor)
    group.start(1)  # back to three for the tests after this one


async def test_a_call_waiting_for_approval_survives_its_replica_going_away(group: Replicas) -> None:
    waiting_on, approver = group.members[-1], group.members[0]
    failed: list[BaseException] = []

    async def wait_on_doomed_replica() -> None:
        try:
            async with mcp_client(waiting_on.url, group.tokens["alice"]) as client:
                await client.call_tool(TOOL, {"line": "survivor"}, meta={WAIT_META_KEY: 120})  # type: ignore[typeddict-unknown-key]
        except BaseException as exc:
            failed.append(exc)

    call = asyncio.create_task(wait_on_doomed_replica())
    action_id = await _pending_action(group, approver, "survivor")
    waiting_on.kill()
    await asyncio.wait_for(call, timeout=30)
    assert failed, "the call outlived its replica"

    # The parked call is in the database: approved on another replica, executed by a survivor,
    # and its result read by the requester through any replica.
    assert (await _approve(group, approver, "bob", action_id)).status_code == 200
    await _settled(group, approver, action_id, "succeeded")
    async with mcp_client(group.members[1].url, group.tokens["alice"]) as client:
        done = _body(await client.call_tool("gateway_action", {"action_id": action_id}))
    assert done["result"] == {"appended": "survivor", "action": action_id}
    group.members.remove(waiting_on)
    group.start(1)


async def test_stateless_replicas_serve_sessions_behind_a_balancer_without_affinity(group: Replicas) -> None:
    balancer = round_robin([r.url for r in group.members[:3]])
    with serving_in_thread(balancer) as url:
        for client_of in (mcp_client, legacy_client):  # the 2026 protocol, and sessions before it
            async with client_of(url, group.tokens["alice"]) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                parked = _body(await client.call_tool(TOOL, {"line": "balanced"}))
                again = _body(await client.call_tool("gateway_action", {"action_id": parked["action_id"]}))
            assert {TOOL, "gateway_action"} <= names
            assert again["state"] == "pending"
    assert all(balancer.state.hits), balancer.state.hits


async def test_stateful_replicas_behind_a_balancer_without_affinity_lose_legacy_sessions(
    group: Replicas, tmp_path: Path
) -> None:
    """Why the chart serves stateless HTTP (or needs affinity on Mcp-Session-Id): with
    sessions, a pre-2026 client's session lives in the replica that opened it."""
    with replicas(group.db, group.opa, tmp_path, stateless=False) as stateful:
        pair = stateful.start(2)
        token = stateful.tokens["alice"]
        with serving_in_thread(round_robin([r.url for r in pair])) as url:
            assert await _two_listings(legacy_client, url, token) is not None
            assert await _two_listings(mcp_client, url, token) is None  # 2026: no session to lose
        assert await _two_listings(legacy_client, pair[0].url, token) is None  # with affinity


async def _two_listings(client_of: Any, url: str, token: str) -> BaseException | None:
    """What two consecutive requests of one MCP session raise, if anything."""
    try:
        async with client_of(url, token) as client:
            await client.list_tools()
            await client.list_tools()
    except (MCPError, httpx.HTTPError, ExceptionGroup) as exc:
        return exc
    return None


def test_one_audit_chain_verifies_after_all_of_it(group: Replicas) -> None:
    """Last in the module: every replica appended to one chain, serialised by the database."""
    env = group.db.environ()
    verified = subprocess.run(
        [str(GATEWAY_CLI), "audit", "verify", "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["intact"] is True
    listed = subprocess.run(
        [str(GATEWAY_CLI), "audit", "list", "--json", "--limit", "10000"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    records = json.loads(listed.stdout)
    assert len(records) == report["rows"]
    claims = [r for r in records if r["kind"] == "execution" and r["detail"].get("step") == "claimed"]
    executors = {r["detail"]["executor"]["host"] for r in claims}
    assert executors <= {r.name for r in group.members} | {f"replica-{n}" for n in range(1, 8)}
    assert len({r["action_id"] for r in claims}) == len(claims)  # no action claimed twice
