"""`gateway policy` commands: replay recorded decisions against a candidate bundle, and list
what was recorded (docs/changing-policy.md).

``replay`` exits 0 when the candidate decides every replayed action as recorded (or as the
baseline does), 1 when something changed, 2 on any error: a candidate or baseline that is
not a bundle, does not build or load, or whose signature does not verify; no records in the
window; a database that cannot be read; an OPA that stopped answering. It only reads the
database and starts its own OPA processes on free loopback ports: nothing served changes.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from gateway.audit import format_time
from gateway.cli._storage import DbOption, JsonOption, echo_json, settings
from gateway.contracts import Decision
from gateway.db import Database
from gateway.errors import ConfigError, GatewayError
from gateway.local.candidate import prepare_candidate, serve_candidate
from gateway.policy import PolicyClient
from gateway.records import CorruptRecord, DecisionRecords, RecordedDecision, RecordSpan, RecordWindow
from gateway.replay import ChangedAction, ReplayOptions, ReplayReport, replay
from gateway.settings import Settings
from gateway.transitions import codes

__all__ = ["register"]

T = TypeVar("T")

EXIT_UNCHANGED, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_REPLAY_TIMEOUT_SECONDS = 30.0

app = typer.Typer(
    help="Change policy without fear: replay recorded decisions against a candidate bundle.",
    no_args_is_help=True,
)

SinceOption = Annotated[
    str,
    typer.Option(
        help="Start of the window: a duration back from now (30m, 12h, 7d, 2w) or an RFC 3339 time."
    ),
]
UntilOption = Annotated[
    str | None, typer.Option(help="End of the window (exclusive), same forms as --since [default: now].")
]
ToolOption = Annotated[str | None, typer.Option("--tool", help="Only decisions about this tool.")]


def parse_moment(text: str, now: datetime) -> str:
    """``7d`` (back from ``now``) or an RFC 3339 time, as a fixed-width UTC time."""
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match:
        return format_time(now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))}))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is neither a duration (30m, 12h, 7d, 2w) nor an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment)


def _window(since: str, until: str | None, tool: str | None) -> RecordWindow:
    now = datetime.now(UTC)
    window = RecordWindow(
        since=parse_moment(since, now),
        until=parse_moment(until, now) if until else format_time(now),
        tool=tool,
    )
    if window.since is not None and window.until is not None and window.since >= window.until:
        raise ConfigError(f"the window is empty: --since {since} is not before --until {until or 'now'}")
    return window


def _errors_exit(work: Callable[[], T]) -> T:
    """``work()``; any gateway error (or bad setting) is exit 2 with its message."""
    try:
        return work()
    except GatewayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from exc


def _run(work: Callable[[], Awaitable[T]]) -> T:
    async def call() -> T:
        return await work()

    return asyncio.run(call())


async def _open(config: Settings) -> Database:
    if config.database_url is None and not await asyncio.to_thread(config.db_path.is_file):
        raise ConfigError(f"no gateway database at {config.db_path} (set GATEWAY_DB_PATH or pass --db)")
    return await Database.open(
        config.database(),
        require_schema=True,
        pool_size=2,
        connect_timeout_seconds=config.database_connect_timeout_seconds,
    )


async def _span(config: Settings, window: RecordWindow) -> tuple[RecordSpan, RecordSpan]:
    db = await _open(config)
    try:
        records = DecisionRecords(db)
        return await records.span(window), await records.span()
    finally:
        await db.close()


@app.command("replay")
def replay_command(
    bundle: Annotated[
        Path,
        typer.Option(
            "--bundle", help="The candidate: a bundle (.tar.gz, opa build output) or a policy directory."
        ),
    ],
    since: SinceOption = "7d",
    until: UntilOption = None,
    tool: ToolOption = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="Compare with this bundle's decisions instead of the recorded ones."),
    ] = None,
    verification_key: Annotated[
        Path | None, typer.Option("--verification-key", help="Public key that verifies a signed candidate.")
    ] = None,
    baseline_verification_key: Annotated[
        Path | None, typer.Option(help="Public key that verifies a signed baseline.")
    ] = None,
    allow_empty: Annotated[
        bool, typer.Option(help="Exit 0 instead of 2 when the window holds no records.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Inputs per OPA request.")] = 50,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="OPA requests in flight.")] = 2,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Judge every recorded decision of the window with CANDIDATE on an OPA started for the
    purpose, and report what would change.

    Exit codes: 0 nothing changed; 1 something changed; 2 error (bad candidate or baseline,
    bad signature, no records in the window, database or OPA failure).
    """
    config = _errors_exit(lambda: settings(db))
    window = _errors_exit(lambda: _window(since, until, tool))
    with tempfile.TemporaryDirectory(prefix="gateway-replay-") as tmp:
        work = Path(tmp)
        candidate = _errors_exit(
            lambda: prepare_candidate(bundle, _dir(work / "candidate"), decision_path=config.decision_path)
        )
        base = None
        if baseline is not None:
            base = _errors_exit(
                lambda: prepare_candidate(
                    baseline, _dir(work / "baseline"), decision_path=config.decision_path
                )
            )
        in_window, everything = _errors_exit(lambda: _run(lambda: _span(config, window)))
        if in_window.count == 0:
            message = _empty_message(window, everything)
            if allow_empty:
                typer.echo(message, err=True)
                raise typer.Exit(EXIT_UNCHANGED)
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(EXIT_ERROR)
        options = ReplayOptions(batch_size=batch_size, concurrency=concurrency)
        try:
            with _servers(work, candidate, verification_key, base, baseline_verification_key) as urls:
                report = _run(lambda: _replay(config, window, *urls, options))
        except GatewayError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_ERROR) from exc
    if report.evaluated == 0 and report.skipped == 0:
        typer.echo(f"error: no record could be evaluated: {'; '.join(report.error_examples[:3])}", err=True)
        raise typer.Exit(EXIT_ERROR)
    if as_json:
        echo_json(report.as_json())
    else:
        _print_report(report, bundle, baseline)
    raise typer.Exit(_verdict(report, config.decision_path))


def _verdict(report: ReplayReport, decision_path: str) -> int:
    """The exit code of a finished replay; an error says why on stderr. A replay that judged
    nothing, or got no usable decision at all, is an error, never 'unchanged': CI would pass."""
    if report.errors:
        typer.echo(f"error: {report.errors} record(s) could not be evaluated (see above)", err=True)
        return EXIT_ERROR
    if report.evaluated == 0:
        typer.echo(
            f"error: every record of the window was skipped ({report.skipped}, see above): "
            "nothing was judged",
            err=True,
        )
        return EXIT_ERROR
    if report.malformed == report.evaluated:
        typer.echo(
            f"error: the candidate gave no usable decision for any record: does it define data."
            f"{decision_path.strip('/').replace('/', '.')}?",
            err=True,
        )
        return EXIT_ERROR
    return EXIT_CHANGED if report.changed else EXIT_UNCHANGED


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _servers(
    work: Path, candidate: Path, key: Path | None, baseline: Path | None, baseline_key: Path | None
) -> Iterator[tuple[str, str | None]]:
    with ExitStack() as stack:
        served = stack.enter_context(
            serve_candidate(candidate, log_path=work / "candidate-opa.log", verification_key=key)
        )
        base_url = None
        if baseline is not None:
            base = stack.enter_context(
                serve_candidate(baseline, log_path=work / "baseline-opa.log", verification_key=baseline_key)
            )
            base_url = base.url
        yield served.url, base_url


async def _replay(
    config: Settings,
    window: RecordWindow,
    candidate_url: str,
    baseline_url: str | None,
    options: ReplayOptions,
) -> ReplayReport:
    def client(url: str) -> PolicyClient:
        return PolicyClient(
            config.model_copy(update={"opa_url": url, "opa_timeout_seconds": _REPLAY_TIMEOUT_SECONDS})
        )

    db = await _open(config)
    try:
        async with client(candidate_url) as candidate:
            if baseline_url is None:
                return await replay(DecisionRecords(db), window, candidate, options=options)
            async with client(baseline_url) as base:
                return await replay(DecisionRecords(db), window, candidate, baseline=base, options=options)
    finally:
        await db.close()


def _empty_message(window: RecordWindow, everything: RecordSpan) -> str:
    what = f"decisions about {window.tool}" if window.tool else "decisions"
    held = (
        f"the database holds {everything.count} recorded decision(s), "
        f"from {everything.oldest} to {everything.newest}"
        if everything.count
        else "the database holds no recorded decisions (is GATEWAY_RECORD_DECISIONS off?)"
    )
    return f"nothing to replay: no recorded {what} between {window.since} and {window.until}; {held}"


def _target(target: dict[str, Any]) -> str:
    where = "/".join(str(target[k]) for k in ("namespace", "kind", "name") if target.get(k))
    cluster = f"{target['cluster']}:" if target.get("cluster") else ""
    env = f" ({target['environment']})" if target.get("environment") else ""
    return f"{cluster}{where or '-'}{env}"


def _print_report(report: ReplayReport, bundle: Path, baseline: Path | None) -> None:
    echo = typer.echo
    against = f"baseline {baseline}" if baseline is not None else "the recorded decisions"
    rate = report.evaluated / report.seconds if report.seconds else 0.0
    window = report.window
    echo(
        f"replayed {report.evaluated} recorded decision(s) about {window.tool or 'every tool'} from "
        f"{window.since} to {window.until} against candidate {bundle}, compared with {against} "
        f"({report.seconds:.1f} s, {rate:.0f} actions/s)"
    )
    if report.recorded_revisions:
        revisions = ", ".join(f"{rev} ({n})" for rev, n in sorted(report.recorded_revisions.items()))
        echo(f"recorded under bundle revision(s): {revisions}")
    echo(f"unchanged: {report.unchanged}   changed: {report.changed}")
    width = max((len(label) for label in report.transitions), default=0)
    for label, count in sorted(report.transitions.items(), key=lambda item: (-item[1], item[0])):
        echo(f"  {label:<{width}}  {count}")
    if report.skipped:
        echo(
            f"skipped: {report.skipped} ({report.corrupt} corrupt, {report.no_input} recorded without "
            "their input: above GATEWAY_RECORD_MAX_INPUT_BYTES)"
        )
        for bad in report.corrupt_examples:
            echo(f"  record {bad.seq}: {bad.reason}")
    if report.masked:
        echo(f"note: {report.masked} input(s) had Secret data masked when recorded; rules see it absent")
    if report.malformed:
        echo(
            f"note: {report.malformed} undefined or malformed decision(s) "
            "counted as the deny the gateway gives"
        )
    for example in report.error_examples:
        echo(f"  error: {example}", err=True)
    if report.changes:
        echo("\nchanged actions:")
        for change in report.changes:
            echo(_change_line(change))


def _change_line(change: ChangedAction) -> str:
    record = change.record
    principal = (record.input or {}).get("principal") or {}
    groups = ",".join(principal.get("groups") or [])
    approvals = len((record.input or {}).get("approvals") or [])
    extra = f" with {approvals} approval(s)" if approvals else ""
    call = f"  call {record.call_id}" if record.call_id else ""
    before, after = change.before, change.after
    findings = ""
    if change.change.kind == "findings":  # the reasons are the same: say what moved
        findings = f"; {_findings(before)} -> {_findings(after)}"
    return (
        f"  {record.decided_at}  {record.tool:<18} {_target(record.target)}  "
        f"{record.subject}[{groups}]{extra}\n"
        f"      {change.change.label}: {before.outcome} {codes(before.reasons)} -> "
        f"{after.outcome} {codes(after.reasons)}{findings}{call}"
    )


def _findings(decision: Decision) -> str:
    return f"warn {codes(decision.warnings)} dryrun {codes(decision.dryrun)}"


@app.command("records")
def records_command(
    since: SinceOption = "1d",
    until: UntilOption = None,
    tool: ToolOption = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The newest recorded decisions: input (masked), decision and bundle revision."""
    config = _errors_exit(lambda: settings(db))
    window = _errors_exit(lambda: _window(since, until, tool))

    async def work() -> list[RecordedDecision | CorruptRecord]:
        database = await _open(config)
        try:
            return await DecisionRecords(database).recent(window, limit=limit)
        finally:
            await database.close()

    rows = _errors_exit(lambda: _run(work))
    if as_json:
        echo_json([_record_json(r) for r in rows])
        return
    for row in rows:
        if isinstance(row, CorruptRecord):
            typer.echo(f"{row.seq:>8}  CORRUPT: {row.reason}")
            continue
        typer.echo(
            f"{row.seq:>8}  {row.decided_at}  {row.source:<12} {row.decision.outcome:<14} {row.tool:<20} "
            f"{row.subject:<12} {_target(row.target)}  {','.join(codes(row.decision.reasons)) or '-'}  "
            f"rev {row.bundle_revision or '-'}"
        )


def _record_json(row: RecordedDecision | CorruptRecord) -> dict[str, Any]:
    if isinstance(row, CorruptRecord):
        return {"seq": row.seq, "corrupt": row.reason}
    return row.model_dump(mode="json")


def register(root: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    root.add_typer(app, name="policy")
