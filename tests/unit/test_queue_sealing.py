"""Parked calls are sealed at rest (AES-256-GCM); approvers see them redacted as before."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from queue_support import ALICE, needs_approval, secret_apply_call
from storage_fixtures import Backend

from gateway.contracts import PlannedCall
from gateway.errors import ConfigError, SealError
from gateway.queue import QueueStore
from gateway.queue.display import action_view
from gateway.queue.proofs import Attestor
from gateway.queue.sealing import Sealer, new_key_line
from gateway.settings import Settings


def secret_call() -> PlannedCall:
    return secret_apply_call()


async def raw_call(backend: Backend, action_id: str) -> str:
    [(call_json,)] = await backend.execute("SELECT call_json FROM actions WHERE id = ?", [action_id])
    return str(call_json)


async def test_a_parked_secret_is_sealed_at_rest_and_shown_redacted(backend: Backend, tmp_path: Path) -> None:
    settings = backend.settings()
    sealer = Sealer.from_settings(settings, create=True)
    assert (tmp_path / "queue.keys").stat().st_mode & 0o777 == 0o600
    store = await QueueStore.open(backend.target, sealer=sealer)
    try:
        call = secret_call()
        await store.park(call, needs_approval(), ALICE)
        stored = await raw_call(backend, call.id)
        assert stored.startswith("sealed:v1:k1:")
        assert "hunter2" not in stored
        assert "Secret" not in stored
        parked = await store.get(call.id)
        assert parked.call == call
        assert parked.fingerprint == call.fingerprint()
        view = action_view(parked)
        assert "hunter2" not in str(view)
        assert view["call"]["call_args"]["manifest"][0]["stringData"]["password"] == "<redacted>"
    finally:
        await store.close()


async def test_after_rotation_old_rows_stay_readable_and_new_rows_use_the_new_key(
    backend: Backend, tmp_path: Path
) -> None:
    settings = backend.settings()
    store = await QueueStore.open(backend.target, sealer=Sealer.from_settings(settings, create=True))
    old = secret_call()
    await store.park(old, needs_approval(), ALICE)
    await store.close()

    keys = tmp_path / "queue.keys"
    keys.write_text(new_key_line("k2") + "\n" + keys.read_text())  # the new key first
    store = await QueueStore.open(backend.target, sealer=Sealer.from_settings(settings, create=True))
    try:
        new = secret_call()
        await store.park(new, needs_approval(), ALICE)
        assert (await raw_call(backend, new.id)).startswith("sealed:v1:k2:")
        assert (await store.get(old.id)).call == old
        assert (await store.get(new.id)).call == new
    finally:
        await store.close()

    keys.write_text(keys.read_text().splitlines()[0] + "\n")  # the old key dropped too early
    store = await QueueStore.open(backend.target, sealer=Sealer.from_settings(settings, create=False))
    try:
        with pytest.raises(SealError, match="sealed with key 'k1', which this process does not hold"):
            await store.get(old.id)
    finally:
        await store.close()


async def test_a_sealed_call_moved_to_another_row_does_not_open(backend: Backend) -> None:
    settings = backend.settings()
    store = await QueueStore.open(backend.target, sealer=Sealer.from_settings(settings, create=True))
    try:
        first, second = secret_call(), secret_call()
        await store.park(first, needs_approval(), ALICE)
        await store.park(second, needs_approval(), ALICE)
        await backend.execute(
            "UPDATE actions SET call_json = (SELECT call_json FROM actions WHERE id = ?) WHERE id = ?",
            [first.id, second.id],
        )
        with pytest.raises(SealError, match="does not open"):
            await store.get(second.id)
    finally:
        await store.close()


def test_a_key_from_the_environment_seals_and_a_bad_key_is_a_config_error(tmp_path: Path) -> None:
    line = new_key_line("vault-1").replace(" ", ":")
    sealer = Sealer.from_settings(Settings(db_path=tmp_path / "g.db", queue_key=line), create=True)
    assert sealer is not None
    assert sealer.active == "vault-1"
    assert not (tmp_path / "queue.keys").exists()
    with pytest.raises(ConfigError, match="32 bytes"):
        Sealer.from_settings(Settings(db_path=tmp_path / "g.db", queue_key="k9:c2hvcnQ="), create=False)


def test_replicas_creating_the_keys_together_all_get_the_same_whole_keys(tmp_path: Path) -> None:
    """Replicas starting at once on a shared volume: one creates each file, none reads it half written."""
    settings = Settings(
        db_path=tmp_path / "g.db", queue_keys_file=tmp_path / "keys" / "queue.keys",
        attestation_key_file=tmp_path / "keys" / "attestation.key",
    )  # fmt: skip

    def start() -> tuple[bytes, str]:
        sealer = Sealer.from_settings(settings, create=True)
        assert sealer is not None
        # every replica's key opens what any other sealed
        assert Sealer.from_settings(settings, create=False).opener("k1") is not None  # type: ignore[union-attr]
        attestor = Attestor.load_or_create(settings.data_file(settings.attestation_key_file, "x"))
        return sealer.seal("probe", "a")[:18].encode(), attestor.public_key()

    with ThreadPoolExecutor(max_workers=8) as pool:
        started = list(pool.map(lambda _: start(), range(32)))
    assert len({public for _, public in started}) == 1
    assert all(prefix.startswith(b"sealed:v1:k1:") for prefix, _ in started)
    lines = (tmp_path / "keys" / "queue.keys").read_text().splitlines()
    assert len([line for line in lines if line.startswith("k1 ")]) == 1
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["attestation.key", "queue.keys"]
