"""``gateway sandbox up|seed`` as a user runs them: a foreground process stopped by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

pytestmark = [pytest.mark.integration, pytest.mark.kube]

GATEWAY = [sys.executable, "-m", "gateway"]


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"sandbox exited early: {proc.stdout.read() if proc.stdout else ''!r}"
        assert time.monotonic() < deadline, "sandbox not ready in time"
        time.sleep(0.2)


def test_sandbox_up_serves_a_seeded_cluster_until_interrupted(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    proc = subprocess.Popen(
        [*GATEWAY, "sandbox", "up", "--dir", str(state)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(state / "ready", proc)
        config = yaml.safe_load((state / "kubeconfig").read_text())
        assert {c["name"] for c in config["contexts"]} == {"sandbox", "sandbox-restricted"}
        assert oct((state / "kubeconfig").stat().st_mode & 0o777) == "0o600"

        api = k8s_config.new_client_from_config(
            str(state / "kubeconfig"), context="sandbox", persist_config=False
        )
        labels = {ns.metadata.name: ns.metadata.labels for ns in k8s.CoreV1Api(api).list_namespace().items}
        assert labels["payments"]["environment"] == "production"
        assert labels["dev"]["environment"] == "development"
        assert k8s.AppsV1Api(api).read_namespaced_stateful_set("postgres", "payments").spec.replicas == 1
        api.close()

        second = subprocess.run(
            [*GATEWAY, "sandbox", "up", "--dir", str(state)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert "already uses" in second.stderr

        reseed = subprocess.run(
            [*GATEWAY, "sandbox", "seed", "--kubeconfig", str(state / "kubeconfig")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reseed.returncode == 0, reseed.stderr
        assert "seeded" in reseed.stdout
    finally:
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    assert not (state / "ready").exists()
    assert not (state / "sandbox.pid").exists()
