"""Recorded decisions read back (``gateway.recording`` writes them): a window of time, one
tool or all, oldest first, a page at a time so memory stays flat at any size.

A row that no longer parses (edited or damaged outside the gateway) is returned as a
``CorruptRecord`` naming its sequence number and what is wrong, never raised: a replay
reports it as skipped and goes on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.contracts import Decision
from gateway.db import Database

__all__ = ["CorruptRecord", "DecisionRecords", "RecordSpan", "RecordWindow", "RecordedDecision"]

_COLUMNS: Final[str] = (
    "seq, decided_at, call_id, action_id, source, tool, subject, outcome, bundle_revision, "
    "decision_id, target_json, input_json, input_bytes, erased_json, decision_json"
)


@dataclass(frozen=True)
class RecordWindow:
    """Which records: ``since`` (inclusive) and ``until`` (exclusive) are fixed-width RFC 3339
    UTC times (``gateway.audit.format_time``); ``tool`` one tool's name."""

    since: str | None = None
    until: str | None = None
    tool: str | None = None

    def conditions(self) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("decided_at >= ?", self.since),
            ("decided_at < ?", self.until),
            ("tool = ?", self.tool),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        return where, params


class RecordedDecision(BaseModel):
    """One decision as recorded: ``input`` is what OPA received, with ``erased`` paths
    removed, or ``None`` when it was above the size limit."""

    model_config = ConfigDict(frozen=True)

    seq: int
    decided_at: str
    call_id: str | None
    action_id: str
    source: str
    tool: str
    subject: str
    bundle_revision: str | None
    decision_id: str | None
    target: dict[str, Any]
    input: dict[str, Any] | None
    input_bytes: int
    erased: list[str]
    decision: Decision


@dataclass(frozen=True)
class CorruptRecord:
    """A row that does not parse; ``reason`` says which column and how."""

    seq: int
    reason: str


@dataclass(frozen=True)
class RecordSpan:
    """How many records a window holds, and the oldest and newest decision times among them."""

    count: int
    oldest: str | None
    newest: str | None


class DecisionRecords:
    """Reads ``decision_records``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def span(self, window: RecordWindow | None = None) -> RecordSpan:
        where, params = (window or RecordWindow()).conditions()
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT count(*), min(decided_at), max(decided_at) FROM decision_records {clause}"  # noqa: S608
        async with self._db.read() as conn:
            row = await conn.fetchone(sql, params)
        count, oldest, newest = row if row is not None else (0, None, None)
        return RecordSpan(count=int(count), oldest=oldest, newest=newest)

    async def iterate(
        self, window: RecordWindow | None = None, *, page: int = 500
    ) -> AsyncIterator[RecordedDecision | CorruptRecord]:
        """Every record of ``window``, oldest first (by decision time, then sequence)."""
        where, params = (window or RecordWindow()).conditions()
        after: tuple[str, int] | None = None
        while True:
            keyset = ["(decided_at, seq) > (?, ?)"] if after is not None else []
            clause = " AND ".join([*where, *keyset])
            sql = (
                f"SELECT {_COLUMNS} FROM decision_records {'WHERE ' + clause if clause else ''} "  # noqa: S608
                "ORDER BY decided_at, seq LIMIT ?"
            )
            async with self._db.read() as conn:
                rows = await conn.fetchall(sql, [*params, *(after or ()), page])
            for raw in rows:
                yield parse_row(raw)
            if len(rows) < page:
                return
            after = (str(rows[-1][1]), int(rows[-1][0]))

    async def recent(
        self, window: RecordWindow | None = None, *, limit: int = 50
    ) -> list[RecordedDecision | CorruptRecord]:
        """The newest ``limit`` records of ``window``, newest first."""
        where, params = (window or RecordWindow()).conditions()
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {_COLUMNS} FROM decision_records {clause} ORDER BY decided_at DESC, seq DESC LIMIT ?"  # noqa: S608
        async with self._db.read() as conn:
            rows = await conn.fetchall(sql, [*params, limit])
        return [parse_row(raw) for raw in rows]


def parse_row(raw: tuple[Any, ...]) -> RecordedDecision | CorruptRecord:
    """A row of ``decision_records`` as a record, or what is wrong with it."""
    seq = int(raw[0])
    fields: dict[str, Any] = dict(
        zip(
            ("seq", "decided_at", "call_id", "action_id", "source", "tool", "subject"),
            raw[:7],
            strict=True,
        )
    )
    fields |= {"bundle_revision": raw[8], "decision_id": raw[9], "input_bytes": raw[12]}
    for name, index, kinds in (
        ("target", 10, (dict,)),
        ("input", 11, (dict, type(None))),
        ("erased", 13, (list,)),
        ("decision", 14, (dict,)),
    ):
        text = raw[index]
        try:
            value = json.loads(text) if text is not None else None
        except (TypeError, ValueError):
            return CorruptRecord(seq, f"{name} is not JSON")
        if not isinstance(value, kinds):
            return CorruptRecord(seq, f"{name} is not a JSON {kinds[0].__name__.replace('dict', 'object')}")
        fields[name] = value
    try:
        return RecordedDecision.model_validate(fields)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)[:3])
        return CorruptRecord(seq, f"unexpected value in {where}")
