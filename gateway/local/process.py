"""A child process on a loopback port, started and stopped by pid, with a readiness probe."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["ComponentFailed", "ManagedProcess", "answers_200", "free_port", "terminate", "wait_until"]


class ComponentFailed(RuntimeError):
    """A local server that did not start: which one, why, and where its log is.

    Raised by whatever starts several processes after it stopped those already started;
    the message ends with the last lines of the component's log.
    """

    def __init__(self, component: str, log_path: Path, reason: str, tail: str = "") -> None:
        self.component = component
        self.log_path = log_path
        self.reason = reason
        message = f"{component} did not start: {reason.splitlines()[0] if reason else 'unknown'}\n"
        message += f"  its log: {log_path}"
        if tail:
            message += "\n  last lines:\n" + "\n".join(f"    {line}" for line in tail.splitlines())
        super().__init__(message)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_200(url: str) -> bool:
    """Whether a GET of ``url`` (a loopback URL we built) answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def terminate(
    proc: subprocess.Popen[bytes], *, grace: float, first: signal.Signals = signal.SIGTERM, group: bool = True
) -> None:
    """``first`` to ``proc`` (to its process group with ``group``), then SIGKILL to the group
    if it has not exited within ``grace`` seconds. Nothing when it has exited already."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, first)
        else:
            os.kill(proc.pid, first)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


def wait_until(probe: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``probe`` until it returns true; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} was not ready within {timeout:.0f}s")


class ManagedProcess:
    """One child process in its own process group, its output in a log file.

    Stopping sends SIGTERM to the group, then SIGKILL after ``grace`` seconds, so a
    child's own children never outlive a test run.
    """

    def __init__(self, argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("process not started")
        return self._proc.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self._env or {})},
                start_new_session=True,
            )

    def start_and_wait(self, probe: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Start, then poll ``probe`` until it answers; a child that exits meanwhile fails at
        once with the end of its log instead of after the whole timeout."""
        self.start()

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{what} exited during start-up:\n{self.tail()}")
            return probe()

        wait_until(ready, timeout=timeout, what=what)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The end of the process's log, for error messages when it fails to start."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        if self._proc is not None:
            terminate(self._proc, grace=grace)

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, for tests that need one."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
