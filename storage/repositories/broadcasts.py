"""Queries of broadcasts and residents' news choices (issue 13): who a broadcast goes to, and how its items fared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import BroadcastAudience, OutboxState
from storage.models import Appeal, Consent, NewsBlockOff, NewsDistrict, NewsPrefs, Outbox, User, UserRole

DEFAULT_LANGUAGE = "ru"


def latest_district() -> Any:
    """The district of the resident's latest appeal (a correlated scalar subquery on users)."""
    return (
        select(Appeal.district_id)
        .where(Appeal.user_id == User.id)
        .order_by(Appeal.created_at.desc(), Appeal.id.desc())
        .limit(1)
        .correlate(User)
        .scalar_subquery()
    )


def recipients_query(audience: BroadcastAudience, consent_version: str) -> Any:
    """SELECT users.id of the residents a broadcast goes to: active, consent accepted in its current version, no
    staff role, news not stopped, and every filter of `audience`. Callers add ordering and paging."""
    latest_consent = select(func.max(Consent.id)).where(Consent.user_id == User.id).correlate(User).scalar_subquery()
    query = (
        select(User.id)
        .join(Consent, Consent.id == latest_consent)
        .where(
            User.is_active.is_(True),
            Consent.version == consent_version,
            Consent.accepted.is_(True),
            ~exists().where(UserRole.user_id == User.id),
            ~exists().where(NewsPrefs.user_id == User.id, NewsPrefs.stopped.is_(True)),
        )
    )
    if audience.districts:
        chosen = list(audience.districts)
        query = query.where(
            or_(
                exists().where(NewsDistrict.user_id == User.id, NewsDistrict.district_id.in_(chosen)),
                and_(
                    ~exists().where(NewsPrefs.user_id == User.id, NewsPrefs.districts_chosen.is_(True)),
                    latest_district().in_(chosen),
                ),
            )
        )
    if audience.block_id is not None:
        query = query.where(~exists().where(NewsBlockOff.user_id == User.id, NewsBlockOff.block_id == audience.block_id))
    if audience.language:
        if audience.language == DEFAULT_LANGUAGE:
            query = query.where(or_(User.locale == DEFAULT_LANGUAGE, User.locale.is_(None)))
        else:
            query = query.where(User.locale == audience.language)
    return query


@dataclass(frozen=True)
class ItemCounts:
    """How a broadcast's items fared so far (outbox rows of the broadcast by state)."""

    pending: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    cancelled: int = 0
    # Items whose call was in flight when a sender died: sent again, so the person may have it twice.
    unsure: int = 0

    @property
    def settled(self) -> int:
        return self.sent + self.blocked + self.failed + self.cancelled


async def item_counts(session: AsyncSession, broadcast_id: int) -> ItemCounts:
    """A GROUP BY over the (broadcast_id, status, …) index alone, and the "possibly twice" ones over the partial index
    of lost leases: the table's rows are never read."""
    rows = (
        await session.execute(
            select(Outbox.status, func.count()).where(Outbox.broadcast_id == broadcast_id).group_by(Outbox.status)
        )
    ).all()
    by_state = {str(status): int(count) for status, count in rows}
    unsure = (
        await session.execute(
            select(func.count()).where(
                Outbox.broadcast_id == broadcast_id, Outbox.lost_leases > 0, Outbox.status == OutboxState.sent
            )
        )
    ).scalar_one()
    return ItemCounts(
        pending=by_state.get(OutboxState.pending, 0),
        sent=by_state.get(OutboxState.sent, 0),
        blocked=by_state.get(OutboxState.blocked, 0),
        failed=by_state.get(OutboxState.failed, 0),
        cancelled=by_state.get(OutboxState.cancelled, 0),
        unsure=int(unsure),
    )
