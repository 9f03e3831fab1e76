from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Consent, User, UserRole


class UserRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_consent(self, user_id: int, version: str, accepted: bool, now: datetime) -> Consent:
        consent = Consent(user_id=user_id, version=version, accepted=accepted, at=now)
        self.session.add(consent)
        await self.session.flush()
        return consent

    # Column reads and single statements for the paths every person takes (first contact, language):
    # no ORM identity map or unit of work.

    async def identity(self, tg_id: int) -> tuple[int, str | None] | None:
        row = (await self.session.execute(select(User.id, User.locale).where(User.tg_id == tg_id))).first()
        return None if row is None else (row[0], row[1])

    async def insert(self, tg_id: int, now: datetime) -> int:
        query = insert(User).values(tg_id=tg_id, locale=None, is_active=True, created_at=now).returning(User.id)
        return int((await self.session.execute(query)).scalar_one())

    async def latest_consent_answer(self, user_id: int) -> tuple[str, bool] | None:
        query = (
            select(Consent.version, Consent.accepted)
            .where(Consent.user_id == user_id)
            .order_by(Consent.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], bool(row[1]))

    async def role_pairs(self, user_id: int) -> list[tuple[str, int | None]]:
        rows = await self.session.execute(select(UserRole.role, UserRole.agency_id).where(UserRole.user_id == user_id))
        return [(role, agency) for role, agency in rows.all()]

    async def set_locale(self, user_id: int, locale: str) -> None:
        await self.session.execute(update(User).where(User.id == user_id).values(locale=locale))
