"""The OPA sidecar as a native process serving a built bundle."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gateway.errors import ConfigError
from gateway.local.deployment import OPA_RUNTIME_ENV
from gateway.local.process import ManagedProcess, answers_200, free_port

__all__ = ["OpaServer", "build_bundle", "find_opa"]


def find_opa() -> str:
    """The ``opa`` binary: ``GATEWAY_OPA_BIN`` (set by the Makefile) or ``opa`` on PATH."""
    candidate = os.environ.get("GATEWAY_OPA_BIN") or shutil.which("opa")
    if not candidate or not os.access(candidate, os.X_OK):
        raise ConfigError("no opa binary: run `make setup`, or set GATEWAY_OPA_BIN")
    return candidate


class OpaServer:
    """``opa run --server`` on a loopback port with one bundle, ready once
    ``/health?bundles`` answers 200 (the bundle is activated), with the Go runtime
    settings of the container."""

    def __init__(
        self,
        bundle: Path,
        *,
        log_path: Path,
        port: int | None = None,
        verification_key: Path | None = None,
        decision_logs: bool = False,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        argv = [find_opa(), "run", "--server", f"--addr=127.0.0.1:{self.port}", "--log-level=error"]
        if verification_key is not None:
            argv += [f"--verification-key={verification_key}"]
        if decision_logs:
            argv += ["--set=decision_logs.console=true"]
        argv += [*(extra_args or []), "--bundle", str(bundle)]
        self.process = ManagedProcess(argv, log_path=log_path, env=dict(OPA_RUNTIME_ENV))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        return answers_200(f"{self.url}/health?bundles")

    def start(self, timeout: float = 30.0) -> None:
        self.process.start_and_wait(self.healthy, timeout=timeout, what=f"opa on port {self.port}")

    def stop(self) -> None:
        self.process.stop()


def build_bundle(rego_dir: Path, out: Path, *, revision: str, extra_args: list[str] | None = None) -> Path:
    """``opa build`` of ``rego_dir`` (tests and samples left out) into ``out``."""
    import subprocess

    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        find_opa(),
        "build",
        "-b",
        str(rego_dir),
        "--ignore",
        "*_test.rego",
        "--ignore",
        "samples",
    ]
    argv += ["--revision", revision, *(extra_args or []), "-o", str(out)]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        # `opa build` prints its errors on stdout.
        said = "\n".join(part.strip() for part in (completed.stderr, completed.stdout) if part.strip())
        raise RuntimeError(f"opa build failed:\n{said}")
    return out
