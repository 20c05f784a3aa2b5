"""``gateway sandbox up|down|seed`` as a user runs them: a foreground process that runs the
whole living cluster, stopped by ``down`` (or a signal), every component by its pid."""

from __future__ import annotations

import json
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

from gateway.local.cluster import SandboxCluster
from gateway.local.process import ComponentFailed

pytestmark = [pytest.mark.integration, pytest.mark.kube]

GATEWAY = [sys.executable, "-m", "gateway"]


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"sandbox exited early: {proc.stdout.read() if proc.stdout else ''!r}"
        assert time.monotonic() < deadline, "sandbox not ready in time"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for whoever inherited it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_using(path: Path) -> list[str]:
    """Command lines of running processes that mention ``path`` (a sandbox's state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(cmdline)
    return found


def _gateway(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATEWAY, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_sandbox_up_runs_a_living_seeded_cluster_until_down(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    proc = subprocess.Popen(
        [*GATEWAY, "sandbox", "up", "--dir", str(state)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(state / "ready", proc)
        config = yaml.safe_load((state / "kubeconfig").read_text())
        assert {c["name"] for c in config["contexts"]} == {"sandbox", "sandbox-restricted"}
        assert oct((state / "kubeconfig").stat().st_mode & 0o777) == "0o600"
        pids = json.loads((state / "pids").read_text())
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

        api = k8s_config.new_client_from_config(
            str(state / "kubeconfig"), context="sandbox", persist_config=False
        )
        core = k8s.CoreV1Api(api)
        labels = {ns.metadata.name: ns.metadata.labels for ns in core.list_namespace().items}
        assert labels["payments"]["environment"] == "production"
        pods = core.list_namespaced_pod("payments").items
        phases = {p.metadata.name.split("-")[0]: p.status.phase for p in pods}
        assert phases == {"api": "Running", "postgres": "Running"}
        api.close()

        second = _gateway("sandbox", "up", "--dir", str(state), timeout=60)
        assert second.returncode == 2
        assert "already uses" in second.stderr

        reseed = _gateway("sandbox", "seed", "--kubeconfig", str(state / "kubeconfig"))
        assert reseed.returncode == 0, reseed.stderr
        assert "seeded" in reseed.stdout
        large = _gateway(
            "sandbox", "seed", "--kubeconfig", str(state / "kubeconfig"), "--scale", "20", "--nodes", "2",
            "--namespaces", "2", "--wait", "120", timeout=180,
        )  # fmt: skip
        assert large.returncode == 0, large.stderr
        assert "seeding 20 pods over 2 namespaces on 2 simulated nodes" in large.stdout
        assert json.loads(large.stdout.splitlines()[-1])["pods_running"] == 20

        down = _gateway("sandbox", "down", "--dir", str(state), timeout=90)
        assert down.returncode == 0, down.stderr
        assert f"stopped the sandbox (pid {proc.pid})" in down.stdout
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    assert not [pid for pid in pids.values() if _alive(pid)]
    assert not (state / "ready").exists()
    assert not (state / "sandbox.pid").exists()
    assert _gateway("sandbox", "down", "--dir", str(state)).returncode == 2  # nothing left to stop


def test_down_stops_the_components_a_killed_sandbox_left_running(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    proc = subprocess.Popen(
        [*GATEWAY, "sandbox", "up", "--dir", str(state), "--no-seed"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(state / "ready", proc)
        pids = json.loads((state / "pids").read_text())
        proc.kill()  # no chance to stop anything: the components run on
        proc.wait(timeout=10)
        assert all(_alive(pid) for pid in pids.values())

        down = _gateway("sandbox", "down", "--dir", str(state), timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert down.returncode == 0, down.stderr
    assert "stopped what it left running: kwok (pid" in down.stdout
    assert not [name for name, pid in pids.items() if _alive(pid)]
    assert not _processes_using(state)


def _failing_binary(path: Path, message: str) -> Path:
    path.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 3\n")
    path.chmod(0o755)
    return path


def test_a_component_that_cannot_start_is_named_with_its_log_and_the_rest_is_stopped(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    broken = _failing_binary(tmp_path / "kube-scheduler", "scheduler: cannot load its configuration")

    result = _gateway("sandbox", "up", "--dir", str(state), env={"GATEWAY_KUBE_SCHEDULER_BIN": str(broken)})

    assert result.returncode == 1
    assert "kube-scheduler did not start: kube-scheduler exited during start-up" in result.stderr
    assert f"its log: {state.resolve() / 'logs' / 'kube-scheduler.log'}" in result.stderr
    assert "scheduler: cannot load its configuration" in result.stderr
    assert "everything already started was stopped" in result.stderr
    assert not _processes_using(state.resolve())  # etcd, kube-apiserver, the controller manager
    assert not (state / "ready").exists()
    assert not (state / "sandbox.pid").exists()


def test_the_last_component_failing_stops_the_four_started_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_KWOK_BIN", str(_failing_binary(tmp_path / "kwok", "kwok: no config")))
    cluster = SandboxCluster(tmp_path / "sandbox")

    with pytest.raises(ComponentFailed) as failed:
        cluster.start()

    assert failed.value.component == "kwok"
    assert failed.value.log_path == cluster.log_path("kwok")
    assert "kwok: no config" in str(failed.value)
    started = [cluster.api.etcd, cluster.api.apiserver, *(c.process for c in cluster.components[:2])]
    assert all(p is not None and not p.alive() for p in started)
    assert not _processes_using(cluster.state_dir)


def test_a_missing_binary_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    result = _gateway(
        "sandbox", "up", "--dir", str(tmp_path / "s"), env={"GATEWAY_KWOK_BIN": str(tmp_path / "nowhere")}
    )
    assert result.returncode == 2
    assert "no kwok binary: run `make setup`, or set GATEWAY_KWOK_BIN" in result.stderr
    assert not (tmp_path / "s" / "logs").exists()
