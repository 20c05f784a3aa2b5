"""`gateway audit export --follow`: a real CLI process streams the audit log as a real
gateway writes it, a receiver resumes from a sequence number, and the receiver's check
from docs/operations.md (run as written) accepts the stream and refuses gaps and edits."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from queue_harness import ALICE, TOOL, cli_env, gateway_stack, queue_opa, settings_for
from storage_fixtures import Backend

from gateway.local.opa import OpaServer

pytestmark = pytest.mark.integration
_ = queue_opa

ROOT = Path(__file__).resolve().parents[2]
GENESIS = "0" * 64

Accept = Callable[[str, int, str], tuple[int, str]]


@pytest.fixture(scope="module")
def accept() -> Accept:
    """The receiver's check, exactly as docs/operations.md shows it."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    match = re.search(r"<!-- receiver-check -->\s*```python\n(.*?)```", doc, re.DOTALL)
    assert match, "docs/operations.md lost its receiver check"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "docs/operations.md", "exec"), namespace)
    check: Accept = namespace["accept"]
    return check


EXPORT = [sys.executable, "-m", "gateway", "audit", "export", "--jsonl"]


def _follow(db: Backend, opa: OpaServer, *args: str) -> subprocess.Popen[str]:
    """``gateway audit export --jsonl --follow`` as its own process, stdout piped."""
    return subprocess.Popen(
        [*EXPORT, "--follow", "--poll-seconds", "0.1", *args],
        env=cli_env(db, opa, "one", "bob"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Follower:
    """``gateway audit export --jsonl --follow`` as its own process; lines arrive on a queue."""

    def __init__(self, db: Backend, opa: OpaServer, *args: str) -> None:
        self.process = _follow(db, opa, *args)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def take(self, count: int, timeout: float = 30.0) -> list[str]:
        return [self.lines.get(timeout=timeout) for _ in range(count)]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def db(backend: Backend, queue_opa: OpaServer) -> Backend:
    """A gateway database on either backend with two records in its audit log."""
    _calls(backend, queue_opa, 2)
    return backend


def _calls(db: Backend, opa: OpaServer, count: int) -> None:
    """``count`` calls through a real gateway under a change freeze: one decision record each."""

    async def work() -> None:
        async with gateway_stack(settings_for(db, opa, "freeze"), db.workdir / "append.log") as stack:
            for i in range(count):
                await stack.gateway.call(TOOL, {"line": f"line {i}"}, ALICE)

    asyncio.run(work())


def _receive(accept: Accept, lines: list[str], seq: int = 0, head: str = GENESIS) -> tuple[int, str]:
    for line in lines:
        seq, head = accept(line, seq, head)
    return seq, head


def test_follow_streams_new_records_as_they_are_written_and_stops_cleanly(
    db: Backend, queue_opa: OpaServer, accept: Accept
) -> None:
    follower = Follower(db, queue_opa)
    try:
        backlog = follower.take(2)
        seq, head = _receive(accept, backlog)
        assert seq == 2
        _calls(db, queue_opa, 3)  # written while the follower runs
        seq, head = _receive(accept, follower.take(3), seq, head)
        assert seq == 5
        assert follower.lines.empty()
    finally:
        code = follower.stop()
    assert code == 0
    assert json.loads(backlog[0])["prev_hash"] == GENESIS


def test_a_receiver_resumes_from_the_last_sequence_number_it_holds(
    db: Backend, queue_opa: OpaServer, accept: Accept, tmp_path: Path
) -> None:
    first = Follower(db, queue_opa)
    try:
        seq, head = _receive(accept, first.take(2))
    finally:
        first.stop()
    _calls(db, queue_opa, 2)  # written while nobody follows
    resumed = Follower(db, queue_opa, "--since-seq", str(seq))
    try:
        lines = resumed.take(2)
    finally:
        resumed.stop()
    assert [json.loads(line)["seq"] for line in lines] == [3, 4]
    assert _receive(accept, lines, seq, head)[0] == 4

    # Without --follow, --since-seq appends what is new to an archive file and returns.
    archive = tmp_path / "archive.jsonl"
    archive.write_text("\n".join(lines[:1]) + "\n")
    done = subprocess.run(
        [*EXPORT, "--since-seq", "3", "--output", str(archive)],
        env=cli_env(db, queue_opa, "one", "bob"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "exported 1 records" in done.stderr
    assert _receive(accept, archive.read_text().splitlines(), seq, head)[0] == 4


def test_the_receivers_check_refuses_a_gap_an_edit_and_a_foreign_chain(
    db: Backend, queue_opa: OpaServer, accept: Accept
) -> None:
    follower = Follower(db, queue_opa)
    try:
        first, second = follower.take(2)
    finally:
        follower.stop()
    seq, head = accept(first, 0, GENESIS)
    with pytest.raises(ValueError, match="expected record 1"):
        accept(second, 0, GENESIS)  # record 1 went missing on the way
    edited = json.loads(second)
    edited["subject"] = "mallory"
    with pytest.raises(ValueError, match="does not match its hash"):
        accept(json.dumps(edited), seq, head)
    with pytest.raises(ValueError, match="does not continue the chain"):
        accept(second, seq, "f" * 64)
    assert accept(second, seq, head)[0] == 2


def test_a_reader_that_goes_away_ends_the_export_quietly(db: Backend, queue_opa: OpaServer) -> None:
    # `gateway audit export --jsonl --follow | head -1`
    follower = _follow(db, queue_opa)
    assert follower.stdout is not None
    follower.stdout.readline()
    follower.stdout.close()
    _calls(db, queue_opa, 2)  # the next write hits the closed pipe
    assert follower.wait(timeout=30) == 0
    assert follower.stderr is not None
    assert "Traceback" not in follower.stderr.read()
