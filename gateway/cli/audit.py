"""`gateway audit` commands: read, verify and export the hash-chained audit log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

import typer

from gateway.audit import AuditRecord, ChainReport
from gateway.cli._storage import (
    EXIT_CODES_HELP,
    DbOption,
    ExitCode,
    JsonOption,
    echo_json,
    fail,
    open_store,
    run,
    settings,
)
from gateway.contracts import canonical_json
from gateway.errors import ChainBroken
from gateway.queue.proofs import Attestor, ProofReport, recheck_proofs
from gateway.queue.store import QueueStore
from gateway.settings import Settings
from gateway.signers import AllowedSigners

__all__ = ["register"]

app = typer.Typer(
    help=f"Read, verify and export the tamper-evident audit log. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)


@app.command("list", epilog=EXIT_CODES_HELP)
def list_records(
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many, newest first.")] = 50,
    action: Annotated[str | None, typer.Option(help="Only records of this action id.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The newest audit records."""
    config = settings(db)

    async def work() -> list[AuditRecord]:
        store = await open_store(config)
        try:
            return await store.audit.recent(limit=limit, action_id=action)
        finally:
            await store.close()

    records = run(work)
    if as_json:
        echo_json([r.model_dump() for r in records])
        return
    for r in records:
        codes = ",".join(str(reason.get("code")) for reason in r.reasons) or "-"
        typer.echo(
            f"{r.seq:>7}  {r.time}  {r.kind:<16} {r.outcome or '-':<14} {r.tool or '-':<24} "
            f"{r.subject or '-':<12} {(r.action_id or '-')[:8]}  {codes}"
        )


@app.command("show", epilog=EXIT_CODES_HELP)
def show(
    seq: Annotated[int, typer.Argument(min=1, help="The record's sequence number.")],
    db: DbOption = None,
) -> None:
    """One audit record, in full, as JSON."""
    config = settings(db)

    async def work() -> AuditRecord | None:
        store = await open_store(config)
        try:
            return await store.audit.get(seq)
        finally:
            await store.close()

    record = run(work)
    if record is None:
        raise fail(f"no audit record with sequence number {seq}", ExitCode.UNKNOWN_ID)
    echo_json(record.model_dump())


@app.command("verify", epilog=EXIT_CODES_HELP)
def verify(as_json: JsonOption = False, db: DbOption = None) -> None:
    """Recompute the hash chain and re-verify every approval's proofs; exit 1 naming what fails.

    Detects records edited, inserted, deleted or reordered after they were written; approval
    signatures that do not verify against the allowed signers file (or whose key is revoked),
    attestations not made by this gateway's key, and proofs that differ from the digests the
    chain recorded.
    """
    config = settings(db)

    async def work() -> tuple[ChainReport | ChainBroken, ProofReport | None]:
        store = await open_store(config)
        try:
            report = await store.audit.verify()
        except ChainBroken as exc:
            return exc, None
        else:
            return report, await _recheck(store, config)
        finally:
            await store.close()

    outcome, proofs = run(work)
    if isinstance(outcome, ChainBroken):
        if as_json:
            echo_json({"intact": False, "first_bad_seq": outcome.seq, "message": str(outcome)})
        typer.echo(f"audit chain BROKEN: {outcome}", err=True)
        raise typer.Exit(code=int(ExitCode.REFUSED))
    assert proofs is not None
    if as_json:
        echo_json({"intact": True, "rows": outcome.rows, "head": outcome.head, "approvals": asdict(proofs)})
    else:
        typer.echo(f"audit chain intact: {outcome.rows} records, head {outcome.head}")
        typer.echo(
            f"approvals: {proofs.approvals} checked; {proofs.signatures} SSH signature(s) and "
            f"{proofs.attestations} gateway attestation(s) verified; {proofs.unproven} without proofs"
            + (
                f"; {proofs.unchecked} proof(s) not checkable here (no key configured)"
                if proofs.unchecked
                else ""
            )
        )
    for problem in proofs.problems:
        typer.echo(f"approval NOT PROVEN: {problem}", err=True)
    if proofs.problems:
        raise typer.Exit(code=int(ExitCode.REFUSED))


async def _recheck(store: QueueStore, config: Settings) -> ProofReport:
    """Every approval's proofs again, against the keys configured now and the chain's digests."""
    chained: dict[tuple[str, str], dict[str, Any]] = {}
    async for record in store.audit.iterate():
        proof = record.detail.get("proof")
        if record.kind == "approval" and record.action_id and record.subject and isinstance(proof, dict):
            chained[record.action_id, record.subject] = proof
    signers = None
    if config.allowed_signers_file is not None:
        signers = AllowedSigners(config.allowed_signers_file, config.revoked_signers_file)
    attestor = Attestor.load(config.data_file(config.attestation_key_file, "attestation.key"))
    rows = await store.every_approval()
    return recheck_proofs(rows, chained, signers=signers, attestor=attestor)


@app.command("export", epilog=EXIT_CODES_HELP)
def export(
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON record per line (the only format).")
    ] = False,
    since_seq: Annotated[
        int,
        typer.Option(
            "--since-seq",
            min=0,
            help="Only records after this sequence number: the last one the receiver holds, to resume.",
        ),
    ] = 0,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep streaming new records as they are written, until interrupted."
        ),
    ] = False,
    poll_seconds: Annotated[
        float,
        typer.Option("--poll-seconds", min=0.05, max=60, help="How often --follow looks for new records."),
    ] = 1.0,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Write to this file instead of stdout (appended to when resuming with --since-seq)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Records in chain order, each with its hashes, to check or archive elsewhere; with
    --follow, a stream for a log shipper (docs/operations.md shows the receiver's check).

    hash = sha256(prev_hash + canonical JSON of the record without prev_hash and hash).
    Each line's prev_hash is the previous line's hash (the first line's: the hash of record
    --since-seq, or 64 zeros from the start), and seq counts up by one.
    """
    if not jsonl:
        raise fail("choose a format: --jsonl", ExitCode.USAGE)
    config = settings(db)

    async def work(sink: TextIO) -> int:
        store = await open_store(config)
        try:
            return await _stream(store, sink, after=since_seq, follow=follow, poll_seconds=poll_seconds)
        finally:
            await store.close()

    mode: Literal["a", "w"] = "a" if since_seq else "w"
    try:
        with contextlib.ExitStack() as stack:
            sink = sys.stdout if output is None else stack.enter_context(output.open(mode, encoding="utf-8"))
            count = run(lambda: work(sink))
    except BrokenPipeError:
        # The reader went away (`| head`, a shipper that stopped): not an error of ours.
        _silence_stdout()
        return
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or 'I/O error'}", ExitCode.STORAGE) from exc
    if output is not None:
        typer.echo(f"exported {count} records to {output}", err=True)


async def _stream(store: QueueStore, sink: TextIO, *, after: int, follow: bool, poll_seconds: float) -> int:
    """Write every record after ``after``, flushing per batch; with ``follow`` keep polling
    until SIGINT or SIGTERM. Appends commit in sequence order (one writer at a time holds
    the chain's head), so a record never appears behind one already streamed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if follow:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    count = 0
    try:
        while True:
            async for record in store.audit.iterate(after=after):
                sink.write(canonical_json(record.model_dump()) + "\n")
                after, count = record.seq, count + 1
            sink.flush()
            if not follow:
                return count
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
            if stop.is_set():
                return count
    finally:
        if follow:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; pointing it at /dev/null keeps that flush from
    # raising a second BrokenPipeError.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def register(root: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    root.add_typer(app, name="audit")
