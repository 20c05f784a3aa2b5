"""``gateway sandbox up|down|seed``: a living local Kubernetes cluster to point the gateway at.

``up`` runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
(simulated nodes) in the foreground until Ctrl-C, SIGTERM or ``down``, with their state
under ``--dir`` (default ``var/sandbox``): ``<dir>/kubeconfig`` has the contexts
``sandbox`` (admin) and ``sandbox-restricted``, ``<dir>/logs`` one log per component,
``<dir>/pids`` the pid of each. A fresh sandbox is seeded once; its objects then survive
restarts. ``<dir>/ready`` holds the API URL while the cluster is up, for scripts that
wait for it. ``down`` stops a running sandbox by its pid. ``seed`` applies the seed data
again; ``seed --scale N`` adds N pods' worth of Deployments on simulated nodes.

Exit codes: 0 after a clean stop, 1 when a component cannot start or dies (the message
names it and its log), 2 for bad usage (a sandbox already running in that directory, a
missing binary, no sandbox to stop or seed).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
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
_SEED_SETTLE_SECONDS = 90.0
_SCALE_HELP = "Add N pods of Deployments (by default over N/25 new nodes and N/100 namespaces)."
_WAIT_HELP = "With --scale: seconds to wait for every pod to run (0: do not wait)."


def register(root: typer.Typer) -> None:
    """Add ``gateway sandbox`` to the root app."""
    sandbox = typer.Typer(
        help="A living local Kubernetes cluster: control plane, controllers, scheduler, kwok nodes."
    )
    root.add_typer(sandbox, name="sandbox")

    @sandbox.command("up")
    def up(
        state_dir: Annotated[
            Path, typer.Option("--dir", help="Where the sandbox keeps its state.")
        ] = _DEFAULT_DIR,
        port: int = typer.Option(0, "--port", help="API server port on 127.0.0.1 (0: a free one)."),
        seed: bool = typer.Option(True, "--seed/--no-seed", help="Seed a fresh sandbox."),
    ) -> None:
        """Run the sandbox cluster in the foreground until Ctrl-C (or `gateway sandbox down`)."""
        _run(state_dir, port=port, seed=seed)

    @sandbox.command("down")
    def down(
        state_dir: Annotated[
            Path, typer.Option("--dir", help="The running sandbox's state directory.")
        ] = _DEFAULT_DIR,
        timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for it to stop."),
    ) -> None:
        """Stop the sandbox running in --dir, and every process it started, by pid."""
        from gateway.local.sandbox_control import stop_sandbox

        try:
            typer.echo(stop_sandbox(state_dir, timeout=timeout))
        except LookupError as exc:
            typer.echo(f"gateway sandbox down: {exc}", err=True)
            raise typer.Exit(_EXIT_USAGE) from None

    @sandbox.command("seed")
    def seed_command(
        kubeconfig: Annotated[
            Path, typer.Option("--kubeconfig", help="Sandbox kubeconfig.")
        ] = _DEFAULT_KUBECONFIG,
        context: str = typer.Option("sandbox", "--context", help="Kubeconfig context to seed through."),
        scale: int = typer.Option(0, "--scale", min=0, help=_SCALE_HELP),
        nodes: int = typer.Option(0, "--nodes", min=0, help="With --scale: simulated nodes to add."),
        namespaces: int = typer.Option(0, "--namespaces", min=0, help="With --scale: namespaces to use."),
        wait: float = typer.Option(600.0, "--wait", min=0, help=_WAIT_HELP),
    ) -> None:
        """Apply the seed data again, or with --scale N a large cluster (e.g. --scale 5000)."""
        if not kubeconfig.is_file():
            typer.echo(
                f"gateway sandbox seed: no kubeconfig at {kubeconfig}: start `gateway sandbox up`", err=True
            )
            raise typer.Exit(_EXIT_USAGE)
        if scale:
            _seed_scale(kubeconfig, context, scale, nodes=nodes, namespaces=namespaces, wait=wait)
            return
        from gateway.local.sandbox_seed import seed_sandbox

        try:
            count = seed_sandbox(kubeconfig, context=context)
        except TimeoutError as exc:
            typer.echo(f"gateway sandbox seed: {exc}", err=True)
            raise typer.Exit(_EXIT_START) from None
        typer.echo(f"seeded {count} objects through context {context!r}")


def _seed_scale(
    kubeconfig: Path, context: str, pods: int, *, nodes: int, namespaces: int, wait: float
) -> None:
    from gateway.local.seed_scale import ScalePlan, seed_scale

    plan = ScalePlan.for_pods(pods, nodes=nodes or None, namespaces=namespaces or None)
    typer.echo(f"seeding {plan.pods} pods over {plan.namespaces} namespaces on {plan.nodes} simulated nodes")
    try:
        result = seed_scale(kubeconfig, plan, context=context, wait_seconds=wait or None)
    except TimeoutError as exc:
        typer.echo(f"gateway sandbox seed: {exc}", err=True)
        raise typer.Exit(_EXIT_START) from None
    typer.echo(json.dumps(result))


def _run(state_dir: Path, *, port: int, seed: bool) -> None:
    from gateway.local.cluster import SandboxCluster
    from gateway.local.process import ComponentFailed
    from gateway.local.sandbox_control import running_pid

    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file, ready_file, pids_file = (state_dir / n for n in ("sandbox.pid", "ready", "pids"))
    running = running_pid(pid_file)
    if running is not None:
        typer.echo(f"gateway sandbox up: a sandbox (pid {running}) already uses {state_dir}", err=True)
        raise typer.Exit(_EXIT_USAGE)
    try:
        cluster = SandboxCluster(state_dir, port=port)
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
            cluster.start()
        except (ComponentFailed, RuntimeError, TimeoutError) as exc:
            typer.echo(f"gateway sandbox up: {exc}\neverything already started was stopped", err=True)
            raise typer.Exit(_EXIT_START) from None
        pids_file.write_text(json.dumps(cluster.pids()) + "\n")
        typer.echo(_seeded(cluster.kubeconfig_path, state_dir, seed=seed))
        ready_file.write_text(f"{cluster.url}\n")
        typer.echo(
            f"sandbox ready in {cluster.started_in:.1f}s: {cluster.url}\n"
            f"  export GATEWAY_KUBECONFIG={cluster.kubeconfig_path} GATEWAY_KUBE_CONTEXT={cluster.context}\n"
            f"  logs: {state_dir / 'logs'}\n"
            "  Ctrl-C or `gateway sandbox down` stops it; its objects stay for the next start."
        )
        while not stop.wait(0.5):
            dead = cluster.dead()
            if dead:
                logs = ", ".join(str(cluster.log_path(name)) for name in dead)
                typer.echo(f"gateway sandbox up: {', '.join(dead)} exited (see {logs}); stopping", err=True)
                raise typer.Exit(_EXIT_START)
    finally:
        ready_file.unlink(missing_ok=True)
        cluster.stop()
        pids_file.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _seeded(kubeconfig: Path, state_dir: Path, *, seed: bool) -> str:
    """Seed a fresh sandbox and wait for it to come alive; a line saying how it is."""
    from gateway.local.sandbox_seed import seed_sandbox, wait_until_alive

    seeded_file = state_dir / "seeded"
    began = time.monotonic()
    try:
        if seed and not seeded_file.exists():
            count = seed_sandbox(kubeconfig)
            seeded_file.write_text(f"{count}\n")
        if not seeded_file.exists():
            return "not seeded (--no-seed)"
        alive = wait_until_alive(kubeconfig, timeout=_SEED_SETTLE_SECONDS)
    except TimeoutError as exc:
        return f"the seeded workloads are not all running yet ({exc}); see the logs in {state_dir / 'logs'}"
    return (
        f"{alive['nodes_ready']}/{alive['nodes']} nodes Ready, {alive['pods_running']} seeded pods Running "
        f"({time.monotonic() - began:.1f}s)"
    )
