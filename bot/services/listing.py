"""Listing the recipients of a poll or a broadcast: residents walked in users.id order after a cursor, a batch per
transaction, while the caller holds a lease on the poll's or broadcast's row.

The row (a Poll or a Broadcast: columns `claim`, `cursor`, `recipients`, `locked_until`) records how far the listing
got, in the transaction that writes each batch, so a restart resumes after the cursor and memory stays one batch
whatever the audience. A batch commits only while the claim token is still the row's: a lister that stalled past
its lease and was replaced adds nothing twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.models import User

# Writes one batch of the query's rows (users.id first) in the caller's transaction.
WriteBatch = Callable[[AsyncSession, Sequence[Row[Any]], datetime], Awaitable[None]]


async def list_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    owner: Any,
    owner_id: int,
    token: str,
    query: Any,
    cursor: int,
    *,
    batch: int,
    lease: timedelta,
    write: WriteBatch,
    done: Callable[[datetime], dict[str, Any]],
    on_commit: Callable[[], None],
) -> int | None:
    """List `query`'s rows after `cursor` into `owner` (the Poll or Broadcast model) row `owner_id`; at the end set
    `done(now)` on the row and drop the claim. Returns the rows added, or None when the lease was lost (to another
    instance, which goes on from the cursor)."""
    added = 0
    while True:
        now = clock.now()
        async with sessionmaker() as session:
            rows = (await session.execute(query.where(User.id > cursor).order_by(User.id).limit(batch))).all()
            mine = (owner.id == owner_id) & (owner.claim == token)
            if not rows:
                finished = await session.execute(
                    update(owner).where(mine).values(claim=None, locked_until=None, **done(now))
                )
                await session.commit()
                return added if finished.rowcount else None
            cursor = int(rows[-1][0])
            moved = await session.execute(
                update(owner)
                .where(mine)
                .values(cursor=cursor, recipients=owner.recipients + len(rows), locked_until=now + lease)
            )
            if not moved.rowcount:
                await session.rollback()
                return None
            await write(session, rows, now)
            await session.commit()
            added += len(rows)
        on_commit()
