"""What every Palette tool shares: the client, the environment tag key, the core's policy
check, and the facts about a cluster that come from Palette rather than the caller.

The Palette tools are classes over one ``PaletteBackend`` (``tools_read``, ``tools_write``),
shaped like the Kubernetes tools over ``KubeBackend``: ``prepare_*`` methods resolve what
policy judges, the others execute what it allowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from gateway.contracts import Target
from gateway.errors import Conflict
from gateway.palette.client import PaletteClient
from gateway.palette.targets import resolve_cluster
from gateway.settings import Settings
from gateway.tools import ExecutionContext, backend_spec

__all__ = ["CheckFn", "PaletteBackend", "palette_spec"]

JSON = dict[str, Any]

CheckFn = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""``(tool, arguments) -> decision JSON``: the core's policy check, nothing executed."""


class PaletteBackend:
    """Shared state of the Palette tools; one per gateway process."""

    def __init__(self, client: PaletteClient, settings: Settings, check: CheckFn) -> None:
        self.client = client
        self.label = settings.environment_label
        self.check = check

    async def cluster(self, uid: str) -> tuple[Target, JSON]:
        """The live ``v1SpectroCluster`` and its target; ``NotFound`` when there is none."""
        return await resolve_cluster(self.client, uid, self.label)

    async def judged_cluster(self, uid: str, ctx: ExecutionContext) -> JSON:
        """The live cluster, if its environment tag is still the one policy judged: an
        approval covers the cluster as it was. Raises ``Conflict`` otherwise."""
        target, cluster = await self.cluster(uid)
        judged = ctx.call.actions[0].target.environment if ctx.call.actions else None
        if target.environment != judged:
            raise Conflict(
                f"cluster {uid}'s environment tag changed since the call was judged "
                f"({judged!r} -> {target.environment!r}); nothing was done, ask again"
            )
        return cluster


palette_spec = partial(backend_spec, "palette")
"""A Palette ``ToolSpec``."""
