"""Statistics in configurable slices (issue 14): who may read which figures, the period of a slice in the region's
time, the table of a slice, the agency index behind /rating and the problem spots of the weekly report.

The counting is SQL (storage/repositories/stats.py); this module decides what to ask and checks the actor on
every call: admins, analysts, the leadership and coordinators read the whole region; a block head only the block;
a supervisor only the agency; an official only the appeals they handled. No figure here carries a resident's
name, contact or text: rows are keyed by directory ids, codes and dates only.

When each metric is read (the "event" of storage/repositories/stats.py):
- received, rejected share: the appeals filed in the period;
- answered, on time, on-time share, answer time, re-opened share: the appeals whose (latest) answer reached the
  resident in the period; "on time" is against the deadline in force at that moment;
- first action time: the appeals staff first acted on in the period (routing, rejection, taking into work…);
- overdue: of the appeals filed in the period, those with an agency and past their deadline now (the reports'
  "overdue now" takes every open appeal);
- ratings: the ratings given in the period, by the agency that gave the rated answer;
- "is it fixed?": the yes share among the yes and no answers given in the period."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import IndexWeights, Settings
from bot.domain import (
    MAX_DIMENSIONS,
    METRIC_KINDS,
    STATS_ALL_ROLES,
    TIME_DIMENSIONS,
    AppealKind,
    AppealStatus,
    Dimension,
    Metric,
    MetricKind,
    PeriodKind,
    Role,
    SliceSpec,
)
from bot.services.access import refuse
from bot.services.directory import DirectoryService
from bot.services.errors import Forbidden, Gone, InvalidInput
from bot.services.users import Actor
from storage.repositories.stats import SliceQuery, SliceRow, StatsRepo

Key = int | str | None
# Who reads /rating: the whole ranking (a supervisor: their agency's place and breakdown only).
RATING_ROLES = STATS_ALL_ROLES | {Role.supervisor}
# The periods /rating offers (the first is the default).
RATING_PERIODS = (PeriodKind.days30, PeriodKind.last_month, PeriodKind.quarter, PeriodKind.year)
DATE_RE = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*$|^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


# No appeal can be older than the service; a typed year like 0001 is refused (its local midnight is not even a valid
# UTC timestamp).
EARLIEST_DAY = date(2000, 1, 1)


class PeriodRefused(InvalidInput):
    """A typed period that cannot be used; `detail` says why: malformed, future, reversed, too_long or too_old."""

    code = "period_refused"


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, and the local days it covers (both included) for the titles."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date

    def before(self) -> Period:
        """The period of the same length just before (for "the change against the previous period")."""
        length = self.end - self.start
        days = (self.last_day - self.first_day).days + 1
        return Period(
            self.start - length, self.start, self.first_day - timedelta(days=days), self.first_day - timedelta(days=1)
        )

    def previous(self) -> Period:
        """The period a rating is compared with: the calendar month before a whole calendar month (October for
        November, not the 30 days before it), otherwise the period of the same length just before."""
        month_end = (self.first_day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if self.first_day.day != 1 or self.last_day != month_end:
            # Not one whole calendar month (a quarter or a year ends on a month's last day too).
            return self.before()
        last = self.first_day - timedelta(days=1)
        first = last.replace(day=1)
        return Period(datetime.combine(first, time(), tzinfo=self.start.tzinfo), self.start, first, last)


@dataclass(frozen=True)
class Scope:
    """What an actor's statistics are held to (None: not held)."""

    block_id: int | None = None
    agency_id: int | None = None
    official_id: int | None = None

    @property
    def whole_region(self) -> bool:
        return self.block_id is None and self.agency_id is None and self.official_id is None


@dataclass(frozen=True)
class TableRow:
    keys: tuple[Key, ...]
    value: float | None  # None: nothing to measure (a share of 0 appeals, a percentile of none)
    base: int  # how many appeals (ratings, answers) the value stands on
    num: float | None = None  # a share's or an average's numerator, so that rows add up
    reasons: tuple[int, ...] = ()  # rejected share: rejections per bot.domain.RejectReason, in its order


@dataclass(frozen=True)
class Table:
    spec: SliceSpec
    period: Period
    scope: Scope
    rows: list[TableRow]
    total: TableRow
    made_at: datetime = field(default_factory=lambda: datetime.min)

    @property
    def kind(self) -> MetricKind:
        return METRIC_KINDS[self.spec.metric]

    def head(self, limit: int) -> tuple[list[TableRow], TableRow | None]:
        """The first `limit` rows and the rest folded into one row (None when nothing is left over): counts sum,
        shares and averages add up through their numerators, a percentile of the rest is not known (value None)."""
        if len(self.rows) <= limit:
            return self.rows, None
        shown, rest = self.rows[:limit], self.rows[limit:]
        return shown, fold(rest, self.kind)


def fold(rows: list[TableRow], kind: MetricKind) -> TableRow:
    base = sum(r.base for r in rows)
    reasons = tuple(map(sum, zip(*(r.reasons for r in rows), strict=True))) if rows and rows[0].reasons else ()
    if kind == MetricKind.count:
        total = sum(r.value or 0 for r in rows)
        return TableRow((), total, base, total, reasons)
    if kind in (MetricKind.share, MetricKind.average):
        num = sum(r.num or 0 for r in rows)
        return TableRow((), num / base if base else None, base, num, reasons)
    return TableRow((), None, base)


@dataclass(frozen=True)
class IndexEntry:
    """One agency's place in the index: its score (0–100), its parts (each 0–1, None when not measurable) and the
    raw figures behind them."""

    agency_id: int
    index: float | None
    answered: int
    on_time_share: float | None
    answer_median: float | None  # seconds
    rating_avg: float | None
    ratings: int
    reopened_share: float | None
    returned_share: float | None
    parts: dict[str, float | None]
    rank: int | None = None
    previous_rank: int | None = None
    previous_index: float | None = None


@dataclass(frozen=True)
class AgencyRating:
    period: Period
    ranked: list[IndexEntry]  # best first
    apart: list[IndexEntry]  # fewer than stats.min_appeals answered in the period: not ranked
    # Set when the rating was held to one agency (a supervisor's view, a breakdown): that agency, and how many were
    # ranked in all (its place "of how many"); `ranked` and `apart` then hold that agency's entry at most.
    held_to: int | None = None
    ranked_total: int | None = None
    min_appeals: int = 0  # the stats.min_appeals it was ranked with
    weights: IndexWeights = field(default_factory=IndexWeights)  # the stats.index weights it was computed with

    @property
    def places(self) -> int:
        """How many agencies were ranked."""
        return self.ranked_total if self.ranked_total is not None else len(self.ranked)

    def entry(self, agency_id: int) -> IndexEntry | None:
        return next((e for e in (*self.ranked, *self.apart) if e.agency_id == agency_id), None)

    def only(self, agency_id: int) -> AgencyRating:
        """The rating as one agency may read it: its own entry and the number of places, nothing of the others."""
        return AgencyRating(
            self.period,
            [e for e in self.ranked if e.agency_id == agency_id],
            [e for e in self.apart if e.agency_id == agency_id],
            held_to=agency_id,
            ranked_total=self.places,
            min_appeals=self.min_appeals,
            weights=self.weights,
        )


@dataclass(frozen=True)
class ProblemSpot:
    category_id: int
    district_id: int
    count: int  # in the week
    weekly_before: float  # the weekly average over the 4 weeks before

    @property
    def factor(self) -> float | None:
        return self.count / self.weekly_before if self.weekly_before else None


@dataclass(frozen=True)
class Problem:
    """One category × district of the report's top: appeals in the period and in the one before."""

    category_id: int
    district_id: int
    count: int
    before: int


@dataclass(frozen=True)
class RegionWeek:
    """The weekly "state of the region" (the leadership's; a block head's is held to the block): the week's figures
    against the week before, overdue now by agency, satisfaction, the top problems and the problem spots."""

    period: Period
    scope: Scope
    received: TableRow
    received_before: TableRow
    answered: TableRow  # value: answered; num/base: on time / answered
    answered_before: TableRow
    overdue: Table  # every open appeal past its deadline now, by agency
    rating: TableRow
    rating_before: TableRow
    fixed: TableRow
    problems: list[Problem]
    spots: list[ProblemSpot]


def parse_day(text: str) -> date:
    """dd.mm.yyyy (or yyyy-mm-dd); PeriodRefused("malformed") otherwise."""
    match = DATE_RE.match(text or "")
    if not match:
        raise PeriodRefused("malformed")
    day, month, year = (match[1], match[2], match[3]) if match[1] else (match[6], match[5], match[4])
    try:
        return date(int(year), int(month), int(day))
    except ValueError as error:
        raise PeriodRefused("malformed") from error


def parse_days(text: str) -> tuple[date, date]:
    """Two dates typed in one message ("01.10.2026 31.10.2026", with a dash or a space between)."""
    parts = [p for p in re.split(r"\s*(?:[–—]|\s-\s|\s)\s*", (text or "").strip()) if p]
    if len(parts) != 2:
        raise PeriodRefused("malformed")
    return parse_day(parts[0]), parse_day(parts[1])


class StatsService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        directory: DirectoryService,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.directory = directory

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    # --- who sees what ---------------------------------------------------------------------------------

    async def scope(self, actor: Actor) -> Scope:
        """The actor's scope, or Forbidden (audited) for someone with no statistics to read."""
        scope = self.scope_of(actor)
        if scope is None:
            raise await refuse(self.sessionmaker, actor, "stats", self.clock.now())
        return scope

    @staticmethod
    def scope_of(actor: Actor) -> Scope | None:
        """The actor's scope; None for someone with no statistics to read (the scheduled reports skip them)."""
        if actor.has(*STATS_ALL_ROLES):
            return Scope()
        if actor.has(Role.block_head) and actor.block_id is not None:
            return Scope(block_id=actor.block_id)
        if actor.has(Role.supervisor) and actor.agency_id is not None:
            return Scope(agency_id=actor.agency_id)
        if actor.has(Role.official):
            return Scope(official_id=actor.id)
        return None

    def allowed(self, scope: Scope, spec: SliceSpec) -> SliceSpec:
        """The spec held to the scope: its own block or agency is imposed as a filter; asking for another one is
        refused (Forbidden), and so are ids no directory knows (Gone: a forged preset or button)."""
        if len(spec.dims) > MAX_DIMENSIONS or len(set(spec.dims)) != len(spec.dims):
            raise InvalidInput("dimensions")
        for dim, values in spec.filters:
            if dim in TIME_DIMENSIONS:
                raise InvalidInput("filter")
            for value in values:
                if not self._known(dim, value):
                    raise Gone(dim.value)
        if scope.block_id is not None:
            blocks = spec.filter_of(Dimension.block)
            if any(b != scope.block_id for b in blocks):
                raise Forbidden("another_block")
            categories = spec.filter_of(Dimension.category)
            if any(self._block_of(c) != scope.block_id for c in categories):
                raise Forbidden("another_block")
            spec = spec.with_filter(Dimension.block, (scope.block_id,))
        if scope.agency_id is not None:
            agencies = spec.filter_of(Dimension.agency)
            if any(a != scope.agency_id for a in agencies):
                raise Forbidden("another_agency")
            spec = spec.with_filter(Dimension.agency, (scope.agency_id,))
        return spec

    def _known(self, dim: Dimension, value: Key) -> bool:
        match dim:
            case Dimension.block:
                return isinstance(value, int) and self.directory.block(value) is not None
            case Dimension.category:
                return isinstance(value, int) and self.directory.category(value) is not None
            case Dimension.agency:
                return isinstance(value, int) and self.directory.agency(value) is not None
            case Dimension.district:
                return isinstance(value, int) and self.directory.district(value) is not None
            case Dimension.status:
                return value in AppealStatus.__members__
            case Dimension.kind:
                return value in AppealKind.__members__
        return False

    def _block_of(self, category_id: Key) -> int | None:
        category = self.directory.category(int(category_id)) if isinstance(category_id, int) else None
        return category.parent_id if category else None

    # --- periods ---------------------------------------------------------------------------------------

    def period(self, spec: SliceSpec, now: datetime | None = None) -> Period:
        """The spec's period in the region's time; PeriodRefused for a typed one in the future, reversed, too long
        (stats.max_period_days) or malformed. The current periods end now (today included)."""
        now = now or self.clock.now()
        today = now.astimezone(self.tz).date()
        match spec.period:
            case PeriodKind.today:
                first, last = today, today
            case PeriodKind.days7:
                first, last = today - timedelta(days=6), today
            case PeriodKind.days30:
                first, last = today - timedelta(days=29), today
            case PeriodKind.this_month:
                first, last = today.replace(day=1), today
            case PeriodKind.last_month:
                last = today.replace(day=1) - timedelta(days=1)
                first = last.replace(day=1)
            case PeriodKind.quarter:
                first, last = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today
            case PeriodKind.year:
                first, last = date(today.year, 1, 1), today
            case PeriodKind.custom:
                if not spec.start or not spec.end:
                    raise PeriodRefused("malformed")
                first, last = parse_day(spec.start), parse_day(spec.end)
                self.check_days(first, last, today)
        return self.days(first, last)

    def check_days(self, first: date, last: date, today: date | None = None) -> None:
        today = today or self.clock.now().astimezone(self.tz).date()
        if first < EARLIEST_DAY or last < EARLIEST_DAY:
            raise PeriodRefused("too_old")
        if first > today or last > today:
            raise PeriodRefused("future")
        if first > last:
            raise PeriodRefused("reversed")
        if (last - first).days + 1 > self.settings.stats.max_period_days:
            raise PeriodRefused("too_long")

    def days(self, first: date, last: date) -> Period:
        start = datetime.combine(first, time(), tzinfo=self.tz)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=self.tz)
        return Period(start, end, first, last)

    def offset_minutes(self, moment: datetime) -> int:
        """The region's UTC offset at `moment` (a period's start), used to cut days, weeks and months."""
        offset = moment.astimezone(self.tz).utcoffset() or timedelta()
        return int(offset.total_seconds() // 60)

    # --- slices ----------------------------------------------------------------------------------------

    async def slice(self, actor: Actor, spec: SliceSpec, period: Period | None = None) -> Table:
        """The table of a slice as the actor may see it."""
        scope = await self.scope(actor)
        try:
            spec = self.allowed(scope, spec)
        except Forbidden as error:
            await refuse(self.sessionmaker, actor, f"stats:{error.detail}", self.clock.now())
            raise
        period = period or self.period(spec)
        async with self.sessionmaker() as session:
            return await self.table(session, scope, spec, period)

    async def table(self, session: AsyncSession, scope: Scope, spec: SliceSpec, period: Period) -> Table:
        """The table of an already-checked spec (the scheduler's reports call it with the recipient's scope)."""
        now = self.clock.now()
        query = self._query(scope, spec, period, now)
        repo = StatsRepo(session)
        rows = [self._row(r) for r in await repo.slice(query)]
        kind = METRIC_KINDS[spec.metric]
        if not spec.dims:
            total = rows[0] if rows else TableRow((), None, 0)
            return Table(spec, period, scope, [], total, now)
        if kind == MetricKind.duration:
            totals = await repo.slice(replace(query, dims=()))
            total = self._row(totals[0]) if totals else TableRow((), None, 0)
        else:
            total = fold(rows, kind)
        rows = [r for r in rows if r.base or (r.value or 0)]
        if spec.dims[0] in TIME_DIMENSIONS:
            rows.sort(key=lambda r: tuple("" if k is None else str(k) for k in r.keys))
        else:
            rows.sort(key=lambda r: (-(r.value if r.value is not None else float("-inf")), -r.base, str(r.keys)))
        return Table(spec, period, scope, rows, total, now)

    def _query(self, scope: Scope, spec: SliceSpec, period: Period | None, now: datetime) -> SliceQuery:
        filters: dict[Dimension, tuple[Key, ...]] = {dim: values for dim, values in spec.filters}
        # The scope is imposed here too, whatever the spec says (a stored preset, a report's spec): a filter of
        # another block or agency leaves nothing, no filter becomes the scope's own.
        for dim, own in ((Dimension.block, scope.block_id), (Dimension.agency, scope.agency_id)):
            if own is not None:
                asked = filters.get(dim)
                filters[dim] = tuple(v for v in asked if v == own) if asked else (own,)
        return SliceQuery(
            metric=spec.metric,
            dims=spec.dims,
            filters=filters,
            start=period.start if period else None,
            end=period.end if period else None,
            now=now,
            offset_minutes=self.offset_minutes(period.start if period else now),
            official_id=scope.official_id,
        )

    @staticmethod
    def _row(row: SliceRow) -> TableRow:
        return TableRow(row.keys, row.value, row.den, row.num, row.reasons)

    async def overdue_now(self, session: AsyncSession, scope: Scope, dims: tuple[Dimension, ...]) -> Table:
        """Every open appeal past its deadline now, whenever it was filed (the reports' "overdue now")."""
        now = self.clock.now()
        spec = SliceSpec(Metric.overdue, dims, ())
        if scope.block_id is not None:
            spec = spec.with_filter(Dimension.block, (scope.block_id,))
        if scope.agency_id is not None:
            spec = spec.with_filter(Dimension.agency, (scope.agency_id,))
        query = self._query(scope, spec, None, now)
        rows = [self._row(r) for r in await StatsRepo(session).slice(query)]
        today = now.astimezone(self.tz).date()
        period = self.days(today, today)
        rows.sort(key=lambda r: (-(r.value or 0), str(r.keys)))
        return Table(spec, period, scope, rows, fold(rows, MetricKind.count), now)

    # --- the agency index ------------------------------------------------------------------------------

    async def rating(self, actor: Actor, period: Period) -> AgencyRating:
        """The index of every agency with the change since the previous period; a supervisor's is held to their
        agency (its place of how many and its breakdown, nothing of the others). Block heads and officials are
        refused (audited)."""
        scope = await self.rating_reader(actor)
        async with self.sessionmaker() as session:
            rating = await self.agency_rating(session, period)
        return rating.only(scope.agency_id) if scope.agency_id is not None else rating

    async def breakdown(self, actor: Actor, agency_id: int, period: Period) -> AgencyRating:
        """One agency's place and parts (the rating held to it): an id no directory knows is Gone (a forged button);
        a supervisor asking for another agency than theirs is refused (Forbidden, audited)."""
        scope = await self.rating_reader(actor)
        if self.directory.agency(agency_id) is None:
            raise Gone("agency")
        if scope.agency_id is not None and agency_id != scope.agency_id:
            raise await refuse(
                self.sessionmaker, actor, "rating:another_agency", self.clock.now(), agency_id=agency_id
            )
        async with self.sessionmaker() as session:
            return (await self.agency_rating(session, period)).only(agency_id)

    def rating_period(self, kind: str) -> Period:
        """The period of a /rating button (RATING_PERIODS); PeriodRefused("malformed") for any other value."""
        if kind not in RATING_PERIODS:
            raise PeriodRefused("malformed")
        return self.period(SliceSpec(period=PeriodKind(kind)))

    async def rating_reader(self, actor: Actor) -> Scope:
        """The actor's scope for /rating: the whole region, or a supervisor's agency; Forbidden (audited) otherwise."""
        scope = await self.scope(actor)
        if scope.block_id is not None or scope.official_id is not None:
            raise await refuse(self.sessionmaker, actor, "rating", self.clock.now())
        return scope

    async def agency_rating(self, session: AsyncSession, period: Period) -> AgencyRating:
        current = await self._index(session, period)
        previous = await self._index(session, period.previous())
        previous_ranked = {e.agency_id: e for e in self._rank(previous)[0]}
        ranked, apart = self._rank(current)
        ranked = [
            replace(
                e,
                previous_rank=previous_ranked[e.agency_id].rank if e.agency_id in previous_ranked else None,
                previous_index=previous_ranked[e.agency_id].index if e.agency_id in previous_ranked else None,
            )
            for e in ranked
        ]
        config = self.settings.stats
        return AgencyRating(period, ranked, apart, min_appeals=config.min_appeals, weights=config.index)

    def _rank(self, entries: list[IndexEntry]) -> tuple[list[IndexEntry], list[IndexEntry]]:
        minimum = self.settings.stats.min_appeals
        enough = [e for e in entries if e.answered >= minimum and e.index is not None]
        apart = sorted((e for e in entries if e not in enough), key=lambda e: (-e.answered, e.agency_id))
        enough.sort(key=lambda e: (-(e.index or 0), -e.answered, e.agency_id))
        return [replace(e, rank=i + 1) for i, e in enumerate(enough)], apart

    async def _index(self, session: AsyncSession, period: Period) -> list[IndexEntry]:
        scope = Scope()
        now = self.clock.now()
        by_agency = (Dimension.agency,)

        async def figures(metric: Metric) -> dict[int, TableRow]:
            query = self._query(scope, SliceSpec(metric, by_agency), period, now)
            return {
                int(r.keys[0]): self._row(r) for r in await StatsRepo(session).slice(query) if r.keys[0] is not None
            }

        on_time = await figures(Metric.on_time_share)
        median = await figures(Metric.answer_median)
        ratings = await figures(Metric.rating_avg)
        reopened = await figures(Metric.reopened_share)
        returned = await StatsRepo(session).returned_answers(period.start, period.end)
        weights = self.settings.stats.index
        worst = self.settings.stats.answer_days_worst * 86400
        entries = []
        for agency_id in sorted(set(on_time) | set(ratings) | set(returned)):
            if self.directory.agency(agency_id) is None:
                continue
            answered = on_time[agency_id].base if agency_id in on_time else 0
            submitted, sent_back = returned.get(agency_id, (0, 0))
            seconds = median[agency_id].value if agency_id in median else None
            rating = ratings.get(agency_id)
            parts: dict[str, float | None] = {
                "on_time": on_time[agency_id].value if agency_id in on_time else None,
                "answer_time": max(0.0, 1 - seconds / worst) if seconds is not None else None,
                "rating": (rating.value - 1) / 4 if rating and rating.value is not None else None,
                "reopened": 1 - reopened[agency_id].value
                if agency_id in reopened and reopened[agency_id].value is not None
                else None,
                "returned": 1 - sent_back / submitted if submitted else None,
            }
            weighted = [(getattr(weights, name), part) for name, part in parts.items() if part is not None]
            total = sum(w for w, _p in weighted)
            index = round(100 * sum(w * p for w, p in weighted) / total, 1) if total > 0 else None
            entries.append(
                IndexEntry(
                    agency_id=agency_id,
                    index=index,
                    answered=answered,
                    on_time_share=parts["on_time"],
                    answer_median=seconds,
                    rating_avg=rating.value if rating else None,
                    ratings=rating.base if rating else 0,
                    reopened_share=reopened[agency_id].value if agency_id in reopened else None,
                    returned_share=sent_back / submitted if submitted else None,
                    parts=parts,
                )
            )
        return entries

    # --- the weekly report ------------------------------------------------------------------------------

    def last_week(self, now: datetime | None = None) -> Period:
        """The last whole week (Monday to Sunday, region time) before `now`."""
        today = (now or self.clock.now()).astimezone(self.tz).date()
        monday = today - timedelta(days=today.weekday())
        return self.days(monday - timedelta(days=7), monday - timedelta(days=1))

    async def region_week(self, session: AsyncSession, scope: Scope, week: Period, top: int = 10) -> RegionWeek:
        """Everything the weekly report says, in a dozen grouped statements over the covering indexes."""
        now = self.clock.now()
        before = week.before()
        base = SliceSpec()
        if scope.block_id is not None:
            base = base.with_filter(Dimension.block, (scope.block_id,))
        if scope.agency_id is not None:
            base = base.with_filter(Dimension.agency, (scope.agency_id,))
        repo = StatsRepo(session)

        async def one(metric: Metric, period: Period, dims: tuple[Dimension, ...] = ()) -> list[SliceRow]:
            spec = replace(base, metric=metric, dims=dims)
            return await repo.slice(self._query(scope, spec, period, now))

        def total(rows: list[SliceRow]) -> TableRow:
            return self._row(rows[0]) if rows else TableRow((), None, 0)

        pairs = (Dimension.category, Dimension.district)
        current = await one(Metric.received, week, pairs)
        earlier = {r.keys: r.den for r in await one(Metric.received, before, pairs)}
        problems = [
            Problem(int(r.keys[0]), int(r.keys[1]), r.den, earlier.get(r.keys, 0))
            for r in current
            if r.keys[0] is not None and r.keys[1] is not None
        ]
        problems.sort(key=lambda p: (-p.count, -(p.count - p.before), p.category_id, p.district_id))
        return RegionWeek(
            period=week,
            scope=scope,
            received=total(await one(Metric.received, week)),
            received_before=total(await one(Metric.received, before)),
            answered=total(await one(Metric.on_time_share, week)),
            answered_before=total(await one(Metric.on_time_share, before)),
            overdue=await self.overdue_now(session, scope, (Dimension.agency,)),
            rating=total(await one(Metric.rating_avg, week)),
            rating_before=total(await one(Metric.rating_avg, before)),
            fixed=total(await one(Metric.fixed_share, week)),
            problems=problems[:top],
            spots=await self.problem_spots(session, scope, week),
        )

    # --- problem spots ---------------------------------------------------------------------------------

    async def problem_spots(self, session: AsyncSession, scope: Scope, week: Period) -> list[ProblemSpot]:
        """Categories × districts whose appeals filed in `week` exceed stats.problem_factor times their weekly
        average over the 4 weeks before (and number at least stats.problem_min): the "conflict situations"."""
        config = self.settings.stats
        spec = SliceSpec(Metric.received, (Dimension.category, Dimension.district))
        if scope.block_id is not None:
            spec = spec.with_filter(Dimension.block, (scope.block_id,))
        if scope.agency_id is not None:
            spec = spec.with_filter(Dimension.agency, (scope.agency_id,))
        now = self.clock.now()
        before = Period(
            week.start - timedelta(days=28),
            week.start,
            week.first_day - timedelta(days=28),
            week.first_day - timedelta(days=1),
        )
        repo = StatsRepo(session)
        current = await repo.slice(self._query(scope, spec, week, now))
        earlier = {r.keys: r.den for r in await repo.slice(self._query(scope, spec, before, now))}
        spots = []
        for row in current:
            category_id, district_id = row.keys
            if category_id is None or district_id is None or row.den < config.problem_min:
                continue
            weekly = earlier.get(row.keys, 0) / 4
            if row.den > config.problem_factor * weekly:
                spots.append(ProblemSpot(int(category_id), int(district_id), row.den, weekly))
        spots.sort(key=lambda s: (-(s.factor or float("inf")), -s.count, s.category_id, s.district_id))
        return spots

