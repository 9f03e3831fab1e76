"""Long polling that loses no update: an update is confirmed to Telegram only once it is durably written.

aiogram's `start_polling(handle_as_tasks=True)` starts each update as a task and asks for the next batch at once:
the next getUpdates offset confirms updates still being handled, and a crash loses them. This loop, on aiogram's
public API only (`bot.get_updates`, `dp.feed_update`, `emit_startup`/`emit_shutdown`), writes each batch to the
inbox table (one statement) before the offset that confirms it is sent; an update leaves the inbox in the
transaction that records it as handled (bot/services/updates.py). At start-up, what the inbox still holds (the
process died while handling it) is handled first. Updates are handled as they come, concurrently across chats and
in order within a chat (a worker per chat with work), with no barrier between batches.

Confirming only after handling, without an inbox, would mean either a barrier (the next batch waits for the
slowest update of this one) or fetching the unfinished updates again and again (Telegram returns everything from
the offset on): both cost far more than one insert per batch. The inbox is in the database, so it survives the
process; in webhook mode it is not used (the 200 answer comes after handling)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import suppress
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramConflictError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.types import Update

from bot.services.updates import UpdateLedger

logger = logging.getLogger("tsur.polling")

FULL_BATCH = 100  # getUpdates' default (and largest) limit


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
    """getUpdates → write the batch to the inbox → hand each update to its chat's worker → getUpdates with the next
    offset. `stop()` ends the wait for updates at once, lets the updates in hand finish, and confirms them."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        ledger: UpdateLedger,
        *,
        allowed_updates: list[str],
        polling_timeout: int = 10,
        backoff_max: float = 5.0,
        **workflow: Any,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.ledger = ledger
        self.allowed_updates = allowed_updates
        self.polling_timeout = polling_timeout
        self.backoff_max = backoff_max
        self.workflow = {"dispatcher": dp, "bots": [bot], **dp.workflow_data, **workflow}
        self._stopping = asyncio.Event()
        self._fetch: asyncio.Task[list[Update]] | None = None
        self._queues: dict[tuple[str, int], deque[Update]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._last_seen = 0
        self._known_before: int | None = None
        self._catching_up = True
        """The newest update id the previous run may have handled: what the first batch (and the inbox) holds.
        Any later update is new for sure and skips the ledger's query (`maybe_handled=False`)."""

    def stop(self) -> None:
        self._stopping.set()
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()

    async def run(self) -> None:
        """Start-up callbacks, what the inbox holds, the loop until `stop()`, shutdown callbacks."""
        await self.dp.emit_startup(bot=self.bot, **self.workflow)
        logger.info("polling started")
        try:
            await self._loop()
        finally:
            logger.info("polling stopped")
            await self.dp.emit_shutdown(bot=self.bot, **self.workflow)

    def _offset(self) -> int | None:
        return self._last_seen + 1 if self._last_seen else None

    async def _loop(self) -> None:
        failures = 0
        try:
            left = await self.ledger.inbox()
            if left:
                logger.warning("handling %d updates left unhandled by the previous run", len(left))
            for _update_id, payload in left:
                self._dispatch(Update.model_validate_json(payload, context={"bot": self.bot}))
            while not self._stopping.is_set():
                self._fetch = asyncio.create_task(
                    self.bot.get_updates(
                        offset=self._offset(),
                        timeout=self.polling_timeout,
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
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), wait)
                    continue
                finally:
                    self._fetch = None
                failures = 0
                # Given again after a crash before their offset was sent: those from the inbox are already in hand.
                fresh = [update for update in updates if update.update_id > self._last_seen]
                if self._catching_up:
                    # What Telegram held at start-up (a full batch means more may follow) may have been handled.
                    self._known_before = max((u.update_id for u in updates), default=self._last_seen)
                    self._catching_up = len(updates) >= FULL_BATCH
                # Durable before the next getUpdates' offset confirms them to Telegram.
                await self.ledger.stash(
                    [(update.update_id, update.model_dump_json(exclude_none=True)) for update in fresh]
                )
                for update in fresh:
                    self._dispatch(update)
            # A clean stop: the updates in hand are handled, then confirmed.
            await asyncio.gather(*self._workers)
            await self._confirm(self._offset())
        except asyncio.CancelledError:
            # Killed (a crash, as Telegram sees it): nothing more is handled; the inbox keeps what was not.
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            raise

    def _dispatch(self, update: Update) -> None:
        self._last_seen = max(self._last_seen, update.update_id)
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
                maybe_handled = self._known_before is None or update.update_id <= self._known_before
                try:
                    await self.dp.feed_update(self.bot, update, maybe_handled=maybe_handled, **self.workflow)
                except Exception:  # the dispatcher's error handlers ran already; one update must not stop the rest
                    logger.exception("update id=%s failed", update.update_id)
                queue.popleft()
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _confirm(self, offset: int | None) -> None:
        """On a clean stop, confirm what was fetched (limit=1, no wait: the update it may return stays
        unconfirmed), so the next start is not given it again."""
        if offset is None:
            return
        try:
            await self.bot.get_updates(offset=offset, limit=1, timeout=0)
        except Exception:  # the inbox and the ledger cover it
            logger.warning("could not confirm the last updates at shutdown")
