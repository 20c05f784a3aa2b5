"""Shadow policy: every live decision asked again of a candidate bundle, off the request path.

``ShadowEvaluator`` is a decision observer (``gateway.observation``): the policy client tells
it of each decision OPA produced, and it puts the action on a bounded queue and returns.
Worker tasks ask the shadow OPA (``Settings.shadow_opa_url``, a second OPA process serving
the candidate) the same question with a client of their own, compare the answers
(``gateway.transitions``) and count. They ask in batches (``PolicyClient.evaluate_batch``:
what queued within ``_LINGER_SECONDS``, up to ``_BATCH``, in one request), because the
workers share the event loop with live calls: one request per decision costs the loop an
HTTP round trip per call. Measured on a shared 2-core machine at 8 concurrent calls, live
p50 with the shadow on was 1.34-1.46x recording alone with one request per decision,
1.01-1.08x with batches.

- ``gateway_shadow_evaluations_total{result}``: agree, disagree, error (the shadow OPA failed
  or answered malformed), dropped (the queue was full: the live call never waits);
- ``gateway_shadow_disagreements_total{from,to}``: live outcome → shadow outcome
  (from == to when only reasons, approval terms or warn/dryrun findings differ).

Each disagreement is logged at WARNING with both decisions, scrubbed like audit details
(``gateway.audit.scrub``), at most ``_LOG_PER_SECOND`` lines a second (the counters count
all). Nothing here changes what the live call gets: the live decision was already returned
when the shadow is asked, and every failure stays inside this module.

Why a second OPA process rather than a second bundle in the serving one: both bundles
declare the same packages (``gateway``, ``rules.*``, ``lib``) and data roots, which OPA
refuses to activate side by side; and a candidate that is slow, crashes or fails to load
must not touch the OPA that decides live calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Final, Self

from gateway.audit import scrub
from gateway.contracts import Decision, ProposedAction
from gateway.errors import ConfigError, PolicyError, PolicyTimeout, PolicyUnavailable
from gateway.metrics import METRICS, Metrics
from gateway.observation import DecisionContext
from gateway.policy import PolicyClient
from gateway.settings import Settings
from gateway.transitions import codes, compare

__all__ = ["ShadowEvaluator"]

log = logging.getLogger(__name__)

_LOG_PER_SECOND: Final[int] = 10
_BATCH: Final[int] = 50
_LINGER_SECONDS: Final[float] = 0.05


@dataclass(frozen=True)
class _Asked:
    action: ProposedAction
    decision: Decision
    context: DecisionContext


class ShadowEvaluator:
    """Observer + workers over a ``PolicyClient`` to the shadow OPA. ``async with`` opens the
    client; ``run`` works until ``stop``; ``drain`` waits until everything queued is judged."""

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        if settings.shadow_opa_url is None:
            raise ConfigError("the shadow evaluator needs GATEWAY_SHADOW_OPA_URL (or GATEWAY_SHADOW_BUNDLE)")
        shadow = settings.model_copy(
            update={
                "opa_url": settings.shadow_opa_url,
                "opa_timeout_seconds": settings.shadow_timeout_seconds,
            }
        )
        # Its own client and a private metrics registry: the shadow's latency and failures
        # must not show up as the live decision path's.
        self._client = PolicyClient(shadow, metrics=Metrics())
        self._metrics = metrics or METRICS
        self._queue: asyncio.Queue[_Asked] = asyncio.Queue(maxsize=settings.shadow_queue_size)
        self._workers = settings.shadow_concurrency
        self._stopping = asyncio.Event()
        self._logged_second = 0
        self._logged = 0
        self._unlogged = 0
        self.url = settings.shadow_opa_url

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    # -- the request path ------------------------------------------------------------------

    def observe(self, action: ProposedAction, decision: Decision, context: DecisionContext) -> None:
        try:
            self._queue.put_nowait(_Asked(action, decision, context))
        except asyncio.QueueFull:
            self._metrics.record_shadow("dropped")

    # -- the workers -----------------------------------------------------------------------

    async def run(self) -> None:
        """Judge queued decisions with ``shadow_concurrency`` workers until ``stop()``."""
        async with asyncio.TaskGroup() as tasks:
            for _ in range(self._workers):
                tasks.create_task(self._work())

    def stop(self) -> None:
        """Leave ``run`` without judging what is still queued (it is dropped and counted)."""
        self._stopping.set()

    async def drain(self) -> None:
        """Until every queued decision has been judged (tests and benchmarks)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            getter = asyncio.ensure_future(self._queue.get())
            stopper = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not getter.done():
                getter.cancel()
                self._drop_queued()
                return
            batch = [getter.result()]
            if self._queue.qsize() + 1 < _BATCH:
                await asyncio.sleep(_LINGER_SECONDS)  # let a batch gather: one request for all
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._judge(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _drop_queued(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._queue.task_done()
            self._metrics.record_shadow("dropped")

    async def _judge(self, batch: list[_Asked]) -> None:
        try:
            answers = await self._answers(batch)
        except Exception:  # a bug here must never reach anything live
            for _ in batch:
                self._metrics.record_shadow("error")
            log.exception("shadow evaluation of %d decision(s) failed", len(batch))
            return
        for asked, shadow in zip(batch, answers, strict=True):
            if isinstance(shadow, PolicyUnavailable):
                self._metrics.record_shadow("error")
                log.debug(
                    "shadow policy could not judge %s %s: %s", asked.action.tool, asked.action.id, shadow
                )
                continue
            if isinstance(shadow, PolicyError):
                self._metrics.record_shadow("error")
                log.warning(
                    "shadow policy answered %s %s malformed: %s", asked.action.tool, asked.action.id, shadow
                )
                continue
            change = compare(asked.decision, shadow)
            if change is None:
                self._metrics.record_shadow("agree")
                continue
            self._metrics.record_shadow("disagree")
            self._metrics.record_shadow_disagreement(asked.decision.outcome, shadow.outcome)
            self._log(asked, shadow, change.label)

    async def _answers(self, batch: list[_Asked]) -> list[Decision | PolicyError]:
        """The shadow's answer to each of ``batch``: one request, or one per decision when the
        batch failed as a whole without timing out (an input that makes the candidate fail at
        evaluation fails OPA's whole query: its neighbours must still be judged)."""
        try:
            return await self._client.evaluate_batch([asked.action.as_input() for asked in batch])
        except PolicyError as exc:
            if len(batch) == 1 or isinstance(exc, PolicyTimeout):
                return [exc] * len(batch)
        return [await self._single(asked.action) for asked in batch]

    async def _single(self, action: ProposedAction) -> Decision | PolicyError:
        try:
            return await self._client.evaluate(action)
        except PolicyError as exc:
            return exc

    def _log(self, asked: _Asked, shadow: Decision, label: str) -> None:
        second = int(time.monotonic())
        if second != self._logged_second:
            if self._unlogged:
                log.warning("shadow policy: %d more disagreement(s) not logged (rate limit)", self._unlogged)
            self._logged_second, self._logged, self._unlogged = second, 0, 0
        if self._logged >= _LOG_PER_SECOND:
            self._unlogged += 1
            return
        self._logged += 1
        action = asked.action
        entry = {
            "transition": label,
            "tool": action.tool,
            "call_id": asked.context.call_id,
            "action_id": action.id,
            "source": asked.context.source,
            "principal": action.principal.subject,
            "target": action.target.model_dump(mode="json", exclude_defaults=True),
            "live": _logged_decision(asked.decision),
            "shadow": _logged_decision(shadow),
        }
        log.warning(
            "shadow policy disagrees (%s) on %s by %s: live %s %s, shadow %s %s; %s",
            label,
            action.tool,
            action.principal.subject,
            asked.decision.outcome,
            codes(asked.decision.reasons),
            shadow.outcome,
            codes(shadow.reasons),
            json.dumps(scrub(entry), sort_keys=True),
        )


def _logged_decision(decision: Decision) -> dict[str, object]:
    return decision.model_dump(mode="json", exclude={"obligations"})
