"""What makes an approval more than a row in a database: a signed statement.

An approval is the statement ``{v, action_id, fingerprint, bundle_revision, decision_id,
approver, groups, time, expires_at, reason}`` in canonical JSON, carrying up to two proofs:

- the approver's **SSH signature** over it (``gateway.signers``), which only the holder of a
  key listed for that approver in the allowed signers file can make;
- the gateway's **attestation**, an Ed25519 signature by the gateway's own key, which the
  approvals API adds after it authenticated the approver (token or OIDC) and took the
  groups from that credential. Approvals written straight into the database (``gateway
  queue --local``, or by anyone who can write the file) have none.

``ApprovalProofs`` decides what an approval must carry: an attestation whenever the
gateway serves HTTP with authentication, a signature when ``GATEWAY_APPROVAL_SIGNATURES``
is ``required``. The executor checks every approval of an action with it right before the
action runs, and policy is re-asked with the approvals *as the proofs state them* (subject,
groups, time), never with what other columns of the row say.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.contracts import Approval, canonical_json
from gateway.errors import ConfigError, ProofRefused
from gateway.ports import ParkedAction
from gateway.queue.sealing import publish_new_file
from gateway.settings import Settings
from gateway.signers import AllowedSigners

__all__ = [
    "ApprovalProofs",
    "ApprovalStatement",
    "Attestor",
    "ProofReport",
    "StoredApproval",
    "parse_time",
    "proof_digests",
    "recheck_proofs",
]

_ATTESTATION_PREFIX: Final[str] = "ed25519:"
_MAX_STATEMENT_CHARS: Final[int] = 16_384


def parse_time(stamp: str) -> datetime:
    """The gateway's RFC 3339 UTC stamps (``format_time``) as aware datetimes."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def proof_digests(*parts: str | None) -> dict[str, str | None]:
    """SHA-256 of an approval's statement, signature and attestation, for its audit record:
    the chain then vouches for the proofs the approvals table keeps."""
    names = ("statement", "signature", "attestation")
    return {
        name: hashlib.sha256(part.encode("utf-8")).hexdigest() if part is not None else None
        for name, part in zip(names, parts, strict=True)
    }


class ApprovalStatement(BaseModel):
    """What an approver approves, and what their signature covers (canonical JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    v: Literal[1] = 1
    action_id: Annotated[str, Field(min_length=1, max_length=64)]
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    bundle_revision: str | None
    decision_id: str | None
    approver: Annotated[str, Field(min_length=1, max_length=256)]
    groups: tuple[str, ...]
    time: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")]
    expires_at: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")]
    reason: Annotated[str, Field(max_length=2000)] | None = None

    @classmethod
    def for_action(
        cls, action: ParkedAction, approver: str, groups: tuple[str, ...], now: str, reason: str | None
    ) -> ApprovalStatement:
        return cls(
            action_id=action.id,
            fingerprint=action.fingerprint,
            bundle_revision=action.decision.bundle_revision,
            decision_id=action.decision.decision_id,
            approver=approver,
            groups=tuple(groups),
            time=now,
            expires_at=action.expires_at,
            reason=reason,
        )

    def text(self) -> str:
        """The exact bytes (UTF-8) that are signed."""
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def parse(cls, text: str) -> ApprovalStatement:
        """The statement in ``text``, which must be its canonical form: what is signed is
        exactly what is read. Raises ``ProofRefused``."""
        if len(text) > _MAX_STATEMENT_CHARS:
            raise ProofRefused("the approval statement is too long")
        try:
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("groups"), list):
                data["groups"] = tuple(data["groups"])
            statement = cls.model_validate(data)
        except (ValueError, ValidationError) as exc:
            raise ProofRefused("the approval statement is malformed (not the statement's JSON)") from exc
        if statement.text() != text:
            raise ProofRefused("the approval statement is not in canonical JSON form")
        return statement

    def approval(self) -> Approval:
        """What policy sees of this approval."""
        return Approval(subject=self.approver, groups=self.groups, approved_at=self.time, reason=self.reason)


@dataclass(frozen=True)
class StoredApproval:
    """One row of the ``approvals`` table with its proofs (``None`` where absent)."""

    subject: str
    groups: tuple[str, ...]
    approved_at: str
    reason: str | None
    fingerprint: str
    statement: str | None
    signature: str | None
    attestation: str | None


class Attestor:
    """The gateway's Ed25519 key: attests that an approval came through the authenticated API."""

    def __init__(self, key: ed25519.Ed25519PrivateKey, path: Path | None = None) -> None:
        self._key = key
        self._public = key.public_key()
        self.path = path

    @classmethod
    def load_or_create(cls, path: Path) -> Attestor:
        """The key in ``path`` (PEM, PKCS#8), created 0600 when the file does not exist."""
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
                    Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
                )
                publish_new_file(path, pem)  # another replica's, if it published first
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot use the attestation key {path}: not an Ed25519 PEM key") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"the attestation key {path} is not an Ed25519 key")
        return cls(key, path)

    @classmethod
    def load(cls, path: Path) -> Attestor | None:
        """The key in ``path``, or ``None`` when there is none (nothing is created)."""
        return cls.load_or_create(path) if path.exists() else None

    def public_key(self) -> str:
        return self._public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()

    def attest(self, statement: str) -> str:
        signature = self._key.sign(b"policy-gateway-attestation\n" + statement.encode("utf-8"))
        return _ATTESTATION_PREFIX + base64.b64encode(signature).decode()

    def verify(self, statement: str, attestation: str) -> None:
        """Raises ``ProofRefused`` unless ``attestation`` is this gateway's over ``statement``."""
        if not attestation.startswith(_ATTESTATION_PREFIX):
            raise ProofRefused("the gateway attestation is malformed")
        try:
            raw = base64.b64decode(attestation[len(_ATTESTATION_PREFIX) :], validate=True)
            self._public.verify(raw, b"policy-gateway-attestation\n" + statement.encode("utf-8"))
        except (ValueError, InvalidSignature) as exc:
            raise ProofRefused(
                "the gateway attestation does not verify: the approval was not given through this "
                "gateway's API (written into the database?)"
            ) from exc


class ApprovalProofs:
    """Which proofs an approval must carry, and checking them.

    ``attestation`` required: the gateway serves HTTP with authentication, so every approval
    must have come through the approvals API. ``signature`` required: every approval must
    be signed by the approver's key (``signers`` then must be set). A proof that is present
    is always checked, required or not.
    """

    def __init__(
        self,
        *,
        signers: AllowedSigners | None = None,
        attestor: Attestor | None = None,
        require_signature: bool = False,
        require_attestation: bool = False,
        clock_skew_seconds: float = 300.0,
    ) -> None:
        if require_signature and signers is None:
            raise ConfigError(
                "GATEWAY_APPROVAL_SIGNATURES=required needs GATEWAY_ALLOWED_SIGNERS_FILE "
                "(principals and their SSH public keys)"
            )
        if require_attestation and attestor is None:
            raise ConfigError("approvals through the API need the gateway's attestation key")
        self.signers = signers
        self.attestor = attestor
        self.require_signature = require_signature
        self.require_attestation = require_attestation
        self.skew = timedelta(seconds=clock_skew_seconds)

    @classmethod
    def from_settings(cls, settings: Settings, *, local: bool = False) -> ApprovalProofs:
        """What the gateway requires (``local``: what ``gateway queue --local`` can do, without
        the gateway's attestation key). An HTTP gateway requires attestations: approvals come
        through its authenticated API, never straight from the database."""
        signers = None
        if settings.allowed_signers_file is not None:
            signers = AllowedSigners(settings.allowed_signers_file, settings.revoked_signers_file)
        http = settings.transport == "http" and not local
        attestor = None
        if http:
            attestor = Attestor.load_or_create(
                settings.data_file(settings.attestation_key_file, "attestation.key")
            )
        return cls(
            signers=signers,
            attestor=attestor,
            require_signature=settings.approval_signatures == "required",
            require_attestation=http,
            clock_skew_seconds=settings.approval_clock_skew_seconds,
        )

    @property
    def strict(self) -> bool:
        """Whether an approval without any proof can count at all."""
        return self.require_signature or self.require_attestation

    def check_new(
        self, statement: ApprovalStatement, signature: str | None, action: ParkedAction, now: datetime
    ) -> None:
        """A statement offered now for ``action``: fresh (within the clock skew of ``now``,
        so an old signed statement cannot be replayed later), bound to this exact call and
        decision, and signed if signatures are required. Raises ``ProofRefused``."""
        self._bound(statement, action, now)
        made = parse_time(statement.time)
        if abs(made - now) > self.skew:
            raise ProofRefused(
                f"the statement was made at {statement.time}, more than {self.skew.total_seconds():g}s "
                "from now: it is stale or replayed; sign a fresh one"
            )
        self._signature(statement, signature)

    def verified(
        self, action: ParkedAction, rows: list[StoredApproval], now: datetime
    ) -> tuple[Approval, ...]:
        """The approvals policy may count, each proven as required. Raises ``ProofRefused``
        naming the first approval that is not: one forged row refuses the whole action."""
        approvals = []
        for row in sorted(rows, key=lambda r: (r.approved_at, r.subject)):
            try:
                approvals.append(self._verify_row(action, row, now))
            except ProofRefused as exc:
                raise ProofRefused(f"the approval by {row.subject} is not proven: {exc}") from exc
        return tuple(approvals)

    def _verify_row(self, action: ParkedAction, row: StoredApproval, now: datetime) -> Approval:
        if row.statement is None:
            if self.strict:
                raise ProofRefused("it carries no signed statement (written into the database directly?)")
            return Approval(
                subject=row.subject, groups=row.groups, approved_at=row.approved_at, reason=row.reason
            )
        statement = ApprovalStatement.parse(row.statement)
        if statement.approver != row.subject:
            raise ProofRefused(f"its statement names {statement.approver}, not {row.subject}")
        self._bound(statement, action, now)
        self._signature(statement, row.signature)
        if row.attestation is not None or self.require_attestation:
            if self.attestor is None:
                raise ProofRefused("this gateway has no attestation key to check it with")
            if row.attestation is None:
                raise ProofRefused("it was not given through the gateway's API (no attestation)")
            self.attestor.verify(row.statement, row.attestation)
        return statement.approval()

    def _bound(self, statement: ApprovalStatement, action: ParkedAction, now: datetime) -> None:
        expected: dict[str, Any] = {
            "action_id": action.id,
            "fingerprint": action.fingerprint,
            "bundle_revision": action.decision.bundle_revision,
            "decision_id": action.decision.decision_id,
        }
        for name, value in expected.items():
            if getattr(statement, name) != value:
                raise ProofRefused(f"the statement's {name} is not this action's (approved another call?)")
        if action.call.fingerprint() != statement.fingerprint:
            raise ProofRefused("the stored call no longer hashes to the fingerprint that was approved")
        if statement.expires_at > action.expires_at:
            raise ProofRefused("the statement outlives the action it approves")
        if parse_time(statement.expires_at) <= now:
            raise ProofRefused(f"the statement expired at {statement.expires_at}")
        if parse_time(statement.time) > now + self.skew:
            raise ProofRefused(f"the statement is dated in the future ({statement.time})")

    def _signature(self, statement: ApprovalStatement, signature: str | None) -> None:
        if signature is None:
            if self.require_signature:
                raise ProofRefused(
                    "this gateway requires approvals signed with the approver's SSH key "
                    "(gateway queue approve --key, or GATEWAY_SIGNING_KEY)"
                )
            return
        if self.signers is None:
            raise ProofRefused("the approval is signed but no allowed signers file is configured to check it")
        self.signers.verify(
            statement.text(), signature, principal=statement.approver, at=parse_time(statement.time)
        )


@dataclass
class ProofReport:
    """What ``gateway audit verify`` found about the approvals' proofs."""

    approvals: int = 0
    signatures: int = 0
    attestations: int = 0
    unproven: int = 0
    unchecked: int = 0
    problems: list[str] = field(default_factory=list)


def recheck_proofs(
    rows: list[tuple[str, StoredApproval]],
    chained: dict[tuple[str, str], dict[str, Any]],
    *,
    signers: AllowedSigners | None,
    attestor: Attestor | None,
) -> ProofReport:
    """Re-verify every stored approval's proofs, offline: each signature against the allowed
    (and revoked) signers as they are now, each attestation against the gateway's key, and
    each proof against the digests its audit record chained (``chained``: the ``proof`` detail
    of the approval records, by action id and approver)."""
    report = ProofReport()
    for action_id, row in rows:
        report.approvals += 1
        where = f"approval of {action_id} by {row.subject}"
        digests = chained.get((action_id, row.subject))
        if digests is not None and digests != proof_digests(row.statement, row.signature, row.attestation):
            report.problems.append(f"{where}: its proofs differ from what the audit chain recorded")
            continue
        if row.statement is None:
            report.unproven += 1
            continue
        if digests is None:
            report.problems.append(f"{where}: no audit record vouches for it (inserted afterwards?)")
            continue
        try:
            _recheck(action_id, row, signers, attestor, report)
        except ProofRefused as exc:
            report.problems.append(f"{where}: {exc}")
    return report


def _recheck(
    action_id: str,
    row: StoredApproval,
    signers: AllowedSigners | None,
    attestor: Attestor | None,
    report: ProofReport,
) -> None:
    statement = ApprovalStatement.parse(row.statement or "")
    if (statement.action_id, statement.approver) != (action_id, row.subject):
        raise ProofRefused("its statement names another action or approver")
    if row.signature is not None:
        if signers is None:
            report.unchecked += 1
        else:
            made = parse_time(statement.time)
            signers.verify(statement.text(), row.signature, principal=row.subject, at=made)
            report.signatures += 1
    if row.attestation is not None:
        if attestor is None:
            report.unchecked += 1
        else:
            attestor.verify(statement.text(), row.attestation)
            report.attestations += 1
