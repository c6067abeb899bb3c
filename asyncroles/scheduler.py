"""The one scheduler every worker waits on: the asyncio shell around ``Pacer``.

Workers never sleep on their own judgement.  They ``acquire()`` a send slot, send,
and report what came back; the scheduler feeds the pacer and wakes the waiting
worker when news may have changed the answer.  One worker at a time waits at the
gate (a FIFO lock), so there is one timer, not N, and no thundering herd when a
pause ends.  An optional user ceiling in requests/s is an ``aiolimiter`` bucket of
size one in front of the send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from asyncroles.pacing import Pacer, PacerState
from asyncroles.ratelimit import RateLimitHeaders

__all__ = ["Scheduler"]


class Scheduler:
    def __init__(
        self,
        pacer: Pacer | None = None,
        *,
        max_rps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        epoch: Callable[[], float] = time.time,
    ) -> None:
        self.pacer = pacer or Pacer()
        self.max_rps = max_rps
        self._clock = clock
        self._epoch = epoch
        self._gate = asyncio.Lock()
        self._news: asyncio.Future[None] | None = None
        self._limiter: AsyncLimiter | None = None  # made in the running loop (aiolimiter)
        self.waiting = 0  # workers queued for a slot: zero while tokens go unused = starved

    @property
    def state(self) -> PacerState:
        return self.pacer.state(self._clock())

    async def acquire(self, *, not_before: float | None = None) -> int:
        """Wait until the tenant's bucket (and the user ceiling) allow one more request."""
        if not_before is not None:
            backoff = not_before - self._clock()
            if backoff > 0:
                await asyncio.sleep(backoff)
        self.waiting += 1
        try:
            async with self._gate:
                while True:
                    delay = self.pacer.delay(self._clock())
                    if delay == 0.0:
                        if self.max_rps is not None:
                            await self._ceiling().acquire()
                            if self.pacer.delay(self._clock()) != 0.0:
                                continue  # a pause began meanwhile
                        return self.pacer.on_send(self._clock())
                    await self._wait_for_news(delay)
        finally:
            self.waiting -= 1

    def response(self, ticket: int, rate: RateLimitHeaders | None, *, usable: bool = True) -> None:
        self.pacer.on_response(ticket, self._clock(), rate, usable=usable)
        self._wake()

    def throttled(
        self, ticket: int, rate: RateLimitHeaders | None, retry_after_s: float | None
    ) -> float:
        pause = self.pacer.on_throttled(
            ticket, self._clock(), rate, retry_after_s=retry_after_s, now_epoch_s=self._epoch()
        )
        self._wake()
        return pause

    def lost(self, ticket: int) -> None:
        self.pacer.on_lost(ticket, self._clock())
        self._wake()

    def _ceiling(self) -> AsyncLimiter:
        if self._limiter is None:
            assert self.max_rps is not None
            # Size one: a steady ceiling with no burst of its own.
            self._limiter = AsyncLimiter(1, 1.0 / self.max_rps)
        return self._limiter

    async def _wait_for_news(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        news = self._news = loop.create_future()
        timer = None
        if timeout is not None:
            timer = loop.call_later(timeout, _settle, news)
        try:
            await news
        finally:
            if timer is not None:
                timer.cancel()
            self._news = None

    def _wake(self) -> None:
        if self._news is not None:
            _settle(self._news)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
