from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Consent, User, UserRole


class UserRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_tg_id(self, tg_id: int) -> User | None:
        return (await self.session.execute(select(User).where(User.tg_id == tg_id))).scalar_one_or_none()

    async def by_id(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def add(self, tg_id: int, locale: str | None, now: datetime) -> User:
        user = User(tg_id=tg_id, locale=locale, is_active=True, created_at=now)
        self.session.add(user)
        await self.session.flush()
        return user

    async def latest_consent(self, user_id: int) -> Consent | None:
        query = select(Consent).where(Consent.user_id == user_id).order_by(Consent.id.desc()).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_consent(self, user_id: int, version: str, accepted: bool, now: datetime) -> Consent:
        consent = Consent(user_id=user_id, version=version, accepted=accepted, at=now)
        self.session.add(consent)
        await self.session.flush()
        return consent

    async def roles(self, user_id: int) -> list[UserRole]:
        return list((await self.session.execute(select(UserRole).where(UserRole.user_id == user_id))).scalars())
