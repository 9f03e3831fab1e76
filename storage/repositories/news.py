"""A resident's choice of news (/subscriptions): the rows `storage.repositories.broadcasts.recipients_query` reads.

No `news_prefs` row means the defaults: every thematic block on, the district of the latest appeal followed, news
not stopped. Queries only; the service commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Appeal, Broadcast, NewsBlockOff, NewsDistrict, NewsPrefs, Outbox


def item_key(broadcast_id: int, user_id: int) -> str:
    """The dedupe key of a broadcast's item for a person (bot.services.broadcast_delivery writes it so)."""
    return f"broadcast:{broadcast_id}:{user_id}"


class NewsRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def prefs(self, user_id: int) -> NewsPrefs | None:
        return await self.session.get(NewsPrefs, user_id)

    async def touch(self, user_id: int, now: datetime) -> NewsPrefs:
        """The resident's prefs row, created with the defaults if there is none, marked as changed `now`."""
        row = await self.prefs(user_id)
        if row is None:
            row = NewsPrefs(user_id=user_id, stopped=False, districts_chosen=False, updated_at=now)
            self.session.add(row)
            await self.session.flush()  # a concurrent first change of the same person fails here, not at commit
        row.updated_at = now
        return row

    async def blocks_off(self, user_id: int) -> set[int]:
        query = select(NewsBlockOff.block_id).where(NewsBlockOff.user_id == user_id)
        return set((await self.session.execute(query)).scalars().all())

    async def set_block(self, user_id: int, block_id: int, on: bool) -> bool:
        """Turn a block on (no row) or off (a row); False if it already was so."""
        off = await self.session.get(NewsBlockOff, (user_id, block_id))
        if on and off is not None:
            await self.session.delete(off)
        elif not on and off is None:
            self.session.add(NewsBlockOff(user_id=user_id, block_id=block_id))
        else:
            return False
        await self.session.flush()
        return True

    async def chosen_districts(self, user_id: int) -> set[int]:
        query = select(NewsDistrict.district_id).where(NewsDistrict.user_id == user_id)
        return set((await self.session.execute(query)).scalars().all())

    async def add_district(self, user_id: int, district_id: int) -> None:
        if await self.session.get(NewsDistrict, (user_id, district_id)) is None:
            self.session.add(NewsDistrict(user_id=user_id, district_id=district_id))
            await self.session.flush()

    async def remove_district(self, user_id: int, district_id: int) -> None:
        await self.session.execute(
            delete(NewsDistrict).where(NewsDistrict.user_id == user_id, NewsDistrict.district_id == district_id)
        )

    async def clear_districts(self, user_id: int) -> None:
        await self.session.execute(delete(NewsDistrict).where(NewsDistrict.user_id == user_id))

    async def latest_appeal_district(self, user_id: int) -> int | None:
        """The district of the resident's latest appeal (as `latest_district()` of the recipients query orders)."""
        query = (
            select(Appeal.district_id)
            .where(Appeal.user_id == user_id)
            .order_by(Appeal.created_at.desc(), Appeal.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def audience_sent_to(self, user_id: int, broadcast_id: int) -> dict[str, Any] | None:
        """The audience of a broadcast that has an item for this person (None: no such broadcast, or not theirs).

        The item is found by its unique dedupe key, as the delivery writes it (`broadcast:{id}:{user}`): one index
        probe, however many residents the broadcast went to."""
        query = select(Broadcast.audience).where(
            Broadcast.id == broadcast_id,
            exists().where(Outbox.dedupe_key == item_key(broadcast_id, user_id)),
        )
        row = (await self.session.execute(query)).first()
        return dict(row[0] or {}) if row is not None else None
