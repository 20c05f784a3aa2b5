"""kwok's configuration in the sandbox: which nodes it simulates, how they and their pods
behave (``kwok_stages.yaml``), and the container logs it serves.

kwok manages the nodes annotated ``kwok.x-k8s.io/node=fake`` and every pod the scheduler
binds to them. It answers on one loopback port for all of them, as their kubelet: node
leases, and the kubelet API the API server proxies ``pods/{name}/log`` to. The logs come
from files written here, one per container name (``ClusterLogs``), in the CRI log format
the kubelet reads, so ``k8s_logs`` returns them through the real API server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MANAGED_NODE_ANNOTATION", "SIMULATE_ANNOTATION", "SIMULATIONS", "write_config"]

JSON = dict[str, Any]
MANAGED_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SIMULATE_ANNOTATION = "sandbox.policy-gateway.dev/simulate"
SIMULATIONS = {
    "Node": ("not-ready",),
    "Pod": ("crash-loop", "oom-kill", "image-pull-backoff"),
}

# What each seeded container "printed"; containers of other names print _DEFAULT_LOG.
_LOGS: dict[str, list[str]] = {
    "web": [
        "stdout nginx: configuration file /etc/nginx/nginx.conf test is successful",
        'stdout 10.244.0.1 - - "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.30"',
        'stdout 10.244.0.7 - - "GET / HTTP/1.1" 200 615 "-" "curl/8.5.0"',
        'stdout 10.244.0.1 - - "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.30"',
    ],
    "worker": [
        "stdout worker 2.3.1 starting, queue=orders concurrency=4",
        "stdout connecting to redis://redis.dev.svc:6379",
        "stderr ERROR dial tcp 10.96.0.42:6379: connect: connection refused",
        "stderr ERROR giving up after 3 attempts",
        "stderr panic: queue backend unavailable",
    ],
    "api": [
        'stdout {"level":"info","msg":"listening","addr":":8080"}',
        'stdout {"level":"info","msg":"connected to postgres","host":"postgres.payments.svc"}',
        'stdout {"level":"info","msg":"request","path":"/v1/payments","status":200,"ms":12}',
    ],
    "postgres": [
        "stdout LOG:  database system was shut down at 2024-01-01 00:00:00 UTC",
        "stdout LOG:  database system is ready to accept connections",
    ],
}
_DEFAULT_LOG = ["stdout container started", "stdout ready"]


def _stages() -> list[JSON]:
    text = files("gateway.local").joinpath("kwok_stages.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _write_log(path: Path, lines: list[str], now: datetime) -> None:
    """CRI format: ``<RFC 3339 nano> <stream> F <text>``, a second apart, ending now."""
    start = now - timedelta(seconds=len(lines))
    out = []
    for i, line in enumerate(lines):
        stream, _, text = line.partition(" ")
        stamp = (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
        out.append(f"{stamp} {stream} F {text}\n")
    path.write_text("".join(out))


def _cluster_logs(directory: Path) -> JSON:
    logs_dir = directory / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    entries: list[JSON] = []
    for container, lines in _LOGS.items():
        _write_log(logs_dir / f"{container}.log", lines, now)
        entries.append({"containers": [container], "logsFile": str(logs_dir / f"{container}.log")})
    _write_log(logs_dir / "default.log", _DEFAULT_LOG, now)
    # An entry without containers is kwok's fallback for any other container name.
    entries.append({"logsFile": str(logs_dir / "default.log")})
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterLogs",
        "metadata": {"name": "sandbox-container-logs"},
        "spec": {"logs": entries},
    }


def write_config(directory: Path) -> Path:
    """Write ``kwok.yaml`` (configuration, Stages, ClusterLogs) and the log files into
    ``directory``; the path to pass as ``--config``."""
    directory.mkdir(parents=True, exist_ok=True)
    configuration = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        # Enough workers that thousands of pods (`gateway sandbox seed --scale`) start
        # within a minute or two; kwok's default is 4 each.
        "options": {"podPlayStageParallelism": 16, "nodePlayStageParallelism": 8, "nodeLeaseParallelism": 8},
    }
    documents = [configuration, *_stages(), _cluster_logs(directory)]
    path = directory / "kwok.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path
