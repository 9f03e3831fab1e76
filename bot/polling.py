"""Long polling that confirms an update to Telegram only after handling it.

aiogram's `start_polling(handle_as_tasks=True)` starts each update as a task and asks for the next batch at once:
the next getUpdates offset confirms updates still being handled, and a crash loses them. This loop, on aiogram's
public API only (`bot.get_updates`, `dp.feed_update`, `emit_startup`/`emit_shutdown`), handles a whole batch
(concurrently across chats, in order within a chat) before the offset that confirms it is sent. An update handled
but not yet confirmed when the process dies comes back after the restart with the same update_id, and the ledger
of handled updates (bot/services/updates.py) skips it."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
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
    """getUpdates → handle the batch → confirm it with the next getUpdates. `stop()` ends the wait for updates at
    once but lets the batch being handled finish."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        *,
        allowed_updates: list[str],
        polling_timeout: int = 10,
        backoff_max: float = 5.0,
        **workflow: Any,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.allowed_updates = allowed_updates
        self.polling_timeout = polling_timeout
        self.backoff_max = backoff_max
        self.workflow = {"dispatcher": dp, "bots": [bot], **dp.workflow_data, **workflow}
        self._stopping = asyncio.Event()
        self._fetch: asyncio.Task[list[Update]] | None = None

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

    async def _loop(self) -> None:
        offset: int | None = None
        failures = 0
        while not self._stopping.is_set():
            self._fetch = asyncio.create_task(
                self.bot.get_updates(
                    offset=offset,
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
                wait = exc.retry_after if isinstance(exc, TelegramRetryAfter) else min(0.5 * 2**failures, self.backoff_max)
                logger.warning("getUpdates failed (%s); again in %.1fs", type(exc).__name__, wait)
                try:
                    await asyncio.wait_for(self._stopping.wait(), wait)
                except TimeoutError:
                    pass
                continue
            finally:
                self._fetch = None
            failures = 0
            if updates:
                await self.handle_batch(updates)
                # Confirmed by the next call's offset, now that every update of the batch was handled.
                offset = updates[-1].update_id + 1
        await self._confirm(offset)

    async def _confirm(self, offset: int | None) -> None:
        """On a clean stop, confirm the last batch handled (limit=1, no wait: the update it may return stays
        unconfirmed), so the next start is not given it again. A crash skips this; the ledger covers that."""
        if offset is None:
            return
        try:
            await self.bot.get_updates(offset=offset, limit=1, timeout=0)
        except Exception:  # the ledger skips the batch if it comes back
            logger.warning("could not confirm the last batch at shutdown")

    async def handle_batch(self, updates: list[Update]) -> None:
        """Chats side by side, each chat's updates one after another in the order Telegram gave them."""
        chains: dict[tuple[str, int], list[Update]] = defaultdict(list)
        for update in updates:
            chains[chat_key(update)].append(update)
        await asyncio.gather(*(self._handle_chain(chain) for chain in chains.values()))

    async def _handle_chain(self, chain: list[Update]) -> None:
        for update in chain:
            try:
                await self.dp.feed_update(self.bot, update, **self.workflow)
            except Exception:  # the dispatcher's error handlers ran already; one update must not stop the others
                logger.exception("update id=%s failed", update.update_id)
