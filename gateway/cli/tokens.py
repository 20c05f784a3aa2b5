"""`gateway token` commands: issue, list and revoke bearer tokens for the HTTP transport.

A new token is printed once, on stdout, and never stored: the tokens file keeps only its
SHA-256. A running gateway picks up every change without a restart.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from gateway.auth import TokenEntry, TokenStore, append_token
from gateway.errors import ConfigError
from gateway.settings import Settings

__all__ = ["register"]

app = typer.Typer(help="Bearer tokens for the HTTP transport.", no_args_is_help=True)

_TokensFile = Annotated[
    Path | None,
    typer.Option("--tokens-file", help="Tokens file [default: GATEWAY_TOKENS_FILE]", show_default=False),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _tokens_file(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    try:
        configured = Settings().tokens_file
    except ValidationError as exc:
        raise _fail(f"invalid GATEWAY_* settings: {exc.error_count()} error(s)") from exc
    if configured is None:
        raise _fail("no tokens file: set GATEWAY_TOKENS_FILE or pass --tokens-file")
    return configured


@app.command("create")
def create(
    subject: Annotated[str, typer.Option(help="Who the token stands for, e.g. alice@example.com")],
    group: Annotated[list[str] | None, typer.Option(help="A group of the subject (repeatable)")] = None,
    comment: Annotated[str | None, typer.Option(help="A note kept beside the hash")] = None,
    tokens_file: _TokensFile = None,
) -> None:
    """Create a token, append its hash to the tokens file and print the token once."""
    path = _tokens_file(tokens_file)
    try:
        token = append_token(path, subject=subject, groups=tuple(group or ()), comment=comment)
    except ValidationError as exc:
        raise _fail("subject must be 1 to 256 characters") from exc
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or 'I/O error'}") from exc
    typer.echo(f"token for {subject} (shown once, store it now):", err=True)
    typer.echo(token)


@app.command("list")
def list_tokens(tokens_file: _TokensFile = None) -> None:
    """Subjects, groups and hash prefixes of the tokens in the file."""
    path = _tokens_file(tokens_file)
    try:
        entries = _read(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    for entry in entries:
        groups = ",".join(entry.groups) or "-"
        note = f"  # {entry.comment}" if entry.comment else ""
        typer.echo(f"{entry.sha256[:12]}  {entry.subject}  {groups}{note}")


@app.command("revoke")
def revoke(
    subject: Annotated[str | None, typer.Option(help="Revoke every token of this subject")] = None,
    sha256: Annotated[str | None, typer.Option(help="Revoke the token whose hash starts with this")] = None,
    tokens_file: _TokensFile = None,
) -> None:
    """Remove tokens from the file; a running gateway refuses them from its next request."""
    if (subject is None) == (sha256 is None):
        raise _fail("pass exactly one of --subject or --sha256")
    if sha256 is not None and len(sha256) < 8:
        raise _fail("--sha256 needs at least 8 hex digits")
    path = _tokens_file(tokens_file)
    try:
        entries = _read(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc

    def matches(entry: TokenEntry) -> bool:
        if subject is not None:
            return entry.subject == subject
        return entry.sha256.startswith((sha256 or "").lower())

    kept = [e for e in entries if not matches(e)]
    removed = len(entries) - len(kept)
    if removed == 0:
        raise _fail("no token matched; nothing changed")
    _rewrite(path, kept)
    typer.echo(f"revoked {removed} token(s)", err=True)


def _read(path: Path) -> tuple[TokenEntry, ...]:
    return TokenStore(path).entries()


def _rewrite(path: Path, entries: list[TokenEntry]) -> None:
    """Replace the file atomically, so a gateway never reads half of it. Comments and
    blank lines of a hand-edited file are not kept."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(e.model_dump_json(exclude_none=True) + "\n" for e in entries)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(root: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    root.add_typer(app, name="token")
