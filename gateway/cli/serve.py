"""``gateway serve``: the MCP server over stdio (one local client) or streamable HTTP.

Exit codes: 0 after a clean shutdown, 2 when the configuration cannot be used (the
message says which setting). Logs go to stderr only: on stdio, stdout is the protocol.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Literal

import anyio
import typer
import uvicorn
from pydantic import ValidationError

from gateway.errors import ConfigError
from gateway.settings import Settings

__all__ = ["configure_logging", "register"]

_EXIT_CONFIG = 2


def configure_logging(level: str) -> None:
    """stderr, one line per record; third-party request logs only when something is wrong."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("httpx", "httpcore", "mcp.server.streamable_http", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def register(root: typer.Typer) -> None:
    """Add ``gateway serve`` to the root app."""

    @root.command("serve")
    def serve(
        transport: Literal["stdio", "http"] | None = typer.Option(
            None, "--transport", help="stdio (default) or http (streamable HTTP at /mcp)."
        ),
        host: str | None = typer.Option(None, "--host", help="HTTP bind address (default 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", help="HTTP port (default 8000)."),
        log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    ) -> None:
        """Serve the gateway's MCP tools; every call is judged by OPA first."""
        configure_logging(log_level)
        overrides = {
            k: v for k, v in {"transport": transport, "host": host, "port": port}.items() if v is not None
        }
        try:
            settings = Settings(**overrides)  # type: ignore[arg-type]
            run(settings)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            typer.echo(f"gateway serve: invalid setting(s): {fields}", err=True)
            raise typer.Exit(_EXIT_CONFIG) from None
        except ConfigError as exc:
            typer.echo(f"gateway serve: {exc}", err=True)
            raise typer.Exit(_EXIT_CONFIG) from None


def run(settings: Settings) -> None:
    """Build the server and run it on the configured transport until interrupted; with
    ``GATEWAY_SHADOW_BUNDLE``, an OPA serving it runs beside the gateway meanwhile."""
    with contextlib.ExitStack() as stack:
        _serve(_with_shadow_opa(settings, stack))


def _with_shadow_opa(settings: Settings, stack: contextlib.ExitStack) -> Settings:
    """Start an OPA for ``shadow_bundle`` (stopped by pid when ``stack`` closes) and point the
    shadow evaluator at it. Raises ``ConfigError`` (``BundleError``) naming what is wrong."""
    if settings.shadow_bundle is None:
        return settings
    if settings.shadow_opa_url is not None:
        raise ConfigError("set GATEWAY_SHADOW_BUNDLE or GATEWAY_SHADOW_OPA_URL, not both")
    from gateway.local.candidate import prepare_candidate, serve_candidate

    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gateway-shadow-")))
    bundle = prepare_candidate(settings.shadow_bundle, work, decision_path=settings.decision_path)
    log_path = settings.data_file(None, "shadow-opa.log")
    server = stack.enter_context(
        serve_candidate(bundle, log_path=log_path, verification_key=settings.shadow_verification_key)
    )
    # On stdio nothing else turns SIGTERM into an orderly exit: without this the shadow OPA
    # would outlive the gateway (uvicorn installs its own handler over HTTP).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    logging.getLogger(__name__).info(
        "shadow OPA at %s serving %s (log %s)", server.url, settings.shadow_bundle, log_path
    )
    return settings.model_copy(update={"shadow_opa_url": server.url})


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _serve(settings: Settings) -> None:
    from gateway.runtime import (
        RuntimeSlot,  # imported late: `gateway --help` stays fast
        preflight,
    )
    from gateway.server import build_server
    from gateway.webhooks import WebhookNotifier

    WebhookNotifier(settings)  # a bad webhook URL or secret is a configuration error, before anything starts
    anyio.run(preflight, settings)  # so is a database that cannot be used (unreachable, refused, newer)
    slot = RuntimeSlot()
    server = build_server(settings, slot=slot)
    if settings.transport == "stdio":
        anyio.run(server.run_stdio_async)
        return
    from gateway.http import build_app

    app = build_app(server, settings, slot=slot)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
