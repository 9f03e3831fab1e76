"""The scheduled statistics reports' rows: the reports made (storage.models.StatReport), the scheduled presets and the
people reports go to. Queries only; bot/services/reports.py commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StatPreset, StatReport, User, UserRole


@dataclass(frozen=True)
class Person:
    """Someone a report may go to: their language and every role they hold (with its agency or block)."""

    user_id: int
    tg_id: int
    locale: str | None
    roles: frozenset[str]
    agency_id: int | None
    block_id: int | None


@dataclass(frozen=True)
class ScheduledPreset:
    id: int
    owner_id: int
    name: str
    spec: dict[str, Any]
    recipients: tuple[int, ...]


class StatReportRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        kind: str,
        preset_id: int | None,
        period: str,
        locale: str,
        text: str,
        chart: bytes | None,
        sheet: bytes | None,
        now: datetime,
    ) -> int:
        row = StatReport(
            kind=kind,
            preset_id=preset_id,
            period=period,
            locale=locale,
            text=text,
            chart=chart,
            sheet=sheet,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def get(self, report_id: int) -> StatReport | None:
        return await self.session.get(StatReport, report_id)

    async def prune(self, before: datetime) -> int:
        """Forget the reports made before `before` (their notifications were sent or given up long since)."""
        result = await self.session.execute(
            delete(StatReport).where(StatReport.created_at < before).execution_options(synchronize_session=False)
        )
        return result.rowcount if isinstance(result, CursorResult) else 0

    async def people(self, *, roles: tuple[str, ...] = (), user_ids: tuple[int, ...] = ()) -> list[Person]:
        """The people holding one of `roles`, or those of `user_ids`, each with all their roles (one query)."""
        holders = select(UserRole.user_id).where(UserRole.role.in_(list(roles))) if roles else None
        query = select(User.id, User.tg_id, User.locale, UserRole.role, UserRole.agency_id, UserRole.block_id).outerjoin(
            UserRole, UserRole.user_id == User.id
        )
        if holders is not None:
            query = query.where(User.id.in_(holders))
        else:
            query = query.where(User.id.in_(list(user_ids)))
        found: dict[int, dict[str, Any]] = {}
        for user_id, tg_id, locale, role, agency_id, block_id in (await self.session.execute(query.order_by(User.id))).all():
            person = found.setdefault(
                user_id,
                {"user_id": user_id, "tg_id": tg_id, "locale": locale, "roles": set(), "agency_id": None, "block_id": None},
            )
            if role is not None:
                person["roles"].add(role)
            person["agency_id"] = person["agency_id"] if person["agency_id"] is not None else agency_id
            person["block_id"] = person["block_id"] if person["block_id"] is not None else block_id
        return [Person(**{**p, "roles": frozenset(p["roles"])}) for p in found.values()]

    async def scheduled_presets(self, schedule: str) -> list[ScheduledPreset]:
        rows = (
            await self.session.execute(
                select(StatPreset.id, StatPreset.owner_id, StatPreset.name, StatPreset.spec, StatPreset.recipients)
                .where(StatPreset.schedule == schedule)
                .order_by(StatPreset.id)
            )
        ).all()
        return [
            ScheduledPreset(
                id, owner_id, name, dict(spec or {}), tuple(r for r in (recipients or []) if isinstance(r, int))
            )
            for id, owner_id, name, spec, recipients in rows
        ]
