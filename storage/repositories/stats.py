"""The statistics' SQL: one statement per slice, aggregated by the database (GROUP BY over the covering indexes
of migration 0012), the same on SQLite and PostgreSQL. Nothing here loads appeals into Python to count them.

A slice is read at its metric's event (bot/services/stats.py says which): the appeals filed, answered or first
acted on in [start, end), the ratings given, the "is it fixed?" answers. Each result row is
(key of the first dimension, key of the second, numerator, denominator, value), plus for the rejected share
one count per reason: the service turns them into the table.

Percentiles are the nearest-rank ones, computed with window functions (ROW_NUMBER and COUNT over the group),
which both databases have; the time dimensions are the event's local day, ISO week (its Monday) or month, in the
region's time given as a fixed UTC offset (Europe/Moscow has had no daylight saving time since 2014)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    case,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from bot.domain import (
    RUNNING,
    AppealStatus,
    Dimension,
    FollowupAnswer,
    Metric,
    NoteKind,
    NoteStatus,
    RejectReason,
)
from storage.models import Appeal, AppealMessage, Category, Followup, Rating

A = Appeal.__table__
C = Category.__table__
R = Rating.__table__
F = Followup.__table__
M = AppealMessage.__table__

REASONS = tuple(RejectReason)
Key = int | str | None


class local_bucket(FunctionElement[str]):
    """The local day ('YYYY-MM-DD'), ISO week (its Monday, 'YYYY-MM-DD') or month ('YYYY-MM') of a UTC timestamp,
    for a fixed offset in minutes: compiled per dialect below (sqlalchemy.ext.compiler, SQLAlchemy's public
    extension point for such constructs)."""

    type = String()
    inherit_cache = True
    name = "local_bucket"


def bucket(column: ColumnElement[Any], unit: Dimension, offset_minutes: int) -> local_bucket:
    # The unit and the offset are literal columns, not bound values: they change the SQL text, so they must be part
    # of the statement's cache key (bound values are not: a cached month slice would answer for weeks and days).
    return local_bucket(column, literal_column(unit.value), literal_column(str(int(offset_minutes))))


def _args(element: local_bucket) -> tuple[Any, str, int]:
    column, unit, offset = list(element.clauses)
    return column, unit.name, int(offset.name)


@compiles(local_bucket, "sqlite")
def _bucket_sqlite(element: local_bucket, compiler: Any, **kw: Any) -> str:
    column, unit, offset = _args(element)
    shift = f"'{offset:+d} minutes'"
    ts = compiler.process(column, **kw)
    if unit == Dimension.month:
        return f"strftime('%Y-%m', {ts}, {shift})"
    if unit == Dimension.week:
        # 'weekday 0' moves to the next Sunday (or stays on one); six days back is that week's Monday.
        return f"date({ts}, {shift}, 'weekday 0', '-6 days')"
    return f"date({ts}, {shift})"


@compiles(local_bucket, "postgresql")
def _bucket_postgresql(element: local_bucket, compiler: Any, **kw: Any) -> str:
    column, unit, offset = _args(element)
    ts = f"({compiler.process(column, **kw)} + interval '{offset:d} minutes')"
    if unit == Dimension.month:
        return f"to_char({ts}, 'YYYY-MM')"
    if unit == Dimension.week:
        return f"to_char(date_trunc('week', {ts}), 'YYYY-MM-DD')"
    return f"to_char({ts}, 'YYYY-MM-DD')"


@dataclass(frozen=True)
class SliceQuery:
    """What the service asks: the metric, up to two dimensions, the filters (dimension → allowed values), the
    period [start, end) in UTC (None: no period, for "overdue now" of every open appeal), "now", the region's UTC
    offset, and the scopes the actor is held to (an official's own appeals)."""

    metric: Metric
    dims: tuple[Dimension, ...]
    filters: dict[Dimension, tuple[Key, ...]]
    start: datetime | None
    end: datetime | None
    now: datetime
    offset_minutes: int
    official_id: int | None = None


@dataclass(frozen=True)
class SliceRow:
    keys: tuple[Key, ...]
    num: float | None
    den: int
    value: float | None
    reasons: tuple[int, ...] = ()


class StatsRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def slice(self, query: SliceQuery) -> list[SliceRow]:
        statement, kind = _statement(query)
        rows = (await self.session.execute(statement)).all()
        width = len(query.dims)
        result = []
        for row in rows:
            keys = tuple(row[:width])
            num, den, value = row[width], row[width + 1], row[width + 2]
            reasons = tuple(int(n or 0) for n in row[width + 3 :]) if kind == "rejected" else ()
            result.append(
                SliceRow(
                    keys,
                    None if num is None else float(num),
                    int(den or 0),
                    None if value is None else float(value),
                    reasons,
                )
            )
        return result

    async def returned_answers(
        self, start: datetime, end: datetime, agency_ids: Sequence[int] | None = None
    ) -> dict[int, tuple[int, int]]:
        """agency id → (answers submitted in [start, end), of them returned by the ЦУР's check), by the agency the
        appeal is with (the agency index's "answers returned" part)."""
        returned = func.count().filter(M.c.status == NoteStatus.returned)
        statement = (
            select(A.c.agency_id, func.count(), returned)
            .select_from(M.join(A, A.c.id == M.c.appeal_id))
            .where(
                M.c.kind == NoteKind.answer, M.c.created_at >= start, M.c.created_at < end, A.c.agency_id.is_not(None)
            )
            .group_by(A.c.agency_id)
        )
        if agency_ids is not None:
            statement = statement.where(A.c.agency_id.in_(list(agency_ids)))
        return {int(a): (int(n), int(r)) for a, n, r in (await self.session.execute(statement)).all()}


# --- building the statement -------------------------------------------------------------------------------

# The event each metric is read at: the appeals' column for those read on the appeals table.
EVENT = {
    Metric.received: A.c.created_at,
    Metric.rejected_share: A.c.created_at,
    Metric.overdue: A.c.created_at,
    Metric.answered: A.c.answered_at,
    Metric.on_time: A.c.answered_at,
    Metric.on_time_share: A.c.answered_at,
    Metric.answer_median: A.c.answered_at,
    Metric.answer_p90: A.c.answered_at,
    Metric.reopened_share: A.c.answered_at,
    Metric.first_action_median: A.c.first_action_at,
    Metric.first_action_p90: A.c.first_action_at,
}
PERCENTILES = {
    Metric.first_action_median: (A.c.first_action_seconds, 50),
    Metric.first_action_p90: (A.c.first_action_seconds, 90),
    Metric.answer_median: (A.c.answer_seconds, 50),
    Metric.answer_p90: (A.c.answer_seconds, 90),
}


# The dimensions read from the appeal (or its category) whatever the metric's event.
APPEAL_ONLY = frozenset({Dimension.block, Dimension.category, Dimension.district, Dimension.status, Dimension.kind})


def _dimension(
    dim: Dimension, event: ColumnElement[Any], agency: ColumnElement[Any], offset: int
) -> ColumnElement[Any]:
    match dim:
        case Dimension.block:
            return C.c.block_id
        case Dimension.category:
            return A.c.category_id
        case Dimension.agency:
            return agency
        case Dimension.district:
            return A.c.district_id
        case Dimension.status:
            return A.c.status
        case Dimension.kind:
            return A.c.kind
        case _:
            return bucket(event, dim, offset)


def _conditions(
    query: SliceQuery, event: ColumnElement[Any] | None, agency: ColumnElement[Any], official: ColumnElement[Any]
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if event is not None and query.start is not None:
        where.append(event >= query.start)
    if event is not None and query.end is not None:
        where.append(event < query.end)
    if event is not None and query.start is None and query.end is None:
        where.append(event.is_not(None))
    for dim, values in query.filters.items():
        items = list(values)
        match dim:
            case Dimension.block:
                # Through the categories of those blocks: the appeals' index has the category, not the block.
                where.append(A.c.category_id.in_(select(C.c.id).where(C.c.block_id.in_(items)).scalar_subquery()))
            case Dimension.category:
                where.append(A.c.category_id.in_(items))
            case Dimension.agency:
                where.append(agency.in_(items))
            case Dimension.district:
                where.append(A.c.district_id.in_(items))
            case Dimension.status:
                where.append(A.c.status.in_(items))
            case Dimension.kind:
                where.append(A.c.kind.in_(items))
    if query.official_id is not None:
        where.append(official == query.official_id)
    return where


def _statement(query: SliceQuery) -> tuple[Select[Any], str]:
    metric = query.metric
    offset = query.offset_minutes
    if metric in (Metric.rating_avg, Metric.rating_count):
        # A rating carries its agency and official: the appeal is joined only for what only the appeal has (a
        # lookup per rating otherwise: 4–8 × the cost over a year's ratings, see README «Scaling»).
        on_appeal = (set(query.dims) | set(query.filters)) & APPEAL_ONLY
        source = R.join(A, A.c.id == R.c.appeal_id) if on_appeal else R
        event, agency, official = R.c.created_at, R.c.agency_id, R.c.official_id
        if metric == Metric.rating_avg:
            measures = [func.sum(R.c.score), func.count(), func.avg(R.c.score)]
        else:
            measures = [func.count(), func.count(), func.count()]
        kind = "plain"
    elif metric == Metric.fixed_share:
        # The agency and the official are the appeal's here: joined for them too.
        on_appeal = (set(query.dims) | set(query.filters)) & (APPEAL_ONLY | {Dimension.agency})
        source = F.join(A, A.c.id == F.c.appeal_id) if on_appeal or query.official_id is not None else F
        event, agency, official = F.c.answered_at, A.c.agency_id, A.c.official_id
        yes = func.count().filter(F.c.answer == FollowupAnswer.yes)
        measures = [yes, func.count(), yes * 1.0 / func.nullif(func.count(), 0)]
        kind = "fixed"
    else:
        source = A
        event, agency, official = EVENT[metric], A.c.agency_id, A.c.official_id
        kind = "plain"
    on_appeals = metric not in (Metric.rating_avg, Metric.rating_count, Metric.fixed_share)
    dims = [_dimension(d, event, agency, offset).label(f"d{i}") for i, d in enumerate(query.dims)]
    if Dimension.block in query.dims:
        source = source.join(C, C.c.id == A.c.category_id)
    where = _conditions(query, None if metric == Metric.overdue and query.start is None else event, agency, official)
    if metric == Metric.fixed_share:
        where.append(F.c.answer.in_([FollowupAnswer.yes, FollowupAnswer.no]))
    if metric in PERCENTILES:
        return _percentile(query, source, dims, where, *PERCENTILES[metric]), "plain"
    if on_appeals:
        count = func.count()
        match metric:
            case Metric.received:
                measures = [count, count, count]
            case Metric.answered:
                measures = [count, count, count]
            case Metric.on_time:
                on_time = func.count().filter(A.c.answered_on_time.is_(True))
                measures = [on_time, on_time, on_time]
            case Metric.on_time_share:
                on_time = func.count().filter(A.c.answered_on_time.is_(True))
                measures = [on_time, count, on_time * 1.0 / func.nullif(count, 0)]
            case Metric.reopened_share:
                reopened = func.count().filter(A.c.reopen_count > 0)
                measures = [reopened, count, reopened * 1.0 / func.nullif(count, 0)]
            case Metric.overdue:
                where += [A.c.status.in_([s.value for s in RUNNING]), A.c.deadline_at < query.now]
                measures = [count, count, count]
            case Metric.rejected_share:
                rejected = func.count().filter(A.c.status == AppealStatus.rejected)
                measures = [rejected, count, rejected * 1.0 / func.nullif(count, 0)]
                measures += [
                    func.count().filter(A.c.status == AppealStatus.rejected, A.c.reject_reason == reason.value)
                    for reason in REASONS
                ]
                kind = "rejected"
    statement = select(*dims, *measures).select_from(source).where(*where)
    if dims:
        statement = statement.group_by(*[d.element for d in dims])
    return statement, kind


def _percentile(
    query: SliceQuery,
    source: Any,
    dims: list[Any],
    where: list[ColumnElement[bool]],
    duration: ColumnElement[int],
    percent: int,
) -> Select[Any]:
    """The nearest-rank percentile per group: the smallest duration whose rank r in its group of n has
    100·r ≥ percent·n (for the median of 4 values, the 2nd). That is the smallest duration whose cumulative
    distribution (the share of the group at or below it, CUME_DIST) reaches percent/100: one window, so one sort
    (ROW_NUMBER and COUNT over the group took two and a third more time). k/n and percent/100 compare exactly as
    doubles here: they differ by at least 1/(100·n) when they differ at all."""
    partition = [d.element for d in dims]
    inner = (
        select(
            *dims,
            duration.label("d"),
            func.cume_dist().over(partition_by=partition or None, order_by=duration).label("c"),
        )
        .select_from(source)
        .where(*where, duration.is_not(None))
        .subquery()
    )
    keys = [inner.c[f"d{i}"] for i in range(len(dims))]
    value = func.min(case((inner.c.c >= percent / 100, inner.c.d)))
    statement = select(*keys, literal(None, Integer).label("num"), func.count(), value).select_from(inner)
    if keys:
        statement = statement.group_by(*keys)
    return statement
