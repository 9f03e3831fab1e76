from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Agency, Block, Category, District


class DirectoryRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def blocks(self) -> Sequence[Block]:
        query = select(Block).where(Block.is_active.is_(True)).order_by(Block.position)
        return (await self.session.execute(query)).scalars().all()

    async def categories(self) -> Sequence[Category]:
        query = select(Category).where(Category.is_active.is_(True)).order_by(Category.position)
        return (await self.session.execute(query)).scalars().all()

    async def districts(self) -> Sequence[District]:
        query = select(District).where(District.is_active.is_(True)).order_by(District.position)
        return (await self.session.execute(query)).scalars().all()

    async def agencies(self) -> Sequence[Agency]:
        query = select(Agency).where(Agency.is_active.is_(True)).order_by(Agency.id)
        return (await self.session.execute(query)).scalars().all()
