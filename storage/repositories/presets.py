"""The statistics presets (storage.models.StatPreset) and the people a scheduled preset may go to. Queries only: the
service (bot/services/presets.py) commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StatPreset, User, UserRole


class PresetRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def owned(self, owner_id: int) -> list[StatPreset]:
        query = select(StatPreset).where(StatPreset.owner_id == owner_id).order_by(StatPreset.name, StatPreset.id)
        return list((await self.session.execute(query)).scalars())

    async def get(self, owner_id: int, preset_id: int) -> StatPreset | None:
        """The preset if `owner_id` owns it; another person's preset and an unknown id look the same (None)."""
        query = select(StatPreset).where(StatPreset.id == preset_id, StatPreset.owner_id == owner_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def name_taken(self, owner_id: int, name: str, but: int | None = None) -> bool:
        query = select(func.count()).select_from(StatPreset).where(
            StatPreset.owner_id == owner_id, StatPreset.name == name
        )
        if but is not None:
            query = query.where(StatPreset.id != but)
        return bool((await self.session.execute(query)).scalar_one())

    async def add(self, owner_id: int, name: str, spec: dict[str, Any], now: datetime) -> StatPreset:
        row = StatPreset(
            owner_id=owner_id, name=name, spec=spec, schedule=None, recipients=[owner_id], created_at=now, updated_at=now
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def change(self, preset_id: int, now: datetime, **values: Any) -> None:
        await self.session.execute(
            update(StatPreset).where(StatPreset.id == preset_id).values(updated_at=now, **values)
        )

    async def remove(self, preset_id: int) -> None:
        await self.session.execute(delete(StatPreset).where(StatPreset.id == preset_id))

    async def holders(
        self, roles: Iterable[str]
    ) -> list[tuple[int, int, str, int | None, int | None, str | None, str | None]]:
        """(user id, Telegram id, role, agency id, block id, full name, username) of every role row among `roles`."""
        query = (
            select(
                UserRole.user_id,
                User.tg_id,
                UserRole.role,
                UserRole.agency_id,
                UserRole.block_id,
                User.full_name,
                User.username,
            )
            .join(User, User.id == UserRole.user_id)
            .where(UserRole.role.in_(list(roles)))
            .order_by(UserRole.user_id, UserRole.id)
        )
        return [tuple(row) for row in (await self.session.execute(query)).all()]  # type: ignore[misc]
