"""Stopping a sandbox from another terminal: ``gateway sandbox down``.

A running ``gateway sandbox up`` records its own pid in ``<dir>/sandbox.pid`` and each
component's in ``<dir>/pids``. ``stop_sandbox`` sends it SIGTERM and waits: it stops its
components in reverse order and removes both files. If it is gone or does not stop in
time, the components still running are stopped by their recorded pids, each only after
checking that the pid still runs that component's binary (pids are reused).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

__all__ = ["running_pid", "stop_sandbox"]

_KILL_GRACE = 10.0


def _alive(pid: int) -> bool:
    """Running, and not a zombie: a process that exited but whose parent has not reaped it
    yet is stopped as far as we are concerned."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def running_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive (a stale file is ignored)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _runs(pid: int, component: str) -> bool:
    """Whether ``pid`` is still that component (its command line names it)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return os.path.basename(argv0.decode(errors="replace")) == component


def _stop_leftovers(pids_file: Path) -> list[str]:
    """Components recorded in ``pids_file`` that still run: SIGTERM, then SIGKILL."""
    try:
        recorded = {str(k): int(v) for k, v in json.loads(pids_file.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return []
    stopped = []
    for component, pid in reversed(list(recorded.items())):
        if not _runs(pid, component):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # each component leads its own process group
        if not _wait_gone(pid, _KILL_GRACE):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stopped.append(f"{component} (pid {pid})")
    pids_file.unlink(missing_ok=True)
    return stopped


def stop_sandbox(state_dir: Path, *, timeout: float = 60.0) -> str:
    """Stop the sandbox in ``state_dir``; what was stopped. ``LookupError`` when nothing runs."""
    pid_file, pids_file = state_dir / "sandbox.pid", state_dir / "pids"
    pid = running_pid(pid_file)
    if pid is None and not pids_file.exists():
        raise LookupError(f"no sandbox is running in {state_dir}")
    said = []
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        if _wait_gone(pid, timeout):
            said.append(f"stopped the sandbox (pid {pid})")
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            said.append(f"the sandbox (pid {pid}) did not stop within {timeout:.0f}s: killed it")
    leftovers = _stop_leftovers(pids_file)
    if leftovers:
        said.append("stopped what it left running: " + ", ".join(leftovers))
    pid_file.unlink(missing_ok=True)
    return "; ".join(said)
