"""Reader -> bounded queue -> workers -> results, streaming.

Ids are pulled from the source only as fast as workers take them, so a million ids
never become a million-item list.  The worker pool starts small and grows while
the scheduler has tokens to spend but no worker free to spend them (the pipe is not
full); workers that are not needed simply wait at the scheduler's gate.  The first
exception a worker raises (bad credentials, a missing scope) stops everything and
surfaces to the consumer; per-item outcomes are results, never exceptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from typing import Generic, TypeVar

__all__ = ["stream"]

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()
GROWTH_CHECK_S = 0.1
MAX_GROWTH_CHECK_S = 2.0


class _Failure(Generic[R]):
    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _items(source: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


async def stream(
    source: Iterable[T] | AsyncIterable[T],
    work: Callable[[T], Awaitable[R]],
    *,
    workers: Callable[[int], int],
    queue_size: int = 256,
) -> AsyncGenerator[R, None]:
    """Yield ``work(item)`` for every item, in completion order.

    ``workers(current)`` says how many workers there should be now; it is asked at
    start and every ``GROWTH_CHECK_S`` while items remain.  The pool never shrinks.
    """
    inbox: asyncio.Queue[object] = asyncio.Queue(queue_size)
    outbox: asyncio.Queue[object] = asyncio.Queue(queue_size)
    tasks: set[asyncio.Task[None]] = set()
    running = 0
    produced = False

    async def produce() -> None:
        nonlocal produced
        try:
            async for item in _items(source):
                await inbox.put(item)
        except BaseException as error:  # a bad input file surfaces to the consumer
            if not isinstance(error, asyncio.CancelledError):
                await outbox.put(_Failure(error))
            raise
        finally:
            produced = True
        await inbox.put(_DONE)

    async def run_worker() -> None:
        nonlocal running
        while True:
            item = await inbox.get()
            if item is _DONE:
                inbox.put_nowait(_DONE)  # room: we just took one; pass it on
                running -= 1
                if running == 0:  # the last worker out closes the stream
                    await outbox.put(_DONE)
                return
            try:
                result: object = await work(item)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                raise
            except BaseException as error:
                result = _Failure(error)
            await outbox.put(result)

    def spawn(count: int) -> None:
        nonlocal running
        for _ in range(count):
            running += 1
            task = asyncio.ensure_future(run_worker())
            tasks.add(task)

    async def grow() -> None:
        # Often while the pool grows, then less and less: an idle check is a wake-up.
        every = GROWTH_CHECK_S
        while not produced:
            await asyncio.sleep(every)
            wanted = workers(running)
            if wanted > running and not produced:
                spawn(wanted - running)
                every = GROWTH_CHECK_S
            else:
                every = min(MAX_GROWTH_CHECK_S, every * 1.5)

    producer = asyncio.ensure_future(produce())
    spawn(max(1, workers(0)))
    grower = asyncio.ensure_future(grow())
    try:
        while True:
            got = await outbox.get()
            if got is _DONE:
                break
            if isinstance(got, _Failure):
                raise got.error
            yield got  # type: ignore[misc]
        await producer  # re-raise a reader error that raced the last results
    finally:
        pending = [producer, grower, *tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
