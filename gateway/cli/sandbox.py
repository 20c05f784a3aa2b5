"""``gateway sandbox up|seed``: a local Kubernetes API server to point the gateway at.

``up`` runs etcd and kube-apiserver in the foreground until Ctrl-C (or SIGTERM), with
their state under ``--dir`` (default ``var/sandbox``), and writes ``<dir>/kubeconfig``
with the context ``sandbox`` (admin) and ``sandbox-restricted``. A fresh sandbox is
seeded once; its objects then survive restarts. ``<dir>/ready`` holds the API URL while
the server is up, for scripts that wait for it. ``seed`` applies the seed data again.

Exit codes: 0 after a clean stop, 1 when the server cannot start, 2 for bad usage (a
sandbox already running in that directory, a missing binary).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from gateway.errors import ConfigError

__all__ = ["register"]

_EXIT_START = 1
_EXIT_USAGE = 2
_DEFAULT_DIR = Path("var/sandbox")
_DEFAULT_KUBECONFIG = _DEFAULT_DIR / "kubeconfig"


def register(root: typer.Typer) -> None:
    """Add ``gateway sandbox`` to the root app."""
    sandbox = typer.Typer(help="A local Kubernetes API server (etcd + kube-apiserver) with seed data.")
    root.add_typer(sandbox, name="sandbox")

    @sandbox.command("up")
    def up(
        state_dir: Annotated[
            Path, typer.Option("--dir", help="Where the sandbox keeps its state.")
        ] = _DEFAULT_DIR,
        port: int = typer.Option(0, "--port", help="API server port on 127.0.0.1 (0: a free one)."),
        seed: bool = typer.Option(True, "--seed/--no-seed", help="Seed a fresh sandbox."),
    ) -> None:
        """Run the sandbox API server in the foreground until Ctrl-C."""
        _run(state_dir, port=port, seed=seed)

    @sandbox.command("seed")
    def seed_command(
        kubeconfig: Annotated[
            Path, typer.Option("--kubeconfig", help="Sandbox kubeconfig.")
        ] = _DEFAULT_KUBECONFIG,
        context: str = typer.Option("sandbox", "--context", help="Kubeconfig context to seed through."),
    ) -> None:
        """Apply the seed data (namespaces dev and payments, workloads, a Secret) again."""
        from gateway.local.sandbox_seed import seed_sandbox

        if not kubeconfig.is_file():
            typer.echo(
                f"gateway sandbox seed: no kubeconfig at {kubeconfig}: start `gateway sandbox up`", err=True
            )
            raise typer.Exit(_EXIT_USAGE)
        count = seed_sandbox(kubeconfig, context=context)
        typer.echo(f"seeded {count} objects through context {context!r}")


def _run(state_dir: Path, *, port: int, seed: bool) -> None:
    from gateway.local.kube import KubeApiServer
    from gateway.local.sandbox_seed import seed_sandbox

    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file, ready_file, seeded_file = (state_dir / n for n in ("sandbox.pid", "ready", "seeded"))
    running = _running_pid(pid_file)
    if running is not None:
        typer.echo(f"gateway sandbox up: a sandbox (pid {running}) already uses {state_dir}", err=True)
        raise typer.Exit(_EXIT_USAGE)
    try:
        server = KubeApiServer(state_dir, port=port)
    except ConfigError as exc:
        typer.echo(f"gateway sandbox up: {exc}", err=True)
        raise typer.Exit(_EXIT_USAGE) from None
    pid_file.write_text(str(os.getpid()))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _ = signum, frame
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except (RuntimeError, TimeoutError) as exc:
            typer.echo(f"gateway sandbox up: {exc}", err=True)
            raise typer.Exit(_EXIT_START) from None
        if seed and not seeded_file.exists():
            count = seed_sandbox(server.kubeconfig_path, context=server.context)
            seeded_file.write_text(f"{count}\n")
        ready_file.write_text(f"{server.url}\n")
        typer.echo(
            f"sandbox ready in {server.started_in:.1f}s: {server.url}\n"
            f"  export GATEWAY_KUBECONFIG={server.kubeconfig_path} GATEWAY_KUBE_CONTEXT={server.context}\n"
            "  Ctrl-C stops it; its objects stay for the next start."
        )
        while not stop.wait(0.5):
            if not (server.apiserver.alive() and server.etcd.alive()):
                typer.echo("gateway sandbox up: the API server or etcd exited; stopping", err=True)
                raise typer.Exit(_EXIT_START)
    finally:
        ready_file.unlink(missing_ok=True)
        server.stop()
        pid_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _running_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive (a stale file is ignored)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
