"""Recorded decisions judged again by a candidate policy: the engine behind
``gateway policy replay``.

Each record of the window (``gateway.records``) is evaluated on an OPA serving the candidate
with the input exactly as recorded: the same principal, target, objects and time, and the
approvals it carried when it was a re-evaluation. The answer is compared
(``gateway.transitions``) with the decision recorded then, or, given a baseline policy, with
the baseline's answer to the same input (two bundles judged side by side, whatever was
serving when the records were made).

Throughput: records are read a page at a time and evaluated in batches, one OPA request per
batch (``PolicyClient.evaluate_batch``), ``concurrency`` batches in flight. A batch OPA
refuses as a whole is retried one input at a time, so one bad input costs only itself.

What the gateway would do with a candidate's answer decides the comparison: an undefined or
malformed decision is the fail-closed deny the gateway substitutes (counted as
``malformed``); an OPA that cannot answer at all is an error (``errors``), not a decision.
Records that cannot be replayed are skipped and counted: a row that no longer parses or
whose input no longer matches the proposed-action contract (``corrupt``), and one recorded
without its input because it was above the size limit (``no_input``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from gateway.contracts import Decision, ProposedAction
from gateway.decisions import fail_closed
from gateway.errors import MalformedDecision, PolicyError
from gateway.policy import PolicyClient
from gateway.records import CorruptRecord, DecisionRecords, RecordedDecision, RecordWindow
from gateway.transitions import Change, codes, compare

__all__ = ["ChangedAction", "ReplayOptions", "ReplayReport", "replay"]

_KEPT_CORRUPT: Final[int] = 20


@dataclass(frozen=True)
class ReplayOptions:
    batch_size: int = 50
    concurrency: int = 2


@dataclass(frozen=True)
class ChangedAction:
    """One recorded action the candidate decides differently."""

    record: RecordedDecision
    before: Decision
    after: Decision
    change: Change

    def summary(self) -> dict[str, Any]:
        principal = (self.record.input or {}).get("principal") or {}
        return {
            "seq": self.record.seq,
            "decided_at": self.record.decided_at,
            "call_id": self.record.call_id,
            "action_id": self.record.action_id,
            "source": self.record.source,
            "tool": self.record.tool,
            "target": self.record.target,
            "principal": {"subject": self.record.subject, "groups": list(principal.get("groups") or [])},
            "approvals": len((self.record.input or {}).get("approvals") or []),
            "transition": self.change.label,
            "before": _codes(self.before),
            "after": _codes(self.after),
        }


def _codes(decision: Decision) -> dict[str, Any]:
    """A decision as the report compares it: the outcome and the codes of each kind of finding."""
    return {
        "outcome": decision.outcome,
        "reasons": codes(decision.reasons),
        "warnings": codes(decision.warnings),
        "dryrun": codes(decision.dryrun),
    }


@dataclass
class ReplayReport:
    """What a replay found. ``changes`` is in decision order."""

    window: RecordWindow
    against: str  # "recorded" or "baseline"
    evaluated: int = 0
    unchanged: int = 0
    changes: list[ChangedAction] = field(default_factory=list)
    transitions: Counter[str] = field(default_factory=Counter)
    corrupt: int = 0
    corrupt_examples: list[CorruptRecord] = field(default_factory=list)
    no_input: int = 0
    masked: int = 0
    malformed: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    recorded_revisions: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return len(self.changes)

    @property
    def skipped(self) -> int:
        return self.corrupt + self.no_input

    def as_json(self) -> dict[str, Any]:
        return {
            "window": {"since": self.window.since, "until": self.window.until, "tool": self.window.tool},
            "against": self.against,
            "evaluated": self.evaluated,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "transitions": dict(sorted(self.transitions.items())),
            "skipped": {
                "corrupt": self.corrupt,
                "no_input": self.no_input,
                "corrupt_examples": [{"seq": c.seq, "reason": c.reason} for c in self.corrupt_examples],
            },
            "masked_inputs": self.masked,
            "malformed_decisions": self.malformed,
            "errors": self.errors,
            "error_examples": self.error_examples,
            "recorded_revisions": dict(sorted(self.recorded_revisions.items())),
            "seconds": round(self.seconds, 3),
            "changes": [c.summary() for c in self.changes],
        }


@dataclass(frozen=True)
class _Item:
    record: RecordedDecision
    action: ProposedAction


async def replay(
    records: DecisionRecords,
    window: RecordWindow,
    candidate: PolicyClient,
    *,
    baseline: PolicyClient | None = None,
    options: ReplayOptions | None = None,
) -> ReplayReport:
    """Judge every record of ``window`` with ``candidate`` (open clients) and report."""
    options = options or ReplayOptions()
    report = ReplayReport(window=window, against="baseline" if baseline is not None else "recorded")
    started = time.perf_counter()
    slots = asyncio.Semaphore(options.concurrency)
    batch: list[_Item] = []

    async def dispatch(items: list[_Item]) -> None:
        try:
            await _judge(items, candidate, baseline, report)
        finally:
            slots.release()

    async with asyncio.TaskGroup() as tasks:
        async for row in records.iterate(window):
            item = _replayable(row, report)
            if item is None:
                continue
            batch.append(item)
            if len(batch) >= options.batch_size:
                await slots.acquire()
                tasks.create_task(dispatch(batch))
                batch = []
        if batch:
            await slots.acquire()
            tasks.create_task(dispatch(batch))
    report.changes.sort(key=lambda c: (c.record.decided_at, c.record.seq))
    report.seconds = time.perf_counter() - started
    return report


def _replayable(row: RecordedDecision | CorruptRecord, report: ReplayReport) -> _Item | None:
    if isinstance(row, CorruptRecord):
        _corrupt(report, row)
        return None
    if row.input is None:
        report.no_input += 1
        return None
    try:
        action = ProposedAction.model_validate(row.input)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)[:3])
        _corrupt(report, CorruptRecord(row.seq, f"input is not a proposed action ({where})"))
        return None
    report.masked += bool(row.erased)
    report.recorded_revisions[row.bundle_revision or "(none)"] += 1
    return _Item(row, action)


def _corrupt(report: ReplayReport, row: CorruptRecord) -> None:
    report.corrupt += 1
    if len(report.corrupt_examples) < _KEPT_CORRUPT:
        report.corrupt_examples.append(row)


async def _judge(
    items: Sequence[_Item], candidate: PolicyClient, baseline: PolicyClient | None, report: ReplayReport
) -> None:
    if baseline is None:
        after = await _answers(candidate, items, report)
        before: list[Decision | None] = [item.record.decision for item in items]
    else:
        before, after = await asyncio.gather(
            _answers(baseline, items, report), _answers(candidate, items, report)
        )
    for item, old, new in zip(items, before, after, strict=True):
        if old is None or new is None:
            continue  # an error, already counted
        report.evaluated += 1
        change = compare(old, new)
        if change is None:
            report.unchanged += 1
        else:
            report.transitions[change.label] += 1
            report.changes.append(ChangedAction(item.record, old, new, change))


async def _answers(
    client: PolicyClient, items: Sequence[_Item], report: ReplayReport
) -> list[Decision | None]:
    """What the gateway would act on for each item; ``None`` where OPA could not answer."""
    try:
        results: Sequence[Decision | PolicyError | None] = await client.evaluate_batch(
            [item.record.input or {} for item in items]
        )
    except PolicyError:
        results = [await _single(client, item, report) for item in items]
    return [_acted_on(result, report) for result in results]


async def _single(client: PolicyClient, item: _Item, report: ReplayReport) -> Decision | PolicyError | None:
    try:
        return await client.evaluate(item.action)
    except MalformedDecision as exc:
        return exc
    except PolicyError as exc:
        report.errors += 1
        if len(report.error_examples) < _KEPT_CORRUPT:
            report.error_examples.append(f"record {item.record.seq} ({item.record.tool}): {exc}")
        return None


def _acted_on(result: Decision | PolicyError | None, report: ReplayReport) -> Decision | None:
    if isinstance(result, PolicyError):
        report.malformed += 1
        return fail_closed(result.code, str(result))
    return result
