"""The staff's read side of residents' ratings: an appeal's ratings and follow-up for its card, agencies'
averages for the digests and the low ratings of a day. Queries only; the ratings are written elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Appeal, Followup, Rating


class RatingStatsRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_appeal(self, appeal_id: int) -> Sequence[Rating]:
        """The ratings of the appeal's answers, oldest first."""
        query = select(Rating).where(Rating.appeal_id == appeal_id).order_by(Rating.created_at, Rating.id)
        return (await self.session.execute(query)).scalars().all()

    async def followup_of(self, appeal_id: int) -> Followup | None:
        return (await self.session.execute(select(Followup).where(Followup.appeal_id == appeal_id))).scalar_one_or_none()

    async def agency_averages(self, since: datetime, agency_id: int | None = None) -> list[tuple[int, float, int]]:
        """(agency id, average score, ratings) of the ratings given since `since`, the worst average first (the
        most rated first among equals). Aggregated by the database (GROUP BY over ix_ratings_agency_created),
        so the digest's cost does not grow with the number of ratings it reads."""
        average = func.avg(Rating.score)
        query = (
            select(Rating.agency_id, average, func.count())
            .where(Rating.agency_id.is_not(None), Rating.created_at >= since)
            .group_by(Rating.agency_id)
            .order_by(average, func.count().desc(), Rating.agency_id)
        )
        if agency_id is not None:
            query = query.where(Rating.agency_id == agency_id)
        return [(int(a), float(avg), int(n)) for a, avg, n in (await self.session.execute(query)).all()]

    async def low_between(
        self, start: datetime, end: datetime, max_score: int, limit: int
    ) -> Sequence[Row[tuple[int, str, int | None, int, str | None]]]:
        """(appeal id, number, agency id, score, comment) of the ratings of at most `max_score` whose score was
        last set in [start, end) (`updated_at`: a score lowered to 1–2 the day after it was given counts on the day
        it became low), in that order; at most `limit` of them."""
        query = (
            select(Rating.appeal_id, Appeal.number, Rating.agency_id, Rating.score, Rating.comment)
            .join(Appeal, Appeal.id == Rating.appeal_id)
            .where(Rating.updated_at >= start, Rating.updated_at < end, Rating.score <= max_score)
            .order_by(Rating.updated_at, Rating.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).all()

    async def count_low_between(self, start: datetime, end: datetime, max_score: int) -> int:
        query = (
            select(func.count())
            .select_from(Rating)
            .where(Rating.updated_at >= start, Rating.updated_at < end, Rating.score <= max_score)
        )
        return int((await self.session.execute(query)).scalar_one())
