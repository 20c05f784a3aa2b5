"""What a backend contributes: one ``ToolSpec`` per tool, kept in a ``ToolRegistry``.

A spec says what the tool is (name, documentation, arguments model, fixed effect) and
gives the two halves the decision path calls around the policy: ``prepare`` resolves the
target and builds the before- and after-images without changing anything; ``execute``
performs the call once policy allowed it. Backends never talk to OPA, the queue or the
audit log: ``gateway.pipeline`` does, for every tool alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from mcp_types import ToolAnnotations
from pydantic import BaseModel

from gateway.changes import Change, ChangeLog
from gateway.contracts import (
    Backend,
    Decision,
    Effect,
    History,
    JSONObject,
    PlannedCall,
    Principal,
    ProposedAction,
    Target,
)
from gateway.errors import UnknownTool

__all__ = ["ExecutionContext", "Prepared", "Reverser", "ToolRegistry", "ToolSpec", "backend_spec"]

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True)
class Prepared:
    """One proposed action's backend-specific half, as ``prepare`` resolves it.

    ``policy_args`` replaces the validated arguments in the proposed action when some of
    them must not reach OPA as they are (a manifest's text: ``object`` has it parsed).
    ``backend`` and ``effect``, when set, replace the spec's for this action: a rollback
    (``gateway_rollback``) judges each inverse as what it does where it does it (a
    Kubernetes delete, a Palette write), so the rules about that backend and effect apply.
    """

    target: Target
    object: JSONObject | None = None
    current: JSONObject | None = None
    policy_args: JSONObject | None = None
    backend: Backend | None = None
    effect: Effect | None = None


@dataclass(frozen=True)
class ExecutionContext:
    """What ``execute`` may rely on: the call exactly as judged, and the decision that
    allowed it (its obligations bound the result, e.g. ``max_log_lines``). A write reports
    what it changed on ``changes`` (``gateway.changes``): the journal keeps it for undo."""

    call: PlannedCall
    decision: Decision
    changes: ChangeLog = field(default_factory=ChangeLog)


class Reverser(Protocol):
    """How a backend undoes its changes (``gateway_rollback``): ``prepare`` builds the
    inverse of a journal's changes as proposed actions, reading the live objects and
    changing nothing (raises ``BackendError`` when they drifted since the write, unless
    ``force``); ``execute`` performs the judged inverse, guarded, reporting its own
    changes on ``ctx.changes``."""

    async def prepare(self, changes: Sequence[Change], force: bool) -> list[Prepared]: ...

    async def execute(self, changes: Sequence[Change], ctx: ExecutionContext) -> Any: ...


@dataclass(frozen=True)
class ToolSpec(Generic[ArgsT]):
    """A tool as the gateway registers it with MCP and runs it through policy.

    ``args`` is the arguments contract: its fields become the tool's input schema and
    the typed signature of the MCP tool function. ``effect`` is fixed here, by the
    gateway, whatever the caller claims.
    """

    name: str
    title: str
    description: str
    backend: Backend
    operation: str
    effect: Effect
    args: type[ArgsT]
    prepare: Callable[[ArgsT], Awaitable[list[Prepared]]]
    execute: Callable[[ArgsT, ExecutionContext], Awaitable[Any]]
    idempotent: bool = False
    open_world: bool = True
    meta: dict[str, Any] = field(default_factory=dict)
    speculative: bool = False
    """A read whose ``execute`` uses the judged call and never the decision: with
    ``Settings.speculative_reads`` it may start while policy decides (``gateway.pipeline``)."""
    # How this tool's changes are undone (writes only; one per backend, shared by its writes).
    undo: Reverser | None = None

    def plan(
        self, args: ArgsT, prepared: list[Prepared], principal: Principal, history: History | None = None
    ) -> PlannedCall:
        """The call policy will judge: one proposed action per ``Prepared``, with this spec's
        backend, operation and effect, whatever the caller claims, and the caller's recent
        activity (``gateway.history``) when it was counted."""
        call_args = args.model_dump(mode="json")
        actions = tuple(
            ProposedAction(
                tool=self.name,
                backend=p.backend or self.backend,
                operation=self.operation,
                effect=p.effect or self.effect,
                target=p.target,
                args=p.policy_args if p.policy_args is not None else call_args,
                object=p.object,
                current=p.current,
                principal=principal,
                history=history,
            )
            for p in prepared
        )
        return PlannedCall(tool=self.name, call_args=call_args, actions=actions)

    @property
    def annotations(self) -> ToolAnnotations:
        read_only = self.effect == "read"
        return ToolAnnotations(
            title=self.title,
            read_only_hint=read_only,
            destructive_hint=None if read_only else self.effect == "delete" or not self.idempotent,
            idempotent_hint=True if read_only else self.idempotent,
            open_world_hint=self.open_world,
        )


_PREFIXES: dict[Backend, str] = {"kubernetes": "k8s_", "palette": "palette_", "gateway": "gateway_"}


def backend_spec(
    backend: Backend,
    name: str,
    title: str,
    description: str,
    args: type[Any],
    prepare: Any,
    execute: Any,
    *,
    effect: Effect = "read",
    idempotent: bool = False,
    speculative: bool = False,
    undo: Reverser | None = None,
) -> ToolSpec[Any]:
    """A backend's ``ToolSpec``: the operation is the tool's name without the backend's
    prefix (``k8s_scale`` scales, ``palette_delete_cluster`` deletes a cluster)."""
    return ToolSpec(
        name=name,
        title=title,
        description=description,
        backend=backend,
        operation=name.removeprefix(_PREFIXES[backend]),
        effect=effect,
        args=args,
        prepare=prepare,
        execute=execute,
        idempotent=idempotent,
        speculative=speculative and effect == "read",
        undo=undo,
    )


class ToolRegistry:
    """The tools a gateway serves, by name. Registration happens once, at startup."""

    def __init__(self) -> None:
        self._specs: dict[str, ToolSpec[Any]] = {}

    def register(self, spec: ToolSpec[Any]) -> None:
        if spec.name in self._specs:
            raise ValueError(f"tool {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def extend(self, specs: list[ToolSpec[Any]]) -> None:
        for spec in specs:
            self.register(spec)

    def get(self, name: str) -> ToolSpec[Any]:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownTool(f"unknown tool {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ToolSpec[Any]]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def reversers(self) -> dict[str, Reverser]:
        """How each backend's changes are undone, from its write tools' specs."""
        return {spec.backend: spec.undo for spec in self._specs.values() if spec.undo is not None}
