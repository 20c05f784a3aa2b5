"""Approvals that cannot be forged: signed statements and attestations, checked by the
approve flow and again by the executor, over a real SQLite file and real Ed25519 keys
(the signatures are the sshsig format ``ssh-keygen -Y verify`` accepts; the integration
suite signs with ``ssh-keygen`` itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from queue_support import ALICE, BOB, CAROL, FakeClock, allow, needs_approval, scale_call
from storage_fixtures import Backend

from gateway.audit import format_time
from gateway.contracts import Decision, PlannedCall, Principal, ProposedAction
from gateway.errors import ApprovalRefused, ConfigError, ProofRefused
from gateway.ports import ActionState, ParkedAction
from gateway.queue import Executor, QueueStore, approve
from gateway.queue.approvals import Signed
from gateway.queue.proofs import ApprovalProofs, ApprovalStatement, Attestor
from gateway.signers import AllowedSigners, sign

_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIGEZ7/uS7VTmPGREzKg/JYu+u74JJ9//DUfxRn+azhI2"
HTTP_BOB = BOB.model_copy(update={"transport": "http"})
HTTP_CAROL = CAROL.model_copy(update={"transport": "http"})


class Quorum:
    """Policy stand-in: allows once ``quorum`` approvers other than the requester approved;
    also the executor's runner, counting executions."""

    def __init__(self, quorum: int = 1) -> None:
        self.quorum = quorum
        self.executed: list[str] = []
        self.judged: list[tuple[str, ...]] = []

    async def evaluate_all(self, actions: Sequence[ProposedAction]) -> Decision:
        others = {a.subject for a in actions[0].approvals if a.subject != actions[0].principal.subject}
        self.judged.append(tuple(sorted(others)))
        return allow() if len(others) >= self.quorum else needs_approval(min_approvals=self.quorum)

    async def execute(self, call: PlannedCall, decision: Decision) -> Any:
        self.executed.append(call.id)
        return {"ok": True}


class Keys:
    """Approvers' keys, the allowed signers file and the revoked keys file."""

    def __init__(self, tmp: Path) -> None:
        self.allowed = tmp / "allowed_signers"
        self.revoked = tmp / "revoked_signers"
        self.keys = {name: ed25519.Ed25519PrivateKey.generate() for name in ("bob", "carol", "mallory")}
        self.write("bob", "carol")

    def public(self, name: str) -> str:
        return self.keys[name].public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()

    def write(self, *names: str) -> None:
        self.allowed.write_text("".join(f"{n} {self.public(n)} {n}'s key\n" for n in names))

    def revoke(self, name: str) -> None:
        self.revoked.write_text(self.public(name) + "\n")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(backend: Backend, clock: FakeClock) -> AsyncIterator[QueueStore]:
    opened = await QueueStore.open(backend.target, clock=clock)
    yield opened
    await opened.close()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
def proofs(tmp_path: Path, keys: Keys) -> ApprovalProofs:
    """What a gateway serving HTTP with GATEWAY_APPROVAL_SIGNATURES=required checks."""
    return ApprovalProofs(
        signers=AllowedSigners(keys.allowed, keys.revoked),
        attestor=Attestor.load_or_create(tmp_path / "attestation.key"),
        require_signature=True,
        require_attestation=True,
    )


def signed_by(
    keys: Keys, signer: str, action: ParkedAction, who: Principal, clock: FakeClock, **changes: Any
) -> Signed:
    statement = ApprovalStatement.for_action(action, who.subject, who.groups, format_time(clock()), None)
    text = statement.model_copy(update=changes).text()
    return Signed(text, sign(text, keys.keys[signer]))


async def run_executor(store: QueueStore, policy: Quorum, proofs: ApprovalProofs) -> ParkedAction:
    [done] = await Executor(store, policy, store.audit, policy=policy, proofs=proofs).run_once()
    return done


async def test_two_signed_approvals_approve_and_the_executor_runs_the_action(
    store: QueueStore, clock: FakeClock, keys: Keys, proofs: ApprovalProofs
) -> None:
    parked = await store.park(scale_call(), needs_approval(min_approvals=2), ALICE)
    policy = Quorum(quorum=2)
    first = await approve(
        store,
        policy,
        parked.id,
        HTTP_BOB,
        proofs=proofs,
        signed=signed_by(keys, "bob", parked, HTTP_BOB, clock),
        clock=clock,
    )
    assert first.action.state is ActionState.PENDING
    clock.advance(30)
    second = await approve(
        store,
        policy,
        parked.id,
        HTTP_CAROL,
        proofs=proofs,
        signed=signed_by(keys, "carol", parked, HTTP_CAROL, clock),
        clock=clock,
    )
    assert second.action.state is ActionState.APPROVED

    done = await run_executor(store, policy, proofs)
    assert done.state is ActionState.SUCCEEDED, done.error
    assert policy.executed == [parked.id]
    assert policy.judged[-1] == ("bob", "carol")
    rows = await store.stored_approvals(parked.id)
    assert all(r.signature and r.attestation and r.statement for r in rows)
    [record] = [r for r in await store.audit.recent() if r.kind == "approval" and r.subject == "carol"]
    assert len(record.detail["proof"]["signature"]) == 64


async def test_a_row_inserted_straight_into_the_database_is_refused_at_execution(
    backend: Backend, store: QueueStore, keys: Keys, proofs: ApprovalProofs
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    # someone with write access to the database
    await backend.execute(
        "INSERT INTO approvals (action_id, subject, groups_json, approved_at, reason, fingerprint) "
        "VALUES (?, 'bob', '[\"sre\"]', '2026-01-05T09:00:01.000000Z', 'trust me', ?)",
        [parked.id, parked.fingerprint],
    )
    await backend.execute("UPDATE actions SET state = 'approved' WHERE id = ?", [parked.id])
    policy = Quorum()
    done = await run_executor(store, policy, proofs)
    assert done.state is ActionState.FAILED
    assert "approval by bob is not proven" in (done.error or "")
    assert "no signed statement" in (done.error or "")
    assert policy.executed == []


async def test_a_valid_signature_for_another_actions_fingerprint_is_refused(
    backend: Backend, store: QueueStore, clock: FakeClock, keys: Keys, proofs: ApprovalProofs
) -> None:
    reviewed = await store.park(scale_call(replicas=3), needs_approval(), ALICE)
    other = await store.park(scale_call(replicas=30), needs_approval(), ALICE)
    signed = signed_by(keys, "bob", reviewed, HTTP_BOB, clock)
    with pytest.raises(ProofRefused, match="action_id is not this action's"):
        await approve(store, Quorum(), other.id, HTTP_BOB, proofs=proofs, signed=signed, clock=clock)
    assert (await store.get(other.id)).approvals == ()

    # The same, copied into the database by hand with the gateway's own attestation.
    real = await approve(store, Quorum(), reviewed.id, HTTP_BOB, proofs=proofs, signed=signed, clock=clock)
    assert real.action.state is ActionState.APPROVED
    await backend.execute("UPDATE actions SET state = 'cancelled' WHERE id = ?", [reviewed.id])
    await backend.execute(
        "INSERT INTO approvals (action_id, subject, groups_json, approved_at, reason, fingerprint, "
        "statement, signature, attestation) SELECT ?, subject, groups_json, approved_at, reason, ?, "
        "statement, signature, attestation FROM approvals WHERE action_id = ?",
        [other.id, other.fingerprint, reviewed.id],
    )
    await backend.execute("UPDATE actions SET state = 'approved' WHERE id = ?", [other.id])
    policy = Quorum()
    done = await run_executor(store, policy, proofs)
    assert (done.id, done.state) == (other.id, ActionState.FAILED)
    assert "not this action's" in (done.error or "")
    assert policy.executed == []


async def test_a_key_revoked_after_approving_is_refused_at_execution(
    store: QueueStore, clock: FakeClock, keys: Keys, proofs: ApprovalProofs
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    signed = signed_by(keys, "bob", parked, HTTP_BOB, clock)
    await approve(store, Quorum(), parked.id, HTTP_BOB, proofs=proofs, signed=signed, clock=clock)
    keys.revoke("bob")
    policy = Quorum()
    done = await run_executor(store, policy, proofs)
    assert done.state is ActionState.FAILED
    assert "is revoked" in (done.error or "")
    assert policy.executed == []


async def test_a_key_removed_from_the_allowed_signers_no_longer_counts(
    store: QueueStore, clock: FakeClock, keys: Keys, proofs: ApprovalProofs
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    await approve(
        store,
        Quorum(),
        parked.id,
        HTTP_BOB,
        proofs=proofs,
        signed=signed_by(keys, "bob", parked, HTTP_BOB, clock),
        clock=clock,
    )
    keys.write("carol")
    done = await run_executor(store, Quorum(), proofs)
    assert done.state is ActionState.FAILED
    assert "not an allowed signer for bob" in (done.error or "")


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ("unknown key", "not an allowed signer for bob"),
        ("another approver's key", "not an allowed signer for bob"),
        ("malformed", "not an armored SSH signature"),
        ("truncated", "malformed"),
        ("other text", "does not match the statement"),
        ("replayed", "stale or replayed"),
        ("expired", "expired at"),
        ("for carol", "you are bob"),
        ("unsigned", "requires approvals signed"),
        ("not canonical", "canonical JSON"),
    ],
)
async def test_a_bad_signature_is_refused_naming_why_and_approves_nothing(
    store: QueueStore, clock: FakeClock, keys: Keys, proofs: ApprovalProofs, tamper: str, says: str
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    good = signed_by(keys, "bob", parked, HTTP_BOB, clock)
    offers: dict[str, Signed | None] = {
        "unknown key": signed_by(keys, "mallory", parked, HTTP_BOB, clock),
        "another approver's key": signed_by(keys, "carol", parked, HTTP_BOB, clock),
        "malformed": Signed(good.statement, "not a signature"),
        "truncated": Signed(good.statement, (good.signature or "")[:120] + "\n-----END SSH SIGNATURE-----\n"),
        "other text": Signed(good.statement, sign(good.statement + " ", keys.keys["bob"])),
        "replayed": signed_by(keys, "bob", parked, HTTP_BOB, clock, time="2026-01-05T08:50:00.000000Z"),
        "expired": signed_by(keys, "bob", parked, HTTP_BOB, clock, expires_at="2026-01-05T08:59:00.000000Z"),
        "for carol": signed_by(keys, "carol", parked, HTTP_CAROL, clock),
        "unsigned": None,
        "not canonical": Signed(good.statement.replace(",", ", ", 1), good.signature),
    }
    with pytest.raises(ApprovalRefused, match=says):
        await approve(store, Quorum(), parked.id, HTTP_BOB, proofs=proofs, signed=offers[tamper], clock=clock)
    assert (await store.get(parked.id)).approvals == ()


async def test_an_http_gateway_refuses_an_approval_written_with_local(
    store: QueueStore, clock: FakeClock, tmp_path: Path
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    local = ApprovalProofs()  # `gateway queue approve --local`: no API, no attestation
    approved = await approve(store, Quorum(), parked.id, BOB, proofs=local, clock=clock)
    assert approved.action.state is ActionState.APPROVED
    http = ApprovalProofs(
        attestor=Attestor.load_or_create(tmp_path / "attestation.key"), require_attestation=True
    )
    policy = Quorum()
    done = await run_executor(store, policy, http)
    assert done.state is ActionState.FAILED
    assert "not given through the gateway's API" in (done.error or "")
    assert policy.executed == []


async def test_an_attestation_by_another_gateway_key_is_refused(
    store: QueueStore, clock: FakeClock, tmp_path: Path
) -> None:
    parked = await store.park(scale_call(), needs_approval(), ALICE)
    forger = ApprovalProofs(
        attestor=Attestor.load_or_create(tmp_path / "forger.key"), require_attestation=True
    )
    await approve(store, Quorum(), parked.id, HTTP_BOB, proofs=forger, clock=clock)
    ours = ApprovalProofs(
        attestor=Attestor.load_or_create(tmp_path / "attestation.key"), require_attestation=True
    )
    done = await run_executor(store, Quorum(), ours)
    assert done.state is ActionState.FAILED
    assert "attestation does not verify" in (done.error or "")


def test_required_signatures_need_an_allowed_signers_file() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_ALLOWED_SIGNERS_FILE"):
        ApprovalProofs(require_signature=True)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("bob ssh-ed25519", "expected `principals"),
        ("bob ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA==", "not supported"),
        (
            f"bob cert-authority ssh-ed25519 {_KEY}",
            "cert-authority",
        ),
        (
            f'bob valid-before="tomorrow" ssh-ed25519 {_KEY}',
            "YYYYMMDD",
        ),
    ],
)
def test_a_malformed_allowed_signers_file_is_refused_naming_the_line(
    tmp_path: Path, line: str, says: str
) -> None:
    path = tmp_path / "allowed"
    path.write_text("# approvers\n\n" + line + "\n")
    with pytest.raises(ConfigError, match=f"line 3: .*{says}"):
        AllowedSigners(path)


def test_allowed_signers_options_patterns_and_namespaces(tmp_path: Path, keys: Keys) -> None:
    from datetime import UTC, datetime

    path = tmp_path / "allowed"
    bob = keys.public("bob")
    path.write_text(
        f'"*@example.com,!eve@example.com" valid-before="20260101" {bob}\ncarol namespaces="git" {bob}\n'
    )
    signers = AllowedSigners(path)
    text = '{"x":1}'
    signature = sign(text, keys.keys["bob"])
    early, late = datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    assert signers.verify(text, signature, principal="bob@example.com", at=early)
    with pytest.raises(ProofRefused, match="not an allowed signer for eve"):
        signers.verify(text, signature, principal="eve@example.com", at=early)
    with pytest.raises(ProofRefused, match="not valid at"):
        signers.verify(text, signature, principal="bob@example.com", at=late)
    with pytest.raises(ProofRefused, match="namespace"):
        signers.verify(text, signature, principal="carol", at=early)
