"""Shared pieces of the gateway integration tests: an in-memory echo backend and
purpose-built test policies served by the real ``opa`` binary."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.contracts import Target
from gateway.errors import Forbidden, NotFound
from gateway.local.opa import OpaServer, build_bundle
from gateway.runtime import CheckFn, ToolSource
from gateway.settings import Settings
from gateway.tools import ExecutionContext, Prepared, ToolSpec

# The test policy: reads allowed (with a redact obligation on /token), deletes denied,
# writes need one approval (self-approval allowed) and are allowed once approved.
TEST_POLICY = """
package gateway

_reason(code, effect, message) := {
	"code": code, "rule": "test_rule", "severity": "high", "effect": effect, "message": message,
}

decision := {"outcome": "deny", "reasons": [_reason("T-DELETE", "deny", "deletes are not allowed here")]} if {
	input.effect == "delete"
} else := {
	"outcome": "allow",
	"reasons": [],
	"obligations": {"redact": ["/token"], "max_log_lines": 10},
	"warnings": [_reason("T-WARN", "warn", "reads are watched")],
} if {
	input.effect == "read"
} else := {"outcome": "allow", "approval": _approval} if {
	input.effect == "write"
	count(input.approvals) > 0
} else := {
	"outcome": "needs_approval",
	"reasons": [_reason("T-WRITE", "needs_approval", "writes need a human")],
	"approval": _approval,
} if {
	input.effect == "write"
}

_approval := {"min_approvals": 1, "approver_groups": [], "ttl_seconds": 600, "allow_self_approval": true}
"""


def serve_policy(
    tmp: Path, rego: str, *, revision: str = "test-rev", path: str = "gateway", decision_logs: bool = False
) -> OpaServer:
    """Build ``rego`` into a bundle and start a real OPA serving it (caller stops it)."""
    src = tmp / "policy"
    (src / path).mkdir(parents=True, exist_ok=True)
    (src / path / "policy.rego").write_text(rego)
    bundle = build_bundle(src, tmp / "bundle.tar.gz", revision=revision)
    server = OpaServer(bundle, log_path=tmp / "opa.log", decision_logs=decision_logs)
    server.start()
    return server


@contextmanager
def running_policy(tmp: Path, rego: str = TEST_POLICY, **kwargs: Any) -> Iterator[OpaServer]:
    server = serve_policy(tmp, rego, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def settings_for(opa_url: str, tmp: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "opa_url": opa_url,
        "db_path": tmp / "gateway.db",
        "subject": "alice",
        "groups": ("sre",),
        # The shipped 0.5 s bound is for a quiet sidecar; a shared CI machine can stall the
        # test OPA longer, and a fail-closed deny would then fail a test about something else.
        # Tests of the timeout itself set their own.
        "opa_timeout_seconds": 5.0,
    }
    fields.update(overrides)
    return Settings(**fields)


class EchoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=10_000, description="What to echo back.")
    namespace: str = Field(default="dev", pattern=r"^[a-z0-9-]+$", description="Namespace of the echo.")


class ScaleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63, description="Name of the echo.")
    replicas: int = Field(ge=0, le=100, description="Desired replicas.")


class EchoBackend:
    """An in-memory backend: reads echo, writes record what they did, delete is refused by policy."""

    def __init__(self) -> None:
        self.executed: list[dict[str, Any]] = []
        self.prepared = 0
        self.checks: list[dict[str, Any]] = []
        self.check: CheckFn | None = None

    async def _prepare_read(self, args: EchoArgs) -> list[Prepared]:
        self.prepared += 1
        return [Prepared(target=Target(cluster="mem", namespace=args.namespace, kind="Echo", name="echo"))]

    async def _read(self, args: EchoArgs, ctx: ExecutionContext) -> dict[str, Any]:
        self.executed.append({"tool": "echo_read", "text": args.text})
        return {
            "text": args.text,
            "token": "visible-only-without-obligation",
            "secret": {"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "hunter2hunter2"}},
            "max_log_lines": ctx.decision.obligations.max_log_lines,
        }

    async def _prepare_scale(self, args: ScaleArgs) -> list[Prepared]:
        self.prepared += 1
        if args.name == "missing":
            raise NotFound("echo 'missing' does not exist")
        if args.name == "forbidden":
            raise Forbidden("you may not scale 'forbidden'")
        if args.name == "crash":
            raise RuntimeError("secret internal detail s3cr3t")
        target = Target(cluster="mem", namespace="dev", kind="Echo", name=args.name)
        return [
            Prepared(
                target=target,
                current={"spec": {"replicas": 1}},
                object={"spec": {"replicas": args.replicas}},
            )
        ]

    async def _scale(self, args: ScaleArgs, ctx: ExecutionContext) -> dict[str, Any]:
        self.executed.append({"tool": "echo_scale", "name": args.name, "replicas": args.replicas})
        return {"name": args.name, "replicas": args.replicas}

    async def _delete(self, args: ScaleArgs, ctx: ExecutionContext) -> dict[str, Any]:
        self.executed.append({"tool": "echo_delete", "name": args.name})
        return {"deleted": args.name}

    async def _validate(self, args: EchoArgs, ctx: ExecutionContext) -> dict[str, Any]:
        assert self.check is not None
        verdict = await self.check("echo_scale", {"name": args.text, "replicas": 3})
        self.checks.append(verdict)
        return {"verdict": verdict["outcome"]}

    def specs(self) -> list[ToolSpec[Any]]:
        return [
            ToolSpec(
                name="echo_read",
                title="Echo",
                description="Echo a text back.",
                backend="kubernetes",
                operation="get",
                effect="read",
                args=EchoArgs,
                prepare=self._prepare_read,
                execute=self._read,
            ),
            ToolSpec(
                name="echo_scale",
                title="Scale an echo",
                description="Scale an echo.",
                backend="kubernetes",
                operation="scale",
                effect="write",
                args=ScaleArgs,
                prepare=self._prepare_scale,
                execute=self._scale,
                idempotent=True,
            ),
            ToolSpec(
                name="echo_delete",
                title="Delete an echo",
                description="Delete an echo.",
                backend="kubernetes",
                operation="delete",
                effect="delete",
                args=ScaleArgs,
                prepare=self._prepare_scale,
                execute=self._delete,
            ),
            ToolSpec(
                name="echo_validate",
                title="Validate an echo",
                description="What policy would say about scaling an echo.",
                backend="kubernetes",
                operation="validate",
                effect="read",
                args=EchoArgs,
                prepare=self._prepare_read,
                execute=self._validate,
            ),
        ]

    def source(self) -> ToolSource:
        @asynccontextmanager
        async def open_backend(settings: Settings, check: CheckFn) -> AsyncIterator[list[ToolSpec[Any]]]:
            self.check = check
            yield self.specs()

        return open_backend


class SlowOpa:
    """A tiny HTTP server that accepts the request and answers only after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(self.delay)
            body = b'{"result": {"outcome": "allow"}}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            writer.write(body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> SlowOpa:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def rsa_key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """An RSA key pair made by ``openssl`` (private and public PEM), to sign and verify bundles."""
    private, public = directory / f"{name}.pem", directory / f"{name}.pub"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(private)],
        check=True,
        capture_output=True,
    )
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    return private, public
