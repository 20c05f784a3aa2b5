"""`gateway queue` commands: review, approve, deny and cancel parked actions.

The approver is the configured identity (``GATEWAY_SUBJECT`` / ``GATEWAY_GROUPS``, by
default the OS user) and is recorded with every decision. Approving asks OPA again, so
the policy decides quorum and four-eyes; the gateway's executor runs the action once it
is approved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
import yaml

from gateway.cli._storage import (
    EXIT_CODES_HELP,
    DbOption,
    ExitCode,
    JsonOption,
    OpaUrlOption,
    echo_json,
    open_store,
    run,
    settings,
)
from gateway.identity import cli_principal
from gateway.policy import PolicyClient
from gateway.ports import ActionState, ParkedAction
from gateway.queue.approvals import ApprovalResult, approve
from gateway.queue.display import action_view, describe_target
from gateway.queue.store import DEFAULT_LIST_LIMIT, ActionSummary

__all__ = ["register"]

app = typer.Typer(
    help=f"Review and decide actions waiting for approval. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)

_Id = Annotated[str, typer.Argument(help="Action id (or a unique prefix of at least 4 characters).")]


@app.command("list", epilog=EXIT_CODES_HELP)
def list_actions(
    state: Annotated[ActionState | None, typer.Option(help="Only actions in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = (
        DEFAULT_LIST_LIMIT
    ),
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Parked actions, newest first."""
    config = settings(db)

    async def work() -> list[ActionSummary]:
        store = await open_store(config)
        try:
            return await store.list_actions(state=state, limit=limit)
        finally:
            await store.close()

    rows = run(work)
    if as_json:
        echo_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        typer.echo("no actions" + (f" in state {state.value}" if state else ""))
        return
    table: list[tuple[str, ...]] = [("ID", "STATE", "TOOL", "TARGET", "REQUESTER", "APPROVALS", "EXPIRES")]
    for r in rows:
        table.append(
            (
                r.id[:8],
                r.state.value,
                r.tool,
                describe_target(r.target),
                r.requester,
                f"{r.approvals}/{r.min_approvals}",
                _relative(r.expires_at) if r.state in (ActionState.PENDING, ActionState.APPROVED) else "-",
            )
        )
    _print_table(table)


@app.command("show", epilog=EXIT_CODES_HELP)
def show(action_id: _Id, as_json: JsonOption = False, db: DbOption = None) -> None:
    """One action: the exact call (secrets redacted), reasons, approvals, and the diff it would make.

    For writes, the diff goes from the live object to what would be written, as YAML.
    """
    config = settings(db)

    async def work() -> ParkedAction:
        store = await open_store(config)
        try:
            return await store.get(await store.resolve(action_id))
        finally:
            await store.close()

    view = action_view(run(work))
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
    as_json: JsonOption = False,
    db: DbOption = None,
    opa_url: OpaUrlOption = None,
) -> None:
    """Approve an action; policy, asked again, decides whether that is enough.

    Then it is approved (the gateway runs it once), still pending (says what is missing) or denied.
    """
    config = settings(db, opa_url)
    approver = cli_principal(config)

    async def work() -> ApprovalResult:
        store = await open_store(config)
        try:
            async with PolicyClient(config) as policy:
                full_id = await store.resolve(action_id)
                return await approve(
                    store, policy, full_id, approver, reason=reason, expect_fingerprint=fingerprint
                )
        finally:
            await store.close()

    result = run(work)
    action = result.action
    if as_json:
        echo_json(
            {
                "id": action.id,
                "state": action.state.value,
                "approver": approver.subject,
                "approvals": [a.model_dump(mode="json") for a in action.approvals],
                "decision": result.decision.model_dump(mode="json"),
                "missing": result.missing,
            }
        )
    elif action.state is ActionState.APPROVED:
        typer.echo(f"approved {action.id} as {approver.subject}: the gateway will run it now")
    elif action.state is ActionState.PENDING:
        typer.echo(f"approval by {approver.subject} recorded; {action.id} is still pending: {result.missing}")
    else:
        typer.echo(f"{action.id} is {action.state.value}: {action.error}", err=True)
    if action.state is ActionState.DENIED:
        raise typer.Exit(code=int(ExitCode.REFUSED))


@app.command("deny", epilog=EXIT_CODES_HELP)
def deny_action(
    action_id: _Id,
    reason: Annotated[str, typer.Option(help="Why (recorded and shown to the requester).")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Refuse a pending action; it will never run."""
    _decide(action_id, reason, as_json, db, cancel=False)


@app.command("cancel", epilog=EXIT_CODES_HELP)
def cancel_action(
    action_id: _Id,
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Withdraw a pending or approved action before it runs."""
    _decide(action_id, reason, as_json, db, cancel=True)


def _decide(action_id: str, reason: str | None, as_json: bool, db: Any, *, cancel: bool) -> None:
    config = settings(db)
    who = cli_principal(config)

    async def work() -> ParkedAction:
        store = await open_store(config)
        try:
            full_id = await store.resolve(action_id)
            if cancel:
                return await store.cancel(full_id, who, reason)
            return await store.deny(full_id, who, reason or "")
        finally:
            await store.close()

    action = run(work)
    if as_json:
        echo_json({"id": action.id, "state": action.state.value, "by": who.subject, "reason": reason})
    else:
        typer.echo(f"{action.state.value} {action.id} as {who.subject}")


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


def _print_view(view: dict[str, Any]) -> None:
    requester = view["requester"]
    decision = view["decision"]
    needs = decision["approval"] or {}
    typer.echo(f"Action       {view['id']}  [{view['state']}]")
    typer.echo(f"Tool         {view['tool']}")
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


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())


def register(root: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    root.add_typer(app, name="queue")
