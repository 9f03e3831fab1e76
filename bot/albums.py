"""Albums arrive as several updates with one media_group_id: answer once, after the last item."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

logger = logging.getLogger(__name__)


class AlbumDebouncer:
    """Runs one callback per key after the key has been quiet for `delay` seconds."""

    def __init__(self, delay: float = 0.4) -> None:
        self.delay = delay
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._running = 0

    def touch(self, key: Hashable, callback: Callable[[], Awaitable[None]]) -> None:
        previous = self._tasks.get(key)
        if previous is not None:
            previous.cancel()
        self._tasks[key] = asyncio.create_task(self._later(key, callback))

    def cancel(self, key: Hashable) -> None:
        """Drop the callback still waiting for the key (the person moved on before the album was summed up)."""
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    async def _later(self, key: Hashable, callback: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(self.delay)
        # From here on a new item of the same album must not cancel the summary being sent.
        self._tasks.pop(key, None)
        self._running += 1
        try:
            await callback()
        except Exception:  # a lost summary must not kill the loop; the items are already stored
            logger.exception("album summary failed")
        finally:
            self._running -= 1

    @property
    def idle(self) -> bool:
        return not self._tasks and not self._running

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
