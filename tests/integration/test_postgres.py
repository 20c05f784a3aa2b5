"""What only the PostgreSQL backend does, against a real server: LISTEN/NOTIFY wakes a
waiter on another connection at commit (and only at commit), the listener comes back after
losing its connection, replicas starting together migrate once; and bad input: a server
that cannot be reached, credentials that are refused, a missing database, a schema newer
than the code, keys replicas would not share (``gateway serve`` refuses to start, saying
which), and a database lost in the middle of a call (a clean error, nothing run twice)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client
from queue_harness import ALICE, BOB, TOOL, append_source, gateway_stack, queue_opa, settings_for, started
from queue_support import needs_approval, scale_call
from storage_fixtures import Backend

from gateway.db import Database
from gateway.errors import DatabaseError
from gateway.local.opa import OpaServer
from gateway.local.postgres import PostgresServer
from gateway.local.process import free_port, wait_until
from gateway.ports import ActionState
from gateway.queue import QueueStore, approve
from gateway.server import build_server
from gateway.settings import Settings
from gateway.storage.postgres_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
_ = queue_opa

GATEWAY_CLI = Path(sys.executable).with_name("gateway")


# -- LISTEN/NOTIFY ----------------------------------------------------------------------


async def test_a_waiter_is_woken_when_another_replica_commits_a_transition(postgres_backend: Backend) -> None:
    waiting = await QueueStore.open(postgres_backend.target)  # one replica's pool
    other = await QueueStore.open(postgres_backend.target)  # another replica's
    try:
        parked = await waiting.park(scale_call(), needs_approval(), ALICE)
        assert await waiting.wait_for_change(parked.id, 0.2) is True  # the listener's first connect
        assert await waiting.wait_for_change(parked.id, 0.2) is False  # nothing happened since

        wait = asyncio.create_task(waiting.wait_for_change(parked.id, 60))
        await asyncio.sleep(0.2)
        assert not wait.done()
        await other.cancel(parked.id, BOB, "not today")
        assert await asyncio.wait_for(wait, 10) is True  # woken, long before its 60 s
        assert (await waiting.get(parked.id)).state is ActionState.CANCELLED
    finally:
        await waiting.close()
        await other.close()


async def test_a_transition_rolled_back_wakes_nobody(postgres_backend: Backend) -> None:
    store = await QueueStore.open(postgres_backend.target)
    try:
        parked = await store.park(scale_call(), needs_approval(), ALICE)
        await store.wait_for_change(parked.id, 0.2)  # connect the listener, take its wake-up
        with pytest.raises(RuntimeError, match="abandoned"):
            await _abandoned_denial(store, parked.id)
        assert await store.wait_for_change(parked.id, 0.5) is False
        assert (await store.get(parked.id)).state is ActionState.PENDING
    finally:
        await store.close()


async def _abandoned_denial(store: QueueStore, action_id: str) -> None:
    async with store.db.write() as conn:
        assert await conn.execute("UPDATE actions SET state = 'denied' WHERE id = ?", [action_id]) == 1
        raise RuntimeError("abandoned")


async def test_the_listener_comes_back_after_its_connection_is_killed(postgres_backend: Backend) -> None:
    store = await QueueStore.open(postgres_backend.target)
    try:
        parked = await store.park(scale_call(), needs_approval(), ALICE)
        await store.wait_for_change(parked.id, 0.2)
        killed = await postgres_backend.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
        )
        assert killed == [(True,)]
        await asyncio.sleep(0.2)
        # Reconnected on the next wait, which wakes at once: something may have been missed.
        assert await store.wait_for_change(parked.id, 5) is True
        wait = asyncio.create_task(store.wait_for_change(parked.id, 60))
        await asyncio.sleep(0.2)
        await store.deny(parked.id, BOB, "no")
        assert await asyncio.wait_for(wait, 10) is True
    finally:
        await store.close()


async def test_replicas_starting_together_migrate_the_schema_once(postgres_backend: Backend) -> None:
    opened = await asyncio.gather(*(Database.open(postgres_backend.target) for _ in range(3)))
    for db in opened:
        await db.close()
    assert await postgres_backend.execute("SELECT version FROM gateway_schema") == [(PG_SCHEMA_VERSION,)]


# -- refusing to start ------------------------------------------------------------------


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEWAY_CLI), "serve", "--transport", "http", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def serve_env(postgres_backend: Backend, tmp_path: Path, queue_opa: OpaServer) -> dict[str, str]:
    tokens = tmp_path / "tokens.jsonl"
    tokens.write_text("")
    return postgres_backend.environ(GATEWAY_TOKENS_FILE=str(tokens), GATEWAY_OPA_URL=queue_opa.url)


def test_serve_refuses_a_server_it_cannot_reach(
    serve_env: dict[str, str], postgres_server: PostgresServer
) -> None:
    dead = postgres_server.url(port=free_port())
    done = _serve(serve_env | {"GATEWAY_DATABASE_URL": dead, "GATEWAY_DATABASE_CONNECT_TIMEOUT_SECONDS": "3"})
    assert done.returncode == 2
    assert "cannot reach PostgreSQL at postgresql://gateway@127.0.0.1:" in done.stderr
    assert postgres_server.password not in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_wrong_credentials_and_never_prints_the_password(
    serve_env: dict[str, str], postgres_server: PostgresServer
) -> None:
    wrong = postgres_server.url(password="not-the-password-42")
    done = _serve(serve_env | {"GATEWAY_DATABASE_URL": wrong})
    assert done.returncode == 2
    assert "refused the credentials of user 'gateway'" in done.stderr
    assert "password authentication failed" in done.stderr
    assert "not-the-password-42" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_missing_database(serve_env: dict[str, str], postgres_server: PostgresServer) -> None:
    done = _serve(serve_env | {"GATEWAY_DATABASE_URL": postgres_server.url("no_such_db")})
    assert done.returncode == 2
    assert "has no such database" in done.stderr


def test_serve_refuses_a_schema_newer_than_its_code(
    serve_env: dict[str, str], postgres_backend: Backend
) -> None:
    async def newer() -> None:
        await (await Database.open(postgres_backend.target)).close()
        await postgres_backend.execute("UPDATE gateway_schema SET version = 7")

    asyncio.run(newer())
    done = _serve(serve_env)
    assert done.returncode == 2
    newer = f"has schema version 7, newer than this gateway's {PG_SCHEMA_VERSION}: upgrade the gateway"
    assert newer in done.stderr


def test_serve_refuses_keys_its_replicas_would_not_share(serve_env: dict[str, str]) -> None:
    unshared = {k: v for k, v in serve_env.items() if k not in {"GATEWAY_ATTESTATION_KEY_FILE"}}
    done = _serve(unshared)
    assert done.returncode == 2
    assert "every replica must use the same keys: set GATEWAY_ATTESTATION_KEY_FILE" in done.stderr


def test_the_cli_names_an_unusable_database_too(
    serve_env: dict[str, str], postgres_server: PostgresServer
) -> None:
    dead = serve_env | {
        "GATEWAY_DATABASE_URL": postgres_server.url(port=free_port()),
        "GATEWAY_DATABASE_CONNECT_TIMEOUT_SECONDS": "3",
    }
    done = subprocess.run(
        [str(GATEWAY_CLI), "audit", "verify"],
        env=dead,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach PostgreSQL at postgresql://gateway@127.0.0.1:")
    assert postgres_server.password not in done.stderr


def test_an_invalid_database_url_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="must be a postgresql:// URL"):
        Settings(database_url="mysql://gateway:secret@db/gateway")


# -- a database lost mid-call -----------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own: it is stopped and started again."""
    with PostgresServer() as server:
        yield server


def _own_backend(server: PostgresServer, tmp_path: Path) -> Backend:
    return Backend("postgres", tmp_path, url=server.url(), server=server)


async def test_a_call_made_while_the_database_is_gone_is_a_clean_error_and_runs_nothing(
    own_server: PostgresServer, tmp_path: Path, queue_opa: OpaServer
) -> None:
    db = _own_backend(own_server, tmp_path)
    settings = settings_for(db, queue_opa, "one", database_connect_timeout_seconds=3)
    log = tmp_path / "executions.log"
    async with Client(build_server(settings, backends=[append_source(log)])) as client:
        own_server.halt()
        lost = await client.call_tool(TOOL, {"line": "lost"})
        own_server.resume()
        again = await client.call_tool(TOOL, {"line": "back"})
    assert lost.is_error
    text = lost.content[0].text  # type: ignore[union-attr]
    assert text == f"{TOOL} was not run: the gateway's audit log is unavailable; try again later"
    assert not again.is_error, again.content
    assert (again.structured_content or {})["state"] == "pending"  # parked once the database is back
    assert started(log) == []


async def test_an_execution_whose_outcome_meets_a_lost_database_is_recorded_once_it_is_back(
    own_server: PostgresServer, tmp_path: Path, queue_opa: OpaServer
) -> None:
    db = _own_backend(own_server, tmp_path)
    log = tmp_path / "executions.log"
    async with gateway_stack(settings_for(db, queue_opa, "one"), log) as stack:
        outcome = await stack.gateway.call(
            TOOL, {"line": "slow", "sleep_seconds": 1.5}, ALICE, wait_seconds=0
        )
        await approve(stack.store, stack.policy, outcome.action_id, BOB)
        run = asyncio.create_task(stack.executor.run_once())
        await asyncio.to_thread(wait_until, lambda: bool(started(log)), timeout=30, what="the execution")
        own_server.halt()  # the call is running; its outcome has nowhere to go
        await asyncio.sleep(2.5)
        assert not run.done()  # retrying, within the lease
        own_server.resume()
        [done] = await asyncio.wait_for(run, 60)
        assert done.state is ActionState.SUCCEEDED
        assert await stack.executor.run_once() == []
        assert (await stack.store.audit.verify()).rows > 0
    assert [line.split()[1] for line in started(log)] == ["slow"]  # ran once


async def test_the_readiness_probe_follows_the_database(
    own_server: PostgresServer, tmp_path: Path, queue_opa: OpaServer
) -> None:
    from http_support import serving
    from replica_support import Replicas

    from gateway.http import build_app

    db = _own_backend(own_server, tmp_path)
    group = Replicas(db, queue_opa, tmp_path)  # its tokens and shared keys
    settings = settings_for(
        db,
        queue_opa,
        "one",
        transport="http",
        tokens_file=group.tokens_file,
        database_connect_timeout_seconds=2,
    )
    app = build_app(build_server(settings, backends=[append_source(tmp_path / "x.log")]), settings)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, trust_env=False) as http:
        assert (await http.get("/readyz")).status_code == 200
        own_server.halt()
        down = await http.get("/readyz")
        assert (down.status_code, down.json()["checks"]["database"]) == (503, "not writable")
        own_server.resume()
        deadline = time.monotonic() + 20
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)


async def test_a_driver_error_is_a_database_error_naming_the_reason(postgres_backend: Backend) -> None:
    db = await Database.open(postgres_backend.target)
    try:
        with pytest.raises(DatabaseError, match="PostgreSQL: 42P01"):
            async with db.read() as conn:
                await conn.fetchall("SELECT * FROM no_such_table")
    finally:
        with contextlib.suppress(DatabaseError):
            await db.close()
