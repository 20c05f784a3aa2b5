"""Drive the Kubernetes ToolSpecs the way ``gateway.pipeline`` does, without OPA: validate
the arguments, ``prepare`` into proposed actions, then ``execute`` with a decision."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.contracts import Decision, Obligations, PlannedCall, Principal
from gateway.tools import ExecutionContext, ToolSpec

T = TypeVar("T")
ALLOW = Decision(outcome="allow")
TESTER = Principal(subject="tester", transport="internal", authenticated=True)


def allow_with(*, max_log_lines: int | None = None) -> Decision:
    return Decision(outcome="allow", obligations=Obligations(max_log_lines=max_log_lines))


class ToolRunner:
    def __init__(self, specs: list[ToolSpec[Any]]) -> None:
        self.specs = {spec.name: spec for spec in specs}

    async def plan(self, tool: str, **arguments: Any) -> PlannedCall:
        spec = self.specs[tool]
        args = spec.args.model_validate(arguments)
        return spec.plan(args, await spec.prepare(args), TESTER)

    async def execute(self, call: PlannedCall, decision: Decision = ALLOW) -> Any:
        spec = self.specs[call.tool]
        args = spec.args.model_validate(call.call_args)
        return await spec.execute(args, ExecutionContext(call=call, decision=decision))

    async def call(self, tool: str, *, decision: Decision = ALLOW, **arguments: Any) -> Any:
        return await self.execute(await self.plan(tool, **arguments), decision)


async def eventually(check: Callable[[], Awaitable[T | None]], *, what: str, within: float = 90.0) -> T:
    """Poll ``check`` until it returns something: a state the controllers or kwok reach in
    their own time. Not a timing assertion: the bound only keeps a broken run from hanging."""
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        assert time.monotonic() < deadline, f"never happened within {within:.0f}s: {what}"
        await asyncio.sleep(0.5)
