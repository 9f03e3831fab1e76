"""Group commit: writes that arrive while one is in flight are made together, in the next transaction.

SQLite has one writer, and each statement of a transaction is a hand-off to the database thread that waits its
turn in a busy event loop. When fifty residents press Confirm within half a second, fifty transactions of six
statements queue one behind the other. A `GroupCommit` lets whoever holds the lock write everything queued so far
in one transaction of as many statements as one item needs, so a burst costs a handful of transactions and the
last person in it waits for a few of them, not for fifty. PostgreSQL gains as well: fewer round trips.

If the shared transaction fails (one item breaks a constraint, say), every item of it is written again alone, so
one bad item fails alone and the others are stored as if there had been no batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write_many: Callable[[list[T]], Awaitable[list[R]]],
        write_one: Callable[[T], Awaitable[R]],
        max_batch: int = 100,
    ) -> None:
        """`write_many` stores the items in one transaction and returns one result per item, in order;
        `write_one` stores one item in a transaction of its own (the fallback)."""
        self.write_many = write_many
        self.write_one = write_one
        self.max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._lock = asyncio.Lock()
        self.batches = 0  # transactions made by `write_many`, for tests and benchmarks

    async def submit(self, item: T) -> R:
        """Store the item (with whatever else is queued) and return its result, once committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        try:
            async with self._lock:
                # Whoever held the lock before may have written this item already; the queue is first in,
                # first out, so this loop ends with the item written by this task at the latest.
                while not future.done():
                    batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                    await self._write(batch)
        except BaseException:
            if not future.done():  # cancelled before its item was written: the item is dropped with it
                self._queue = [(i, f) for i, f in self._queue if f is not future]
                future.cancel()
            raise
        return future.result()

    async def _write(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            try:
                results = await self.write_many([item for item, _ in batch])
            except Exception:
                for item, future in batch:
                    await self._write_alone(item, future)
                return
            self.batches += 1
        except BaseException:
            # Cancelled mid-write: nothing of it was committed (or, if the commit went through, the items'
            # own idempotency keys turn the rewrite into a lookup). The next holder of the lock writes them.
            self._queue[:0] = [(item, future) for item, future in batch if not future.done()]
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _write_alone(self, item: T, future: asyncio.Future[R]) -> None:
        try:
            result = await self.write_one(item)
        except Exception as error:  # the submitter gets it, as if there had been no batch
            if not future.done():
                future.set_exception(error)
        else:
            if not future.done():
                future.set_result(result)
