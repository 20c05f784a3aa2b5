"""The audit log: an append-only, hash-chained table in the gateway database.

Every row carries ``hash = sha256(prev_hash ‖ canonical_json(record))`` where ``record``
is the row without its two hash columns, so editing, inserting or deleting a row in the
middle breaks the chain from that row on; ``verify`` names the first row that does not
match.

Hash formats (the ``hash_format`` column): 2, written now, is RFC 8785 canonical JSON of
every column but ``prev_hash`` and ``hash`` (``hash_format`` included, so a row cannot be
relabelled), which any JCS library recomputes (docs/hashes.md). 1 is the format before
RFC 8785 (Python's ``json.dumps`` with sorted keys, without the ``hash_format`` column):
rows written in it keep verifying as they were written, and a chain never goes back from
2 to 1. Appends are serialised by the database: each takes ``lock_named("audit")`` before
it reads the head and holds it until its transaction commits (SQLite: the single write
lock of ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory lock), so two
processes or replicas appending at once queue up and the chain never forks.

Secrets never enter it: events carry targets, reason codes and messages, identifiers and
fingerprints; ``detail`` is scrubbed (secret-looking keys and values dropped, long strings
truncated) before it is chained.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from gateway.contracts import canonical_json, canonical_json_v1
from gateway.db import BlockingConnection, Connection, Database
from gateway.errors import AuditError, ChainBroken, DatabaseError
from gateway.ports import AuditEvent

__all__ = ["GENESIS_HASH", "HASH_FORMAT", "AuditLog", "AuditRecord", "ChainReport", "format_time", "scrub"]

GENESIS_HASH: Final[str] = "0" * 64
HASH_FORMAT: Final[int] = 2
"""The hash format of the rows this version writes (see the module docstring)."""
_CANONICAL: Final[dict[int, Callable[[Any], str]]] = {1: canonical_json_v1, 2: canonical_json}
_MAX_STRING: Final[int] = 512
_MAX_DEPTH: Final[int] = 6
_MAX_ITEMS: Final[int] = 50
_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|credential|authorization|cookie|private[-_]?key|"
    r"kubeconfig|stringdata|^data$|certificate[-_]?data|client[-_]?key)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----|^bearer\s|^basic\s|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.|AKIA[0-9A-Z]{16})",
    re.IGNORECASE,
)
# A long token mixing upper case, lower case and digits looks like a key. Kubernetes names
# (lower case) and hex digests (fingerprints) do not, and are kept.
_OPAQUE_TOKEN = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])[A-Za-z0-9+/=_-]{32,}$")
_DROPPED: Final[str] = "<dropped>"
_SAFE_INT: Final[int] = 2**53 - 1

_COLUMNS: Final[str] = (
    "seq, time, kind, action_id, tool, subject, transport, target, outcome, reasons, "
    "bundle_revision, decision_id, fingerprint, detail, prev_hash, hash, hash_format"
)
_JSON_FIELDS: Final[tuple[str, ...]] = ("target", "reasons", "detail")
# Events committed together at most (group commit).
_GROUP: Final[int] = 64
_HEAD: Final[str] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
_INSERT: Final[str] = f"INSERT INTO audit ({_COLUMNS}) VALUES ({', '.join('?' * 17)})"  # noqa: S608 - constants


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC, fixed width (so text order is time order), as ``utc_now`` writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _system_clock() -> datetime:
    return datetime.now(UTC)


def scrub(value: Any, *, depth: int = 0) -> Any:
    """``value`` made safe to keep forever: secret-looking keys and string values are
    replaced by ``<dropped>``, long strings truncated, deep or wide structures cut."""
    if depth > _MAX_DEPTH:
        return _DROPPED
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in list(value.items())[:_MAX_ITEMS]:
            name = str(key)[:_MAX_STRING]
            out[name] = _DROPPED if _SECRET_KEY.search(name) else scrub(item, depth=depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [scrub(item, depth=depth + 1) for item in list(value)[:_MAX_ITEMS]]
    if isinstance(value, str):
        if _SECRET_VALUE.search(value) or _OPAQUE_TOKEN.match(value):
            return _DROPPED
        return value if len(value) <= _MAX_STRING else value[:_MAX_STRING] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities have no JSON form; the record keeps their name
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INT:
        return str(value)  # beyond what JSON numbers carry exactly
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value), depth=depth)


class AuditRecord(BaseModel):
    """One chained row."""

    model_config = ConfigDict(frozen=True)

    seq: int
    time: str
    kind: str
    action_id: str | None
    tool: str | None
    subject: str | None
    transport: str | None
    target: dict[str, Any]
    outcome: str | None
    reasons: list[dict[str, Any]]
    bundle_revision: str | None
    decision_id: str | None
    fingerprint: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str
    hash_format: int = HASH_FORMAT

    def chained(self) -> dict[str, Any]:
        """The record the hash covers: every column but ``prev_hash`` and ``hash`` (and,
        in format 1, ``hash_format``, which did not exist then)."""
        skipped = {"prev_hash", "hash"} if self.hash_format >= 2 else {"prev_hash", "hash", "hash_format"}
        return self.model_dump(exclude=skipped)


class ChainReport(BaseModel):
    """What ``verify`` found: the row count and the head hash of an intact chain."""

    model_config = ConfigDict(frozen=True)

    rows: int
    head: str


def _chain_hash(prev_hash: str, record: dict[str, Any], hash_format: int = HASH_FORMAT) -> str:
    text = _CANONICAL[hash_format](record)
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


class AuditLog:
    """``gateway.ports.AuditSink`` over the ``audit`` table, plus reading and verifying."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _system_clock) -> None:
        self._db = db
        self._clock = clock
        # Group commit (SQLite): events waiting for the next transaction, and its writer.
        self._waiting: list[tuple[AuditEvent, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, event: AuditEvent) -> None:
        """Append ``event`` as the next row of the chain and return once it is committed.

        On SQLite the rows of concurrent callers are committed together (group commit):
        one transaction, in one trip to the database's thread (``Database.write_blocking``),
        for every event that arrived while the previous one was being written; if that
        transaction fails, each of its events is tried again on its own, so one event's
        failure is never another's. Elsewhere (PostgreSQL) through ``append``, one
        transaction per event. Raises ``AuditError``; a caller cancelled after handing its
        event over does not withdraw it.
        """
        if not self._db.blocking_writes:
            try:
                async with self._db.write() as conn:
                    await self.append(conn, event)
            except DatabaseError as exc:
                raise AuditError(f"could not write the audit log: {exc}") from exc
            return
        committed = asyncio.get_running_loop().create_future()
        self._waiting.append((event, committed))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        await committed

    async def _write_waiting(self) -> None:
        """Commit what is waiting, a group at a time, until nothing is."""
        group: list[tuple[AuditEvent, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:_GROUP], self._waiting[_GROUP:]
                failure = await self._commit([event for event, _ in group])
                if failure is not None and len(group) > 1:
                    for event, committed in group:  # each on its own: whose event failed?
                        _settle(committed, await self._commit([event]))
                    continue
                for _, committed in group:
                    _settle(committed, failure)
        finally:
            # Cancelled (the loop is closing): nobody may wait forever for a commit, and
            # a commit that cannot be confirmed is reported as failed (nothing then runs).
            for _, committed in group + self._waiting:
                _settle(committed, DatabaseError("the audit writer stopped"))
            self._waiting = []

    async def _commit(self, events: list[AuditEvent]) -> DatabaseError | None:
        """Append ``events`` in one transaction; the failure if it did not commit."""
        try:
            await self._db.write_blocking(functools.partial(self._append_group, events))
        except DatabaseError as exc:
            return exc
        return None

    async def append(self, conn: Connection, event: AuditEvent) -> AuditRecord:
        """Append inside a write transaction the caller holds (``Database.write``), so a
        queue transition and its audit row commit or roll back together."""
        await conn.lock_named("audit")
        row, values = self._next(await conn.fetchone(_HEAD), event)
        await conn.execute(_INSERT, values)
        return row

    def _append_group(self, events: list[AuditEvent], conn: BlockingConnection) -> None:
        # The same statements as ``append``, on the database's thread, for each event in
        # turn (SQLite: the write lock of its BEGIN IMMEDIATE already serialises appends).
        head = conn.fetchone(_HEAD)
        for event in events:
            row, values = self._next(head, event)
            conn.execute(_INSERT, values)
            head = (row.seq, row.hash)

    def _next(self, head: tuple[Any, ...] | None, event: AuditEvent) -> tuple[AuditRecord, list[Any]]:
        """The row that follows ``head`` (``(seq, hash)`` of the newest row, None for an
        empty log) for ``event``, and its column values."""
        seq, prev_hash = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS_HASH)
        fields = {
            "seq": seq,
            "time": format_time(self._clock()),
            "kind": event.kind,
            "action_id": event.action_id,
            "tool": event.tool,
            "subject": event.subject,
            "transport": event.transport,
            "target": scrub(event.target),
            "outcome": event.outcome,
            "reasons": scrub(event.reasons),
            "bundle_revision": event.bundle_revision,
            "decision_id": event.decision_id,
            "fingerprint": event.fingerprint,
            "detail": scrub(event.detail),
            "hash_format": HASH_FORMAT,
        }
        row = AuditRecord(**fields, prev_hash=prev_hash, hash=_chain_hash(prev_hash, fields))
        values = [canonical_json(v) if k in _JSON_FIELDS else v for k, v in row.model_dump().items()]
        return row, values

    async def recent(self, *, limit: int = 50, action_id: str | None = None) -> list[AuditRecord]:
        """The newest ``limit`` rows (of one action if given), newest first."""
        where, params = ("WHERE action_id = ?", [action_id]) if action_id else ("", [])
        sql = f"SELECT {_COLUMNS} FROM audit {where} ORDER BY seq DESC LIMIT ?"  # noqa: S608 - constants
        async with self._db.read() as conn:
            rows = await conn.fetchall(sql, [*params, limit])
        return [_parse(r)[0] for r in rows]

    async def get(self, seq: int) -> AuditRecord | None:
        async with self._db.read() as conn:
            sql = f"SELECT {_COLUMNS} FROM audit WHERE seq = ?"  # noqa: S608 - constants
            rows = await conn.fetchall(sql, [seq])
        return _parse(rows[0])[0] if rows else None

    async def iterate(self, *, batch: int = 1000, after: int = 0) -> AsyncIterator[AuditRecord]:
        """Every row in chain order (those after sequence number ``after``), read in
        batches so memory stays flat."""
        async for record, _ in self._iterate_raw(batch=batch, after=after):
            yield record

    async def _iterate_raw(self, *, batch: int, after: int = 0) -> AsyncIterator[tuple[AuditRecord, bool]]:
        while True:
            async with self._db.read() as conn:
                sql = f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608
                rows = await conn.fetchall(sql, [after, batch])
            for raw in rows:
                yield _parse(raw)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    async def verify(self) -> ChainReport:
        """Recompute the chain. Raises ``ChainBroken`` naming the first row whose sequence,
        link or hash does not match."""
        expected_seq, prev_hash, count, newest_format = 1, GENESIS_HASH, 0, 1
        try:
            async for record, canonical in self._iterate_raw(batch=1000):
                if record.seq != expected_seq:
                    raise ChainBroken(
                        f"audit row {expected_seq} is missing (next row is {record.seq})", seq=expected_seq
                    )
                if record.hash_format not in _CANONICAL or record.hash_format < newest_format:
                    raise ChainBroken(
                        f"audit row {record.seq} claims hash format {record.hash_format} after rows "
                        f"in format {newest_format}",
                        seq=record.seq,
                    )
                if not canonical:
                    raise ChainBroken(f"audit row {record.seq} holds JSON that was rewritten", seq=record.seq)
                if record.prev_hash != prev_hash:
                    raise ChainBroken(
                        f"audit row {record.seq} does not link to the row before it", seq=record.seq
                    )
                if _chain_hash(prev_hash, record.chained(), record.hash_format) != record.hash:
                    raise ChainBroken(f"audit row {record.seq} was modified", seq=record.seq)
                expected_seq, prev_hash, count = expected_seq + 1, record.hash, count + 1
                newest_format = record.hash_format
        except _Unreadable as exc:
            raise ChainBroken(f"audit row {exc.seq} cannot be read: {exc}", seq=exc.seq) from exc
        except DatabaseError as exc:
            raise AuditError(f"could not read the audit log: {exc}") from exc
        return ChainReport(rows=count, head=prev_hash)


def _settle(committed: asyncio.Future[None], failure: DatabaseError | None) -> None:
    if committed.done():  # its caller was cancelled; the event was written (or not) anyway
        return
    if failure is None:
        committed.set_result(None)
    else:
        error = AuditError(f"could not write the audit log: {failure}")
        error.__cause__ = failure
        committed.set_exception(error)


class _Unreadable(ValueError):
    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


def _parse(raw: tuple[Any, ...]) -> tuple[AuditRecord, bool]:
    """A row as a record, and whether its JSON columns are in canonical form (an edit
    that only reformats JSON changes no hashed value, but is still an edit)."""
    names = [c.strip() for c in _COLUMNS.split(",")]
    values = dict(zip(names, raw, strict=True))
    canonical = True
    encode = _CANONICAL.get(values["hash_format"], canonical_json)
    for name in _JSON_FIELDS:
        text = values[name]
        try:
            values[name] = json.loads(text)
            canonical = canonical and encode(values[name]) == text
        except (TypeError, ValueError) as exc:
            raise _Unreadable(f"column {name} is not JSON", seq=int(values["seq"])) from exc
    try:
        return AuditRecord(**values), canonical
    except ValueError as exc:
        raise _Unreadable("a column has the wrong type", seq=int(values["seq"])) from exc
