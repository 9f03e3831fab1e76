"""The ledger of handled Telegram updates: a redelivered update changes nothing twice.

Telegram delivers an update until the bot confirms it (long polling: the next getUpdates offset; webhook: the
200 answer). The bot confirms only after handling, so a crash in between brings the update back, with the same
update_id. The ledger is written AFTER the update's handlers ran (record-after-handling), in a transaction of its
own: a redelivery of an update in the ledger is skipped. A crash between the handlers' commit and the ledger's
leaves the update unrecorded, so it is handled a second time: at-least-once, never lost. The handlers where a
second run would matter are idempotent (filing's Confirm finds the appeal again by its draft id and tells its
number). The alternative, claiming the id before handling, would lose the update for good when the process dies
between the claim and the handler's commit: a resident left with no answer, which is worse than a repeated one.
The rows live in the database, so every instance sees them; they are pruned after `keep_days`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.repositories.updates import UpdateRepo


class UpdateLedger:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, keep_days: int = 3) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.keep_days = keep_days
        self._pending: list[int] = []
        self._flush: asyncio.Future[None] | None = None

    async def handled(self, update_id: int) -> bool:
        """Whether this update's handlers already ran (on this instance or another)."""
        async with self.sessionmaker() as session:
            return await UpdateRepo(session).handled(update_id)

    async def record(self, update_id: int) -> None:
        """Note the update as handled (and out of the polling inbox). The updates that finish at the same moment are
        written in one transaction (a group commit: one write per burst, not one per update, on SQLite's single
        writer); each caller returns once its row is committed."""
        self._pending.append(update_id)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.ensure_future(self._write_pending())
        await asyncio.shield(self._flush)

    async def _write_pending(self) -> None:
        await asyncio.sleep(0)  # let the updates finishing in this turn of the loop join
        ids, self._pending = self._pending, []
        self._flush = None  # a record() from now on starts the next write
        async with self.sessionmaker() as session:
            repo = UpdateRepo(session)
            try:
                await repo.unstash_many(ids)
                await repo.add_many(ids, self.clock.now())
                await session.commit()
                return
            except IntegrityError:
                await session.rollback()
        # Two instances handled one update at once (a webhook retry racing its first delivery): row by row, and the
        # one already there is fine.
        for update_id in ids:
            async with self.sessionmaker() as session:
                repo = UpdateRepo(session)
                await repo.unstash(update_id)
                repo.add(update_id, self.clock.now())
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    await self.skipped(update_id)

    async def skipped(self, update_id: int) -> None:
        """A known update delivered again: only its inbox row, if any, goes."""
        async with self.sessionmaker() as session:
            await UpdateRepo(session).unstash(update_id)
            await session.commit()

    async def stash(self, updates: list[tuple[int, str]]) -> None:
        """Long polling: keep fetched updates (id, JSON) durably before the offset confirms them to Telegram."""
        async with self.sessionmaker() as session:
            await UpdateRepo(session).stash(updates, self.clock.now())
            await session.commit()

    async def inbox(self) -> list[tuple[int, str]]:
        """The updates fetched and confirmed but not handled (the process died): (id, JSON), oldest first."""
        async with self.sessionmaker() as session:
            return await UpdateRepo(session).inbox()

    async def newest(self) -> int:
        """The highest update id handled or stashed: a Bot API server started afresh (the sandbox's emulator) must
        number its updates after it, as Telegram's never go back, or they would be taken for ones handled already."""
        async with self.sessionmaker() as session:
            return await UpdateRepo(session).newest()

    async def prune(self) -> int:
        """Forget updates handled more than `keep_days` ago (Telegram keeps an unconfirmed one for 24 hours)."""
        async with self.sessionmaker() as session:
            count = await UpdateRepo(session).prune(self.clock.now() - timedelta(days=self.keep_days))
            await session.commit()
            return count
