"""`gateway queue` commands: review, approve, deny, cancel and watch parked actions, and roll
back executed ones.

By default the CLI is a client of the running gateway's approvals API (``GATEWAY_URL``,
with the approver's token from ``GATEWAY_TOKEN`` or ``GATEWAY_TOKEN_FILE``): the approver
and their groups are whoever that credential names. With ``--key`` (or
``GATEWAY_SIGNING_KEY``) approvals are also signed with the approver's SSH key. ``--local``
works on the database directly as ``GATEWAY_SUBJECT``, for a single-user stdio set-up only.
Approving asks OPA again, so the policy decides quorum and four-eyes; the gateway's executor
runs the action once it is approved. ``rollback`` proposes the undo of an executed action
through the approvals API (never ``--local``: it runs in the gateway, judged like any call).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
import yaml

from gateway.cli._local_queue import LocalQueue
from gateway.cli._signing import ssh_sign
from gateway.cli._storage import (
    EXIT_CODES_HELP,
    DbOption,
    ExitCode,
    JsonOption,
    OpaUrlOption,
    echo_json,
    fail,
    guarded,
    settings,
)
from gateway.cli.client import ApprovalsClient
from gateway.errors import ProofRefused
from gateway.ports import ActionState
from gateway.queue.display import describe_target
from gateway.queue.store import DEFAULT_LIST_LIMIT

__all__ = ["register"]

app = typer.Typer(
    help=f"Review and decide actions waiting for approval. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)

_Id = Annotated[str, typer.Argument(help="Action id (or a unique prefix of at least 4 characters).")]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Use the database directly as GATEWAY_SUBJECT (single-user stdio set-ups only; a gateway "
        "serving HTTP refuses approvals written this way).",
    ),
]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="Sign the approval with this SSH key (a private key, or a public key whose private half "
        "ssh-agent holds) [default: GATEWAY_SIGNING_KEY].",
        show_default=False,
    ),
]


class _Queue(Protocol):
    def list_actions(self, state: str | None, limit: int) -> list[dict[str, Any]]: ...
    def show(self, ref: str) -> dict[str, Any]: ...
    def deny(self, ref: str, reason: str) -> dict[str, Any]: ...
    def cancel(self, ref: str, reason: str | None) -> dict[str, Any]: ...


@contextlib.contextmanager
def _queue(local: bool, db: Path | None, opa_url: str | None = None) -> Iterator[_Queue]:
    """The database (``--local``) or the approvals API, as the settings say."""
    config = settings(db, opa_url)
    if local:
        yield LocalQueue(config)
        return
    with guarded(lambda: ApprovalsClient(config)) as client:
        yield client


@app.command("list", epilog=EXIT_CODES_HELP)
def list_actions(
    state: Annotated[ActionState | None, typer.Option(help="Only actions in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = (
        DEFAULT_LIST_LIMIT
    ),
    as_json: JsonOption = False,
    local: LocalOption = False,
    db: DbOption = None,
) -> None:
    """Parked actions, newest first."""
    with _queue(local, db) as queue:
        rows = guarded(lambda: queue.list_actions(state.value if state else None, limit))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no actions" + (f" in state {state.value}" if state else ""))
        return
    _print_table(_table(rows))


@app.command("show", epilog=EXIT_CODES_HELP)
def show(
    action_id: _Id, as_json: JsonOption = False, local: LocalOption = False, db: DbOption = None
) -> None:
    """One action: the exact call (secrets redacted), reasons, approvals, and the diff it would make.

    For writes, the diff goes from the live object to what would be written, as YAML.
    """
    with _queue(local, db) as queue:
        view = guarded(lambda: queue.show(action_id))
    if as_json:
        echo_json(view)
    else:
        _print_view(view)


@app.command("approve", epilog=EXIT_CODES_HELP)
def approve_action(
    action_id: _Id,
    reason: Annotated[str | None, typer.Option(help="Why you approve (recorded).")] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option(help="Approve only if the action's fingerprint starts with this (from `queue show`)."),
    ] = None,
    key: KeyOption = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    db: DbOption = None,
    opa_url: OpaUrlOption = None,
) -> None:
    """Approve an action; policy, asked again, decides whether that is enough.

    Then it is approved (the gateway runs it once), still pending (says what is missing) or denied.
    """
    config = settings(db, opa_url)
    signing_key = key or config.signing_key
    if local:
        body = guarded(lambda: LocalQueue(config).approve(action_id, reason, fingerprint, signing_key))
    else:
        with guarded(lambda: ApprovalsClient(config)) as client:
            body = guarded(lambda: _approve_remote(client, action_id, reason, fingerprint, signing_key))
    _report_approval(body, as_json)


def _approve_remote(
    client: ApprovalsClient, ref: str, reason: str | None, fingerprint: str | None, key: Path | None
) -> dict[str, Any]:
    """Unsigned: one request. Signed: the gateway states what is being approved, the CLI checks
    it is the action (and fingerprint) the approver named, signs it, and sends it back."""
    if key is None:
        return client.approve(ref, {"reason": reason, "fingerprint": fingerprint})
    offered = client.statement(ref, reason)
    if fingerprint is not None and not offered["fingerprint"].startswith(fingerprint.strip().lower()):
        raise ProofRefused(
            f"action {ref} has fingerprint {offered['fingerprint'][:16]}…, not the one you reviewed: "
            "show it again before approving"
        )
    signature = ssh_sign(offered["statement"], key)
    body = {"statement": offered["statement"], "signature": signature, "fingerprint": fingerprint}
    return client.approve(ref, body)


def _report_approval(body: dict[str, Any], as_json: bool) -> None:
    state, approver, action_id = body["state"], body["approver"], body["id"]
    if as_json:
        keys = ("id", "state", "approver", "approvals", "decision", "missing", "signed")
        echo_json({k: body.get(k) for k in keys})
    elif state == ActionState.APPROVED:
        typer.echo(f"approved {action_id} as {approver}: the gateway will run it now")
    elif state == ActionState.PENDING:
        typer.echo(f"approval by {approver} recorded; {action_id} is still pending: {body['missing']}")
    else:
        typer.echo(f"{action_id} is {state}: {body.get('error')}", err=True)
    if state == ActionState.DENIED:
        raise typer.Exit(code=int(ExitCode.REFUSED))


@app.command("deny", epilog=EXIT_CODES_HELP)
def deny_action(
    action_id: _Id,
    reason: Annotated[str, typer.Option(help="Why (recorded and shown to the requester).")],
    as_json: JsonOption = False,
    local: LocalOption = False,
    db: DbOption = None,
) -> None:
    """Refuse a pending action; it will never run."""
    with _queue(local, db) as queue:
        _report_decision(guarded(lambda: queue.deny(action_id, reason)), as_json)


@app.command("cancel", epilog=EXIT_CODES_HELP)
def cancel_action(
    action_id: _Id,
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    db: DbOption = None,
) -> None:
    """Withdraw a pending or approved action before it runs."""
    with _queue(local, db) as queue:
        _report_decision(guarded(lambda: queue.cancel(action_id, reason)), as_json)


@app.command("rollback", epilog=EXIT_CODES_HELP)
def rollback_action(
    action_id: _Id,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Roll back even though the object changed since the gateway's write (policy may "
            "require approval for it).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Undo an executed action: propose its inverse, judged by policy like any call.

    It runs now (allowed), waits for approval (prints the command), is denied (exit 1), or fails
    (exit 4: for instance the object changed since; the message lists what changed). Always
    through the running gateway (GATEWAY_URL, GATEWAY_TOKEN): there is no --local rollback.
    """
    config = settings()
    if not (config.url or "").strip():
        raise fail(
            "no gateway URL: a rollback is proposed to the running gateway, which judges and runs it; "
            "set GATEWAY_URL (e.g. http://127.0.0.1:8000) and GATEWAY_TOKEN (there is no --local rollback)",
            ExitCode.USAGE,
        )
    with guarded(lambda: ApprovalsClient(config)) as client:
        body = guarded(lambda: client.rollback(action_id, force))
    if as_json:
        echo_json(body)
    else:
        _print_rollback(body)
    if body["status"] == "denied":
        raise typer.Exit(code=int(ExitCode.REFUSED))
    if body["status"] == "failed":
        raise typer.Exit(code=int(ExitCode.INVALID_STATE))


def _print_rollback(body: dict[str, Any]) -> None:
    rollback, status = body["rollback_id"], body["status"]
    reasons = ((body.get("decision") or {}).get("reasons")) or []
    if status == "executed":
        typer.echo(f"rolled back as action {rollback}")
        typer.echo(_indent(_yaml(body["result"])))
    elif status == "pending":
        typer.echo(
            f"rollback {rollback} needs approval and has not run; approve with: {body['approve_with']}"
        )
    elif status == "denied":
        typer.echo(f"rollback {rollback} denied by policy; nothing was run", err=True)
    else:
        typer.echo(f"rollback {rollback} failed: {body['error']}", err=True)
    for reason in reasons:
        typer.echo(f"  - {reason['code']} [{reason['severity']}/{reason['effect']}] {reason['message']}")


def _report_decision(body: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(body)
    else:
        typer.echo(f"{body['state']} {body['id']} as {body['by']}")


@app.command("watch", epilog=EXIT_CODES_HELP)
def watch(
    state: Annotated[ActionState | None, typer.Option(help="Only actions in this state.")] = None,
    interval: Annotated[float, typer.Option(min=0.2, max=3600, help="Seconds between refreshes.")] = 2.0,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many refreshes [default: until Ctrl-C].")
    ] = None,
    local: LocalOption = False,
    db: DbOption = None,
) -> None:
    """The queue live: the table, redrawn as actions are parked, approved, run or expire.

    On a terminal the screen is redrawn in place; otherwise each change is printed as a line.
    """
    seen: dict[str, str] = {}
    tty = typer.get_text_stream("stdout").isatty()
    refreshes = 0
    with _queue(local, db) as queue:
        while count is None or refreshes < count:
            rows = guarded(lambda: queue.list_actions(state.value if state else None, DEFAULT_LIST_LIMIT))
            refreshes += 1
            if tty:
                typer.echo("\x1b[H\x1b[2J", nl=False)
                stamp = datetime.now(UTC).strftime("%H:%M:%S")
                typer.echo(f"gateway queue watch: {len(rows)} action(s), refreshed {stamp} (Ctrl-C stops)")
                if rows:
                    _print_table(_table(rows))
                else:
                    typer.echo("no actions")
            else:
                for row in reversed(rows):
                    if seen.get(row["id"]) != row["state"]:
                        typer.echo(_watch_line(row))
            seen = {row["id"]: row["state"] for row in rows}
            if count is not None and refreshes >= count:
                break
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                break


def _watch_line(row: dict[str, Any]) -> str:
    return (
        f"{row['id'][:8]}  {row['state']:<11} {row['tool']}  {describe_target(row['target'])}  "
        f"by {row['requester']}  {row['approvals']}/{row['min_approvals']}"
    )


def _table(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    header = ("ID", "STATE", "TOOL", "CLUSTER", "TARGET", "REQUESTER", "APPROVALS", "EXPIRES")
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        live = r["state"] in (ActionState.PENDING, ActionState.APPROVED)
        target = r["target"]
        table.append(
            (
                r["id"][:8],
                r["state"],
                r["tool"],
                str(target.get("cluster") or "-"),
                describe_target({k: v for k, v in target.items() if k != "cluster"}),
                r["requester"],
                f"{r['approvals']}/{r['min_approvals']}",
                _relative(r["expires_at"]) if live else "-",
            )
        )
    return table


def _relative(stamp: str) -> str:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    seconds = int((moment - datetime.now(UTC)).total_seconds())
    if seconds <= 0:
        return "now"
    if seconds < 3600:
        return f"in {seconds // 60}m{seconds % 60:02d}s"
    return f"in {seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _print_executed(view: dict[str, Any]) -> None:
    """A change that ran without approval, as the reversal journal shows it."""
    typer.echo(f"Action       {view['id']}  [{view['state']}, ran without approval]")
    typer.echo(f"Tool         {view['tool']}")
    typer.echo(f"Target       {describe_target(view['target'])}")
    typer.echo(f"Requested by {view['requester']}, ran at {view['executed_at']}")
    if view.get("rollback_of"):
        typer.echo(f"Rollback of  {view['rollback_of']}")
    typer.echo("Changed")
    for change in view["changes"]:
        identity = ", ".join(
            f"{k} {change[k]}" for k in ("uid", "resourceVersion", "generation") if k in change
        )
        typer.echo(f"  - {change['change']} {describe_target(change['target'])} ({identity or '-'})")
    _print_rolled_back(view)


def _print_rolled_back(view: dict[str, Any]) -> None:
    done = view.get("rolled_back")
    if done:
        typer.echo(f"Rolled back  by {done['subject']} at {done['at']} (action {done['by_action']})")


def _print_view(view: dict[str, Any]) -> None:
    if view.get("executed"):
        _print_executed(view)
        return
    requester = view["requester"]
    decision = view["decision"]
    needs = decision["approval"] or {}
    typer.echo(f"Action       {view['id']}  [{view['state']}]")
    typer.echo(f"Tool         {view['tool']}")
    typer.echo(f"Cluster      {view['target'].get('cluster') or '-'}")
    typer.echo(f"Target       {describe_target(view['target'])}")
    typer.echo(f"Requested by {requester['subject']} ({requester['transport']}) at {view['created_at']}")
    typer.echo(f"Expires      {view['expires_at']}")
    typer.echo(f"Fingerprint  {view['fingerprint']}")
    revision = decision["bundle_revision"] or "-"
    typer.echo(
        f"Policy       {decision['outcome']} (bundle {revision}, decision {decision['decision_id'] or '-'})"
    )
    for reason in [*decision["reasons"], *decision["warnings"]]:
        typer.echo(f"  - {reason['code']} [{reason['severity']}/{reason['effect']}] {reason['message']}")
    groups = ", ".join(needs.get("approver_groups") or []) or "any"
    self_ok = "allowed" if needs.get("allow_self_approval") else "not allowed"
    typer.echo(
        f"Approvals    {len(view['approvals'])} of {needs.get('min_approvals', 1)} "
        f"(approvers: {groups}; self-approval {self_ok})"
    )
    for item in view["approvals"]:
        note = f": {item['reason']}" if item.get("reason") else ""
        typer.echo(f"  - {item['subject']} at {item['approved_at']}{note}")
    if view["error"]:
        typer.echo(f"Outcome      {view['error']}")
    typer.echo("Call arguments (secret values redacted)")
    typer.echo(_indent(_yaml(view["call"]["call_args"])))
    for diff in view["changes"]:
        if diff:
            typer.echo("Changes")
            typer.echo(_indent(diff))
    if view["result"] is not None:
        typer.echo("Result")
        typer.echo(_indent(_yaml(view["result"])))
    _print_rolled_back(view)


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())


def register(root: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    root.add_typer(app, name="queue")
