"""Long polling that confirms an update to Telegram only after handling it.

aiogram's `start_polling(handle_as_tasks=True)` starts each update as a task and asks for the next batch at once:
the next getUpdates offset confirms updates still being handled, and a crash loses them. This loop, on aiogram's
public API only (`bot.get_updates`, `dp.feed_update`, `emit_startup`/`emit_shutdown`), never sends an offset past
an update that is not handled yet: the offset is the oldest update still being handled (the watermark). Updates
are handled as they come, concurrently across chats and in order within a chat (a worker per chat with work).
While some are being handled, the loop asks again (without waiting, `timeout=0`) as soon as one finishes, or
every `busy_interval` seconds: Telegram then returns the unfinished ones again (skipped here, they are known) and
any new ones, and the offset confirms everything below the watermark. So a slow update delays the confirmation
of the later ones, not their handling.

An update handled but not yet confirmed when the process dies comes back after the restart with the same
update_id, and the ledger of handled updates (bot/services/updates.py) skips it."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramConflictError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.types import Update

logger = logging.getLogger("tsur.polling")


def chat_key(update: Update) -> tuple[str, int]:
    """What orders updates: the chat (a private chat's id is its person's), else the sender, else the update."""
    event = update.event
    chat = getattr(event, "chat", None)
    if chat is not None:
        return ("chat", chat.id)
    user = getattr(event, "from_user", None)
    if user is not None:
        return ("chat", user.id)
    return ("update", update.update_id)


class Poller:
    """getUpdates from the watermark → hand new updates to their chat's worker → again. `stop()` ends the wait for
    updates at once, lets the updates being handled finish, and confirms them."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        *,
        allowed_updates: list[str],
        polling_timeout: int = 10,
        backoff_max: float = 5.0,
        busy_interval: float = 0.1,
        **workflow: Any,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.allowed_updates = allowed_updates
        self.polling_timeout = polling_timeout
        self.backoff_max = backoff_max
        self.busy_interval = busy_interval
        self.workflow = {"dispatcher": dp, "bots": [bot], **dp.workflow_data, **workflow}
        self._stopping = asyncio.Event()
        self._fetch: asyncio.Task[list[Update]] | None = None
        self._finished = asyncio.Event()
        self._unfinished: dict[int, None] = {}
        """Ids of the updates handed to workers and not handled yet, oldest first (dicts keep insertion order)."""
        self._queues: dict[tuple[str, int], deque[Update]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._last_seen = 0

    def stop(self) -> None:
        self._stopping.set()
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()

    async def run(self) -> None:
        """Start-up callbacks, the loop until `stop()`, shutdown callbacks."""
        await self.dp.emit_startup(bot=self.bot, **self.workflow)
        logger.info("polling started")
        try:
            await self._loop()
        finally:
            logger.info("polling stopped")
            await self.dp.emit_shutdown(bot=self.bot, **self.workflow)

    def _offset(self) -> int | None:
        """Everything below it is handled: the oldest unfinished update, else the one after the newest seen."""
        if self._unfinished:
            return next(iter(self._unfinished))
        return self._last_seen + 1 if self._last_seen else None

    async def _loop(self) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                busy = bool(self._unfinished)
                self._finished.clear()
                self._fetch = asyncio.create_task(
                    self.bot.get_updates(
                        offset=self._offset(),
                        timeout=0 if busy else self.polling_timeout,
                        allowed_updates=self.allowed_updates,
                        request_timeout=int(self.bot.session.timeout + self.polling_timeout),
                    )
                )
                try:
                    updates = await self._fetch
                except asyncio.CancelledError:
                    if self._stopping.is_set():
                        break
                    raise
                except (TelegramNetworkError, TelegramServerError, TelegramConflictError, TelegramRetryAfter) as exc:
                    failures += 1
                    wait = (
                        exc.retry_after
                        if isinstance(exc, TelegramRetryAfter)
                        else min(0.5 * 2**failures, self.backoff_max)
                    )
                    logger.warning("getUpdates failed (%s); again in %.1fs", type(exc).__name__, wait)
                    await self._pause(wait)
                    continue
                finally:
                    self._fetch = None
                failures = 0
                for update in updates:
                    if update.update_id > self._last_seen:  # the unfinished ones come back: already in hand
                        self._dispatch(update)
                if self._unfinished:
                    # Ask again when an update is done (to confirm it) or after a while (for new ones).
                    await self._pause(self.busy_interval, until=self._finished)
            # A clean stop: the updates in hand are handled, then confirmed.
            await asyncio.gather(*self._workers)
            await self._confirm(self._offset())
        except asyncio.CancelledError:
            # Killed (a crash, as Telegram sees it): nothing more is handled nor confirmed.
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            raise

    async def _pause(self, seconds: float, until: asyncio.Event | None = None) -> None:
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(until.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _dispatch(self, update: Update) -> None:
        self._last_seen = update.update_id
        self._unfinished[update.update_id] = None
        key = chat_key(update)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(update)  # its worker takes it after the chat's earlier ones
            return
        self._queues[key] = deque([update])
        worker = asyncio.create_task(self._work(key))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _work(self, key: tuple[str, int]) -> None:
        """One chat's updates, one after another, until its queue is empty."""
        queue = self._queues[key]
        try:
            while queue:
                update = queue[0]
                try:
                    await self.dp.feed_update(self.bot, update, **self.workflow)
                except Exception:  # the dispatcher's error handlers ran already; one update must not stop the rest
                    logger.exception("update id=%s failed", update.update_id)
                queue.popleft()
                self._unfinished.pop(update.update_id, None)
                self._finished.set()
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _confirm(self, offset: int | None) -> None:
        """On a clean stop, confirm what was handled (limit=1, no wait: the update it may return stays
        unconfirmed), so the next start is not given it again. A crash skips this; the ledger covers that."""
        if offset is None:
            return
        try:
            await self.bot.get_updates(offset=offset, limit=1, timeout=0)
        except Exception:  # the ledger skips them if they come back
            logger.warning("could not confirm the last updates at shutdown")
