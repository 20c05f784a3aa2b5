"""``gateway queue --local``: the queue database itself, for a single-user stdio set-up.

The approver is the configured identity (``GATEWAY_SUBJECT`` / ``GATEWAY_GROUPS``), which
nothing authenticates: whoever can write the database file can claim to be anyone. That is
why a gateway serving HTTP refuses approvals written this way (they carry no attestation
from its API; see ``gateway.queue.proofs``), unless they are signed by the approver's key
and the gateway requires signatures, in which case the signature is the proof.
Returns the same JSON-ready shapes as the approvals API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.audit import format_time
from gateway.cli._signing import ssh_sign
from gateway.cli._storage import open_store, run
from gateway.contracts import Principal
from gateway.identity import cli_principal
from gateway.policy import PolicyClient
from gateway.ports import ActionState
from gateway.queue.approvals import Signed, approve
from gateway.queue.display import show_action
from gateway.queue.proofs import ApprovalProofs, ApprovalStatement
from gateway.queue.store import QueueStore
from gateway.settings import Settings

__all__ = ["LocalQueue"]


class LocalQueue:
    """The queue commands over the database ``settings`` name (``GATEWAY_DATABASE_URL`` or ``db_path``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.principal: Principal = cli_principal(settings)

    async def _store(self) -> QueueStore:
        return await open_store(self.settings)

    def list_actions(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        async def work() -> list[dict[str, Any]]:
            store = await self._store()
            try:
                rows = await store.list_actions(state=ActionState(state) if state else None, limit=limit)
            finally:
                await store.close()
            return [r.model_dump(mode="json") for r in rows]

        return run(work)

    def show(self, ref: str) -> dict[str, Any]:
        async def work() -> dict[str, Any]:
            store = await self._store()
            try:
                return await show_action(store, ref)
            finally:
                await store.close()

        return run(work)

    def approve(
        self, ref: str, reason: str | None, fingerprint: str | None, key: Path | None
    ) -> dict[str, Any]:
        approver = self.principal

        async def work() -> dict[str, Any]:
            store = await self._store()
            try:
                proofs = ApprovalProofs.from_settings(self.settings, local=True)
                full_id = await store.resolve(ref)
                signed = None
                if key is not None:
                    action = await store.get(full_id)
                    statement = ApprovalStatement.for_action(
                        action, approver.subject, approver.groups, format_time(store.now()), reason
                    ).text()
                    signed = Signed(statement, ssh_sign(statement, key))
                async with PolicyClient(self.settings) as policy:
                    result = await approve(
                        store,
                        policy,
                        full_id,
                        approver,
                        reason=reason,
                        expect_fingerprint=fingerprint,
                        proofs=proofs,
                        signed=signed,
                        clock=store.now,
                    )
            finally:
                await store.close()
            action = result.action
            return {
                "id": action.id,
                "state": action.state.value,
                "approver": approver.subject,
                "approvals": [a.model_dump(mode="json") for a in action.approvals],
                "decision": result.decision.model_dump(mode="json"),
                "missing": result.missing,
                "error": action.error,
                "denied_by": action.denied_by,
                "signed": signed is not None,
            }

        return run(work)

    def deny(self, ref: str, reason: str) -> dict[str, Any]:
        return self._decide(ref, reason, cancel=False)

    def cancel(self, ref: str, reason: str | None) -> dict[str, Any]:
        return self._decide(ref, reason, cancel=True)

    def _decide(self, ref: str, reason: str | None, *, cancel: bool) -> dict[str, Any]:
        who = self.principal

        async def work() -> dict[str, Any]:
            store = await self._store()
            try:
                full_id = await store.resolve(ref)
                if cancel:
                    action = await store.cancel(full_id, who, reason)
                else:
                    action = await store.deny(full_id, who, reason or "")
            finally:
                await store.close()
            return {"id": action.id, "state": action.state.value, "by": who.subject, "reason": reason}

        return run(work)
