"""The docker-compose topology as native processes: what ``make up`` / ``make run`` start.

    OPA (the built bundle, ``deploy/opa/config.yaml``)       127.0.0.1:8181
    shadow OPA (only with a shadow bundle: ``GATEWAY_SHADOW_BUNDLE`` or ``--shadow-bundle``)
                                                             127.0.0.1:8182
    `gateway sandbox up` in var/sandbox: etcd, kube-apiserver, controller manager, scheduler
        and kwok's simulated nodes (when no kubeconfig is configured; reused if running)
    fake Palette API               (when PALETTE_HOST is not configured)
    gateway serve --transport http                           127.0.0.1:8000/mcp

Ports, the OPA configuration, the bundle and the gateway settings come from
``gateway.local.deployment``, the module the compose-file test checks against. Every
process runs in its own process group and is stopped by pid, in reverse order.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import secrets
import shlex
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from gateway.errors import GatewayError
from gateway.http import MCP_PATH
from gateway.local.candidate import prepare_candidate
from gateway.local.demo_approver import prepare_demo_approver
from gateway.local.deployment import (
    BUNDLE,
    GATEWAY_PORT,
    OPA_CONFIG,
    OPA_PORT,
    OPA_SHADOW_PORT,
    gateway_environment,
)
from gateway.local.fake_palette import FakePaletteServer
from gateway.local.opa import OpaServer
from gateway.local.process import ManagedProcess, answers_200
from gateway.settings import Settings

__all__ = ["Topology", "TopologyConfig", "main"]


@dataclass(frozen=True)
class TopologyConfig:
    """Where the topology keeps its state and which ports it binds; tests pass free ports."""

    root: Path = field(default_factory=Path.cwd)
    state_dir: Path | None = None
    opa_port: int = OPA_PORT
    gateway_port: int = GATEWAY_PORT
    bundle: Path | None = None  # default: <root>/bundles/gateway.tar.gz, what `make bundle` builds
    verification_key: Path | None = None
    # From the environment (``Settings``): a configured cluster / Palette replaces the fakes.
    kubeconfig: Path | None = None
    kube_context: str | None = None
    palette_configured: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    # A candidate bundle (file or policy directory) a second OPA serves for the gateway's
    # shadow evaluation; none by default.
    shadow_bundle: Path | None = None
    shadow_verification_key: Path | None = None
    shadow_opa_port: int = OPA_SHADOW_PORT

    @property
    def state(self) -> Path:
        return (self.state_dir or self.root / "var").resolve()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TopologyConfig:
        base = cls(
            kubeconfig=settings.kubeconfig,
            kube_context=settings.kube_context,
            palette_configured=settings.palette_host is not None,
            shadow_bundle=settings.shadow_bundle,
            shadow_verification_key=settings.shadow_verification_key,
        )
        return dataclasses.replace(base, **overrides)


class _Sandbox:
    """``gateway sandbox up`` in ``state_dir`` as a child process: the same sandbox
    ``make sandbox`` runs (seeded once, objects kept across restarts). A sandbox already
    running in that directory is used as it is, and left running."""

    context = "sandbox"

    def __init__(self, state_dir: Path, log_path: Path) -> None:
        self.state_dir = state_dir
        self.kubeconfig_path = state_dir / "kubeconfig"
        self._ready_file = state_dir / "ready"
        self.process = ManagedProcess(
            [sys.executable, "-m", "gateway", "sandbox", "up", "--dir", str(state_dir)], log_path=log_path
        )
        self.shared = False

    @property
    def url(self) -> str:
        try:
            return self._ready_file.read_text().strip()
        except OSError:
            return "(not running)"

    def start(self, timeout: float = 120.0) -> None:
        if self._ready_file.exists() and _running(self.state_dir / "sandbox.pid"):
            self.shared = True
            return
        self.process.start_and_wait(self._ready_file.exists, timeout=timeout, what="the sandbox cluster")

    def stop(self) -> None:
        # `sandbox up` stops its components itself (each by pid) when it gets SIGTERM.
        self.process.stop(grace=60)


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _running(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


class Topology:
    """Starts the processes in dependency order; ``stop`` undoes whatever ``start`` did."""

    def __init__(self, config: TopologyConfig) -> None:
        self.config = config
        state = config.state
        logs = state / "logs"
        self.opa = OpaServer(
            config.bundle or config.root / BUNDLE,
            log_path=logs / "opa.log",
            port=config.opa_port,
            verification_key=config.verification_key,
            # OpaServer's default is error-only; the console decision log is logged at info,
            # as in the container, which runs at OPA's default level.
            extra_args=[f"--config-file={config.root / OPA_CONFIG}", "--log-level=info"],
        )
        self.shadow: OpaServer | None = None
        if config.shadow_bundle is not None:
            self.shadow = OpaServer(
                prepare_candidate(config.shadow_bundle, _made(state / "shadow")),
                log_path=logs / "opa-shadow.log",
                port=config.shadow_opa_port,
                verification_key=config.shadow_verification_key,
            )
        self.kube = _Sandbox(state / "sandbox", logs / "sandbox.log") if config.kubeconfig is None else None
        self.palette = (
            None
            if config.palette_configured
            else FakePaletteServer(api_key=secrets.token_urlsafe(24), log_path=logs / "fake-palette.log")
        )
        self.db_path = state / "gateway.db"
        self.tokens_file = state / "tokens.jsonl"
        # bob (sre) with an SSH key: approvals through the API, signed, out of the box.
        self.demo = prepare_demo_approver(state, self.tokens_file)
        self.gateway = ManagedProcess(
            [sys.executable, "-m", "gateway", "serve", "--transport", "http"],
            log_path=logs / "gateway.log",
            env=self.gateway_env(),
        )
        self._started: list[OpaServer | _Sandbox | FakePaletteServer | ManagedProcess] = []

    def _parts(self) -> list[OpaServer | _Sandbox | FakePaletteServer | None]:
        return [self.opa, self.shadow, self.kube, self.palette]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.gateway_port}"

    @property
    def mcp_url(self) -> str:
        return self.gateway_url + MCP_PATH

    def gateway_env(self) -> dict[str, str]:
        """The gateway's settings; the CLI (`gateway queue ...`) needs the same ones."""
        env = gateway_environment(self.opa.url)
        env |= {
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.config.gateway_port),
            "GATEWAY_DB_PATH": str(self.db_path),
            "GATEWAY_TOKENS_FILE": str(self.tokens_file),
        }
        if self.shadow is not None:
            # The topology runs the shadow OPA: the gateway must not start one of its own.
            env |= {"GATEWAY_SHADOW_OPA_URL": self.shadow.url, "GATEWAY_SHADOW_BUNDLE": ""}
        if self.kube is not None:
            env |= {
                "GATEWAY_KUBECONFIG": str(self.kube.kubeconfig_path),
                "GATEWAY_KUBE_CONTEXT": self.kube.context,
                # The sandbox kubeconfig also holds a restricted user's context for the same
                # cluster: policy data names clusters, so only the one cluster is offered.
                "GATEWAY_KUBE_CONTEXTS": self.kube.context,
            }
        if self.palette is not None:
            env |= self.palette.environment()
        if self.demo is not None:
            env |= self.demo.environment()
        return env | self.config.extra_env

    def cli_environment(self) -> dict[str, str]:
        """What a terminal needs for the CLI to reach this topology: the gateway's approvals
        API (as the demo approver, when there is one), and the database, tokens file and OPA
        that ``gateway audit …``, ``gateway token …`` and ``gateway queue --local`` use."""
        env = self.gateway_env()
        names = ("GATEWAY_OPA_URL", "GATEWAY_DB_PATH", "GATEWAY_TOKENS_FILE")
        cli = {name: env[name] for name in names} | {"GATEWAY_URL": self.gateway_url}
        if self.demo is not None:
            cli |= self.demo.client_environment(self.gateway_url)
        return cli

    def start(self, timeout: float = 180.0) -> None:
        try:
            for part in self._parts():
                if part is not None:
                    self._started.append(part)
                    part.start()
            self._started.append(self.gateway)
            self.gateway.start_and_wait(
                lambda: answers_200(f"{self.gateway_url}/readyz"),
                timeout=timeout,
                what=f"gateway on port {self.config.gateway_port}",
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self._started:
            part = self._started.pop()
            with contextlib.suppress(Exception):
                part.stop()

    def _cli_lines(self) -> list[str]:
        exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in self.cli_environment().items())
        if self.demo is None:
            who = "CLI      in the terminal you run `gateway` from (approvals with --local):"
            queue = "queue    .venv/bin/gateway queue list --local"
        else:
            who = (
                f"CLI      in the terminal you run `gateway` from, as approver {self.demo.subject} (sre); "
                f"approvals must be signed (allowed signers: {self.demo.allowed_signers}):"
            )
            queue = "queue    .venv/bin/gateway queue list   |   .venv/bin/gateway queue approve <id>"
        return [who, f"         export {exports}", queue]

    def _shadow_lines(self) -> list[str]:
        if self.shadow is None:
            return []
        return [
            f"shadow   OPA {self.shadow.url} serving {self.config.shadow_bundle} (disagreements: "
            "gateway log, gateway_shadow_disagreements_total on /metrics)"
        ]

    def summary(self) -> str:
        kube = (
            f"sandbox cluster {self.kube.url} (logs: {self.kube.state_dir / 'logs'})"
            if self.kube
            else f"kubeconfig {self.config.kubeconfig}"
        )
        palette = f"fake Palette {self.palette.url}" if self.palette else "Palette from PALETTE_HOST"
        return "\n".join(
            [
                f"OPA      {self.opa.url}  (decision log: {self.config.state / 'logs' / 'opa.log'})",
                *self._shadow_lines(),
                f"gateway  {self.mcp_url}",
                f"backends {kube}; {palette}",
                "tokens   .venv/bin/gateway token create --subject $USER --group sre",
                *self._cli_lines(),
                "Ctrl-C stops everything.",
            ]
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.local.topology", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="default: ./var")
    parser.add_argument("--opa-port", type=int, default=OPA_PORT)
    parser.add_argument("--gateway-port", type=int, default=GATEWAY_PORT)
    parser.add_argument("--bundle", type=Path, default=None, help=f"default: {BUNDLE}")
    parser.add_argument("--verification-key", type=Path, default=None, help="public key of a signed bundle")
    parser.add_argument(
        "--shadow-bundle",
        type=Path,
        default=None,
        help="a candidate bundle a shadow OPA serves beside the gateway",
    )
    args = parser.parse_args(argv)
    config = TopologyConfig.from_settings(
        Settings(),
        state_dir=args.state_dir,
        opa_port=args.opa_port,
        gateway_port=args.gateway_port,
        bundle=args.bundle,
        verification_key=args.verification_key,
        # Without --shadow-bundle, GATEWAY_SHADOW_BUNDLE (read into the settings) stands.
        **({"shadow_bundle": args.shadow_bundle} if args.shadow_bundle is not None else {}),
    )
    try:
        topology = Topology(config)
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        topology.start()
    except (GatewayError, RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(topology.summary(), flush=True)
    try:
        while not stopping.wait(timeout=1.0):
            if not topology.gateway.alive():
                print(f"gateway exited:\n{topology.gateway.tail()}", file=sys.stderr)
                return 1
    finally:
        topology.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
