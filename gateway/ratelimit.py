"""Client-side rate limits for the backends: one token bucket per endpoint class.

A backend client asks its bucket before every request. The bucket holds up to ``burst``
tokens and refills at ``rate`` per second; a request takes one. When none is left the
request waits its turn (reservations are taken in arrival order, so concurrent callers are
spaced at ``rate`` instead of retrying against each other) — but never longer than the
``budget`` the caller gives: a request that would wait longer is refused at once with
``RateLimited`` saying when to retry, and its reservation is not taken, so a refused call
costs the others nothing.

A server that answers 429 with ``Retry-After`` pauses the whole bucket (``pause``): every
caller of that endpoint class waits (or is refused) until then, instead of each one
finding out with a request of its own.

With a ``rate`` of 0 the bucket admits everything (for tests and benchmarks that measure
the backend itself). Given ``metrics`` and its ``backend`` label, a bucket counts its
refusals (``gateway_backend_throttled_total{source="client"}``) and times its waits.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from gateway.errors import RateLimited
from gateway.metrics import Metrics

__all__ = ["TokenBucket", "retry_message"]


def retry_message(what: str, retry_after: float) -> str:
    """The one wording of a refusal for being rate limited: ``… rate limited, retry after N s``."""
    return f"{what} rate limited, retry after {max(1, math.ceil(retry_after))} s"


class TokenBucket:
    """``rate`` requests per second with bursts of up to ``burst``; see the module docstring.

    ``clock`` and ``sleep`` are injectable so tests observe waits without waiting.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
        backend: str = "",
    ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("a token bucket needs rate >= 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._metrics = metrics
        self._backend = backend

    def reserve(self, budget: float) -> float:
        """Take one token and return how long to wait before using it (0: now).

        Raises ``RateLimited`` (with ``retry_after``) when the wait would exceed ``budget``;
        then nothing is taken.
        """
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        # A negative balance is the queue of callers already holding a reservation.
        wait = max(0.0, (1.0 - tokens) / self.rate, self._paused_until - now)
        if wait > budget:
            self._tokens, self._updated = tokens, now
            raise RateLimited(
                retry_message(self.name, wait)
                + f" (the gateway's limit of {self.rate:g} requests/s would hold this request "
                f"longer than its {budget:g} s budget)",
                retry_after=wait,
            )
        self._tokens, self._updated = tokens - 1.0, now
        return wait

    async def acquire(self, budget: float) -> float:
        """``reserve`` (a negative budget counts as none) and wait for the reservation;
        returns the seconds waited."""
        try:
            wait = self.reserve(max(0.0, budget))
        except RateLimited:
            if self._metrics is not None:
                self._metrics.record_throttled(self._backend, "client")
            raise
        if wait > 0:
            if self._metrics is not None:
                self._metrics.observe_rate_limit_wait(self._backend, wait)
            await self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """The server said to come back in ``seconds``: nothing leaves before then."""
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
