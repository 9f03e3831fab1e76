"""Directories (blocks, categories, districts, agencies): read rarely-changing rows once, serve from memory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repositories.directory import DirectoryRepo


@dataclass(frozen=True, slots=True)
class Named:
    id: int
    code: str
    names: dict[str, str]
    parent_id: int | None = None

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get("ru") or self.code


class DirectoryService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self._blocks: list[Named] = []
        self._categories: dict[int, Named] = {}
        self._districts: dict[int, Named] = {}
        self._agencies: dict[int, Named] = {}

    async def reload(self) -> None:
        """Called at start-up and after an admin edits a directory."""
        async with self.sessionmaker() as session:
            repo = DirectoryRepo(session)
            self._blocks = [Named(b.id, b.code, dict(b.names)) for b in await repo.blocks()]
            self._categories = {c.id: Named(c.id, c.code, dict(c.names), c.block_id) for c in await repo.categories()}
            self._districts = {d.id: Named(d.id, d.code, dict(d.names)) for d in await repo.districts()}
            self._agencies = {a.id: Named(a.id, a.code, dict(a.short_names)) for a in await repo.agencies()}

    def blocks(self) -> list[Named]:
        return list(self._blocks)

    def block(self, block_id: int) -> Named | None:
        return next((b for b in self._blocks if b.id == block_id), None)

    def categories(self, block_id: int) -> list[Named]:
        return [c for c in self._categories.values() if c.parent_id == block_id]

    def category(self, category_id: int) -> Named | None:
        return self._categories.get(category_id)

    def districts(self) -> list[Named]:
        return list(self._districts.values())

    def district(self, district_id: int) -> Named | None:
        return self._districts.get(district_id)

    def agencies(self) -> list[Named]:
        return list(self._agencies.values())

    def agency(self, agency_id: int) -> Named | None:
        return self._agencies.get(agency_id)
