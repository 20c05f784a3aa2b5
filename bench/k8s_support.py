"""What the Kubernetes benchmarks share: the gateway served over HTTP against a cluster,
with a bearer token for the ``sre`` group, and the percentile they report."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from gateway.auth import append_token
from gateway.local.process import ManagedProcess, free_port, wait_until

__all__ = ["ServedGateway", "percentile"]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class ServedGateway:
    """``gateway serve --transport http`` on a free port, state under ``work``."""

    def __init__(
        self, work: Path, *, opa_url: str, kubeconfig: Path, source: Path | None = None, **settings: str
    ) -> None:
        """``source``: run the ``gateway`` package of that source tree instead of this one's
        (a ``git worktree`` of an earlier commit, to measure a change against its past)."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.token = append_token(work / "tokens", subject="bench", groups=("sre",))
        env = {
            "GATEWAY_TRANSPORT": "http",
            "GATEWAY_PORT": str(port),
            "GATEWAY_OPA_URL": opa_url,
            "GATEWAY_KUBECONFIG": str(kubeconfig),
            "GATEWAY_KUBE_CONTEXT": "sandbox",
            "GATEWAY_DB_PATH": str(work / "gateway.db"),
            "GATEWAY_TOKENS_FILE": str(work / "tokens"),
            **settings,
        }
        argv = [sys.executable, "-m", "gateway", "serve", "--log-level", "WARNING"]
        if source is not None:
            # -P: the working directory does not come first on sys.path; PYTHONPATH does.
            argv.insert(1, "-P")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(source), env.get("PYTHONPATH"))))
        self.process = ManagedProcess(argv, log_path=work / "gateway.log", env=env)

    def start(self) -> None:
        self.process.start()
        wait_until(lambda: _ready(self.url), timeout=60, what="gateway")

    def stop(self) -> None:
        self.process.stop()
