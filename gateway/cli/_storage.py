"""What the ``queue`` and ``audit`` commands share: settings built at the edge, opening the
database, running a coroutine, and turning the gateway's errors into exit codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from gateway.errors import (
    ApprovalRefused,
    AuditError,
    AuthError,
    ChainBroken,
    ClientError,
    ConfigError,
    GatewayError,
    GatewayUnreachable,
    InvalidTransition,
    PolicyError,
    UnknownAction,
)
from gateway.queue.sealing import Sealer
from gateway.queue.store import QueueStore
from gateway.settings import Settings

__all__ = [
    "EXIT_CODES_HELP",
    "DbOption",
    "ExitCode",
    "JsonOption",
    "OpaUrlOption",
    "echo_json",
    "guarded",
    "open_store",
    "run",
    "settings",
]

T = TypeVar("T")


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    UNKNOWN_ID = 3
    INVALID_STATE = 4
    POLICY_UNAVAILABLE = 5
    STORAGE = 6
    NOT_AUTHENTICATED = 7
    UNREACHABLE = 8


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 refused (approval refused, action denied, audit chain broken); "
    "2 usage or settings error; 3 unknown id; 4 invalid state (expired, already decided); "
    "5 policy engine unavailable (nothing recorded); 6 database error; 7 not authenticated "
    "(missing, invalid or unprotected token); 8 gateway unreachable."
)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="SQLite file, instead of GATEWAY_DATABASE_URL [default: GATEWAY_DB_PATH or var/gateway.db]",
        show_default=False,
    ),
]
OpaUrlOption = Annotated[
    str | None,
    typer.Option("--opa-url", help="OPA sidecar URL [default: GATEWAY_OPA_URL]", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]

_CODES: tuple[tuple[type[GatewayError], ExitCode], ...] = (
    (UnknownAction, ExitCode.UNKNOWN_ID),
    (InvalidTransition, ExitCode.INVALID_STATE),
    (ApprovalRefused, ExitCode.REFUSED),
    (ChainBroken, ExitCode.REFUSED),
    (PolicyError, ExitCode.POLICY_UNAVAILABLE),
    (AuthError, ExitCode.NOT_AUTHENTICATED),
    (GatewayUnreachable, ExitCode.UNREACHABLE),
    (ClientError, ExitCode.USAGE),
    (ConfigError, ExitCode.USAGE),
    (AuditError, ExitCode.STORAGE),
)


def fail(message: str, code: ExitCode) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=int(code))


def settings(db: Path | None = None, opa_url: str | None = None) -> Settings:
    """``Settings()`` from the environment, with the command's options on top."""
    overrides: dict[str, Any] = {}
    if db is not None:  # a file named on the command line wins over GATEWAY_DATABASE_URL too
        overrides["db_path"] = db
        overrides["database_url"] = None
    if opa_url is not None:
        overrides["opa_url"] = opa_url
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False))
        raise fail(f"invalid settings ({fields})", ExitCode.USAGE) from exc
    except SettingsError as exc:  # an environment value that does not parse at all
        raise fail(f"invalid settings: {exc}", ExitCode.USAGE) from exc


async def open_store(config: Settings) -> QueueStore:
    """The store ``config`` names (``GATEWAY_DATABASE_URL``, else ``db_path``), which must
    exist: a typo in a path or URL must not look like an empty queue."""
    if config.database_url is None and not await asyncio.to_thread(config.db_path.is_file):
        raise ConfigError(f"no gateway database at {config.db_path} (set GATEWAY_DB_PATH or pass --db)")
    return await QueueStore.from_settings(
        config, sealer=Sealer.from_settings(config, create=False), require_schema=True
    )


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` and map the gateway's errors to documented exit codes, message on stderr."""
    try:
        return asyncio.run(_call(work))
    except GatewayError as exc:  # DatabaseError too: a read the store does not wrap (exit 6)
        raise _exit(exc) from exc


def guarded(work: Callable[[], T]) -> T:
    """``work()`` with the gateway's errors mapped to exit codes, as ``run`` does."""
    try:
        return work()
    except GatewayError as exc:
        raise _exit(exc) from exc


def _exit(exc: GatewayError) -> typer.Exit:
    code = next((c for kind, c in _CODES if isinstance(exc, kind)), ExitCode.STORAGE)
    return fail(str(exc), code)


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
