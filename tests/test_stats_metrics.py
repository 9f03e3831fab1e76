"""The statistics checked against an independent computation (issue 14, «Correctness and speed»).

A data set of a few hundred appeals is made once per module through the real services, with the clock travelling
in time (seeded random): appeals on time and late, paused by a clarification, extended, answers returned by the
check, re-opened and answered again, rejected for every reason, routed to several agencies, rated 1–5, "is it
fixed?" answered yes/no/unknown, some still open and overdue, and some filed or answered right at the period edges
in the region's time (23:59:59 and 00:00 Moscow, month boundaries, a Monday 00:00, 03:00 Moscow = 00:00 UTC).

The generator records what happened (the ground truth: every answer's time, its working time without the pauses of
its consideration and whether it came by the deadline in force at that moment, every rating and follow-up); each
metric is computed from that record in plain Python here and compared with `services.stats.slice(...)`, which
counts in SQL."""

from __future__ import annotations

import asyncio
import heapq
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from bot.domain import (
    LOW_RATING,
    AppealKind,
    AppealStatus,
    Dimension,
    FollowupAnswer,
    Metric,
    PeriodKind,
    RejectReason,
    Role,
    SliceSpec,
)
from bot.services import Services, build_services
from bot.services.errors import Forbidden
from bot.services.stats import Period, PeriodRefused, Scope, Table, parse_day, parse_days
from bot.services.users import Actor
from storage.db import create_engine, create_sessionmaker
from storage.models import AppealRequest, Category
from tests import factories as f
from tests.conftest import make_settings
from tests.databases import checkpoint, copy_db

MSK = ZoneInfo("Europe/Moscow")
S = AppealStatus
Key = int | str | None


def msk(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, year: int = 2026) -> datetime:
    """A moment given in the region's time, as the UTC the services keep."""
    return datetime(year, month, day, hour, minute, second, tzinfo=MSK).astimezone(UTC)


START = msk(8, 24)  # a Monday
END = msk(11, 2, 15)  # Monday 2 November 2026, 15:00 in Grozny: "now" of every check
# Where a period, a day, a week or a month of the region's time begins or ends, and UTC's midnight (03:00 Moscow).
EDGES = [
    msk(9, 30, 23, 59, 59),
    msk(10, 1),
    msk(10, 1, 2, 59, 59),
    msk(10, 1, 3),
    msk(10, 4, 23, 59, 59),
    msk(10, 5),
    msk(10, 18, 23, 59, 59),
    msk(10, 19),
    msk(10, 25, 23, 59, 59),  # a Sunday
    msk(10, 26),  # a Monday
    msk(10, 26, 23, 59, 59),
    msk(10, 27),  # the first day of "7 days" on 2 November
    msk(10, 31, 23, 59, 59),
    msk(11, 1),
    msk(11, 1, 23, 59, 59),
    msk(11, 2),  # "today"
]
CUSTOM = ("2026-10-05", "2026-10-18")  # its edges are local midnights, 21:00 UTC the day before
WHOLE = ("2026-08-24", "2026-11-02")


def hours(n: float) -> timedelta:
    return timedelta(seconds=round(n * 3600))


# --- the ground truth the generator records ---------------------------------------------------------------------


@dataclass
class Answer:
    at: datetime
    seconds: int  # from filing (or the latest re-opening) to the approval, less the pauses of that consideration
    on_time: bool  # by the deadline in force at the approval


@dataclass
class Truth:
    user: Actor
    category: int
    block: int
    district: int
    kind: str
    physical: bool
    id: int = 0
    created: datetime = START
    agency: int | None = None
    official: int | None = None
    status: str = S.moderation
    reason: str | None = None
    first_action: datetime | None = None
    answers: list[Answer] = field(default_factory=list)
    reopens: int = 0
    deadline: datetime | None = None  # read back at the end
    start: datetime = START  # of the current consideration
    paused: int = 0  # seconds paused in the current consideration
    asked: datetime | None = None
    deadline_before_extension: datetime | None = None
    submitted: list[datetime] = field(default_factory=list)  # answers sent to the check
    returned: list[datetime] = field(default_factory=list)  # of them, those the check returned (by submission time)

    def attrs(self, agency: int | None = None, use_agency: bool = False) -> dict[Dimension, Key]:
        return {
            Dimension.block: self.block,
            Dimension.category: self.category,
            Dimension.agency: agency if use_agency else self.agency,
            Dimension.district: self.district,
            Dimension.status: str(self.status),
            Dimension.kind: self.kind,
        }


@dataclass
class RatingTruth:
    appeal: Truth
    at: datetime
    score: int
    agency: int | None
    official: int | None


@dataclass
class FollowupTruth:
    appeal: Truth
    at: datetime
    answer: str


@dataclass
class DataSet:
    path: Path
    appeals: list[Truth]
    ratings: list[RatingTruth]
    followups: list[FollowupTruth]
    agencies: list[int]  # the four agencies appeals went to (the last one got only a few)
    officials: dict[int, int]  # agency id -> the user id of its official
    tg: dict[str, int]  # people's Telegram ids


# --- the generator ----------------------------------------------------------------------------------------------

Step = Callable[[], Awaitable[None]]
Plan = Iterator[tuple[datetime, Step]]


class Simulation:
    """Each appeal's history is a plan (a generator of (moment, step)); the steps of all appeals run in time order,
    the clock set to each step's moment."""

    def __init__(self, services: Services, clock: ManualClock, world: f.World, seed: int) -> None:
        self.services = services
        self.clock = clock
        self.world = world
        self.rng = random.Random(seed)
        self.heap: list[tuple[datetime, int, Step, Plan]] = []
        self.seq = 0
        self.appeals: list[Truth] = []
        self.ratings: list[RatingTruth] = []
        self.followups: list[FollowupTruth] = []
        self.officials: dict[int, Actor] = {}
        self.residents: list[Actor] = []
        self.physical: dict[int, bool] = {}
        self.reasons = list(RejectReason)

    # --- running -------------------------------------------------------------------------------------------

    def start(self, plan: Plan) -> None:
        self._push(plan)

    def _push(self, plan: Plan) -> None:
        try:
            at, step = next(plan)
        except StopIteration:
            return
        if at >= END:
            return  # what would come later has not happened yet: the appeal stays as it is
        heapq.heappush(self.heap, (at, self.seq, step, plan))
        self.seq += 1

    async def run(self) -> None:
        while self.heap:
            at, _seq, step, plan = heapq.heappop(self.heap)
            assert at >= self.clock.now()
            self.clock.set(at)
            await step()
            self._push(plan)

    # --- the steps (each through the real service, recording what it did) -----------------------------------

    @property
    def coordinator(self) -> Actor:
        return self.world["coordinator"]

    def official(self, t: Truth) -> Actor:
        assert t.agency is not None
        return self.officials[t.agency]

    async def file(self, t: Truth) -> None:
        changes: dict[str, Any] = {}
        if t.kind == AppealKind.appeal:
            changes = {"applicant_name": "Иванов Иван Иванович", "applicant_contact": "+79281234567"}
        draft = f.draft(
            self.services,
            draft_id=f"stats-{len(self.appeals):06d}",
            category_id=t.category,
            district_id=t.district,
            kind=t.kind,
            **changes,
        )
        filed = await self.services.appeals.file(t.user, draft)
        t.id, t.created, t.start = filed.id, self.clock.now(), self.clock.now()
        self.appeals.append(t)

    def _acted(self, t: Truth) -> None:
        t.first_action = t.first_action or self.clock.now()

    async def reject(self, t: Truth, reason: RejectReason) -> None:
        await self.services.coordination.reject(self.coordinator, t.id, reason)
        self._acted(t)
        t.status, t.reason = S.rejected, reason.value

    async def route(self, t: Truth, agency: int) -> None:
        await self.services.coordination.route(self.coordinator, t.id, agency)
        self._acted(t)
        t.status, t.agency, t.official, t.paused = S.assigned, agency, None, 0

    async def take(self, t: Truth) -> None:
        await self.services.agency.take(self.official(t), t.id)
        t.status, t.official = S.in_progress, self.official(t).id

    async def ask(self, t: Truth) -> None:
        await self.services.agency.ask_clarification(self.official(t), t.id, "Уточните номер дома")
        t.status, t.asked = S.clarification, self.clock.now()

    async def reply(self, t: Truth) -> None:
        await self.services.replies.reply_clarification(t.user, t.id, "Дом 5, второй подъезд")
        assert t.asked is not None
        t.paused += int((self.clock.now() - t.asked).total_seconds())
        t.status, t.asked = S.in_progress, None

    async def request_extension(self, t: Truth) -> None:
        await self.services.agency.request_extension(self.official(t), t.id, 10, "Нужна экспертиза")

    async def approve_extension(self, t: Truth) -> None:
        requests = await f.rows(self.services, AppealRequest, AppealRequest.appeal_id == t.id)
        pending = [r for r in requests if r.status == "pending"]
        assert len(pending) == 1
        t.deadline_before_extension = (await f.appeal(self.services, t.id)).deadline_at
        await self.services.coordination.decide(self.coordinator, pending[0].id, True)

    async def answer(self, t: Truth) -> None:
        await self.services.agency.answer(self.official(t), t.id, "Работы выполнены, вода подана")
        t.status = S.answer_review
        t.submitted.append(self.clock.now())

    async def send_back(self, t: Truth) -> None:
        await self.services.coordination.review(self.coordinator, t.id, False, "Укажите сроки работ")
        t.status = S.in_progress
        t.returned.append(t.submitted[-1])

    async def approve(self, t: Truth) -> None:
        deadline = (await f.appeal(self.services, t.id)).deadline_at  # the deadline in force now
        await self.services.coordination.review(self.coordinator, t.id, True)
        now = self.clock.now()
        seconds = int((now - t.start).total_seconds()) - t.paused
        t.answers.append(Answer(now, seconds, deadline is None or now <= deadline))
        t.status = S.answered

    async def rate(self, t: Truth, score: int) -> None:
        await self.services.ratings.rate(t.user, t.id, score)
        self.ratings.append(RatingTruth(t, self.clock.now(), score, t.agency, t.official))
        if score > LOW_RATING:
            t.status = S.closed

    async def reopen(self, t: Truth) -> None:
        await self.services.ratings.reopen(t.user, t.id, "Ничего не сделано")
        t.status, t.reopens, t.start = S.reopened, t.reopens + 1, self.clock.now()

    async def ask_followup(self, t: Truth) -> None:
        # The scheduler's sweep asks the question (its own tests cover it); here only the row it writes.
        await f.followup(self.services, t.id, None, at=self.clock.now())

    async def answer_followup(self, t: Truth, answer: FollowupAnswer) -> None:
        if answer == FollowupAnswer.no:
            await self.services.ratings.reopen(t.user, t.id, "Так и не починили", followup=True)
            t.status, t.reopens, t.start = S.reopened, t.reopens + 1, self.clock.now()
        else:
            await self.services.ratings.answer_followup(t.user, t.id, answer)
        self.followups.append(FollowupTruth(t, self.clock.now(), answer.value))

    # --- the plans --------------------------------------------------------------------------------------------

    def new(self, agencies: list[int], weights: list[float]) -> Truth:
        directory = self.services.directory
        rng = self.rng
        block = rng.choice(directory.blocks())
        category = rng.choice(directory.categories(block.id))
        district = rng.choice(directory.districts())
        kind = AppealKind.appeal if rng.random() < 0.3 else AppealKind.message
        t = Truth(rng.choice(self.residents), category.id, block.id, district.id, kind, self.physical[category.id])
        t.agency = rng.choices(agencies, weights)[0]  # where it will go (set again when routed)
        return t

    def plan(self, t: Truth, created: datetime, scenario: str, approve_at: datetime | None = None) -> Plan:
        rng = self.rng
        at = created
        agency = t.agency
        assert agency is not None
        t.agency = None
        yield at, partial(self.file, t)
        if scenario == "moderation":
            return
        at += hours(rng.uniform(0.1, 40))
        if scenario == "rejected":
            reason = self.reasons[len(self.appeals) % len(self.reasons)]
            yield at, partial(self.reject, t, reason)
            return
        yield at, partial(self.route, t, agency)
        if scenario == "assigned":
            return
        at = yield from self.consider(t, at, scenario, approve_at)
        if scenario != "answered":
            return
        yield from self.after_answer(t, at)

    def consider(self, t: Truth, at: datetime, scenario: str, approve_at: datetime | None = None) -> Iterator[Any]:
        """Take, maybe a clarification, maybe an extension, the answer (maybe returned once) and its approval."""
        rng = self.rng
        at += hours(rng.uniform(0.2, 30))
        yield at, partial(self.take, t)
        if scenario == "in_progress":
            return at
        quick = approve_at is not None  # an edge answer: nothing that could push it past its moment
        if scenario == "clarification" or (not quick and rng.random() < 0.3):
            at += hours(rng.uniform(1, 72))
            yield at, partial(self.ask, t)
            if scenario == "clarification":
                return at
            at += hours(rng.uniform(2, 200))
            yield at, partial(self.reply, t)
        if not quick and rng.random() < 0.2:
            at += hours(rng.uniform(1, 48))
            yield at, partial(self.request_extension, t)
            at += hours(rng.uniform(1, 24))
            yield at, partial(self.approve_extension, t)
        span = 1 if quick else 16 if t.kind == AppealKind.message else 42
        at += timedelta(days=rng.uniform(0.1, span))
        yield at, partial(self.answer, t)
        if not quick and rng.random() < 0.15:
            at += hours(rng.uniform(1, 20))
            yield at, partial(self.send_back, t)
            at += hours(rng.uniform(2, 50))
            yield at, partial(self.answer, t)
        at += hours(rng.uniform(0.2, 30))
        if approve_at is not None:
            assert approve_at > at, "an edge answer's plan must leave room"
            at = approve_at
        yield at, partial(self.approve, t)
        return at

    def after_answer(self, t: Truth, at: datetime) -> Iterator[Any]:
        rng = self.rng
        if rng.random() < 0.25:
            return  # never rated (yet)
        at += hours(rng.uniform(0.5, 60))
        score = rng.choice([1, 2, 2, 3, 4, 5, 5, 5])
        yield at, partial(self.rate, t, score)
        if score <= LOW_RATING and t.reopens < 2 and rng.random() < 0.6:
            at += hours(rng.uniform(0.2, 20))
            yield at, partial(self.reopen, t)
            at = yield from self.again(t, at)
            if at is not None:
                yield from self.after_answer(t, at)
        elif score > LOW_RATING and t.physical and rng.random() < 0.7:
            at += timedelta(days=rng.uniform(3, 10))
            yield at, partial(self.ask_followup, t)
            at += hours(rng.uniform(1, 48))
            answer = rng.choice([FollowupAnswer.yes, FollowupAnswer.yes, FollowupAnswer.no, FollowupAnswer.unknown])
            if answer == FollowupAnswer.no and t.reopens >= 2:
                answer = FollowupAnswer.yes  # no more re-openings: a "no" would be refused
            yield at, partial(self.answer_followup, t, answer)
            if answer == FollowupAnswer.no and t.reopens < 2:
                at = yield from self.again(t, at)

    def again(self, t: Truth, at: datetime) -> Iterator[Any]:
        """A re-opened appeal routed again (to the same or another agency) and considered anew (or left waiting)."""
        rng = self.rng
        if rng.random() < 0.15:
            return None  # still with the coordinators
        at += hours(rng.uniform(0.5, 30))
        agency = t.agency if rng.random() < 0.7 else rng.choice(self.main_agencies)
        assert agency is not None
        yield at, partial(self.route, t, agency)
        t.agency = agency  # routed by now (consider() needs its official)
        return (yield from self.consider(t, at, "answered"))

    main_agencies: list[int] = []


async def build_dataset(path: Path, seed: int = 14) -> DataSet:
    settings = make_settings(path)
    engine = create_engine(settings.database.url)
    clock = ManualClock(START - timedelta(days=1))
    services = build_services(settings, create_sessionmaker(engine), clock)
    await services.directory.reload()
    world = await f.make_world(services, clock)
    sim = Simulation(services, clock, world, seed)
    others = [a.id for a in services.directory.agencies() if a.id not in (world.agency, world.agency_b)]
    agencies = [world.agency, world.agency_b, others[0], others[1]]
    sim.main_agencies = agencies[:3]
    tg = dict(f.TG)
    sim.officials = {world.agency: world["official"], world.agency_b: world["official_b"]}
    for n, agency in enumerate(agencies[2:]):
        tg[f"official_{n + 3}"] = 30 + n
        tg[f"supervisor_{n + 3}"] = 40 + n
        sim.officials[agency] = await f.staff(services, world["admin"], 30 + n, "official", agency)
        await f.staff(services, world["admin"], 40 + n, "supervisor", agency)
    sim.residents = [await f.resident(services, 2000 + n) for n in range(16)]
    sim.physical = {c.id: bool(c.physical) for c in await f.rows(services, Category)}
    weights = [0.4, 0.3, 0.27, 0.03]
    scenarios = ["answered"] * 64 + ["rejected"] * 12 + ["moderation"] * 4 + ["assigned"] * 8
    scenarios += ["in_progress"] * 8 + ["clarification"] * 4
    rng = sim.rng
    # A few hundred appeals filed over ten weeks, some right at the edges...
    for _ in range(240):
        created = START + timedelta(seconds=rng.uniform(0, (END - START).total_seconds() - 3600))
        sim.start(sim.plan(sim.new(agencies, weights), created, rng.choice(scenarios)))
    for edge in EDGES:
        for scenario in ("answered", "rejected"):
            sim.start(sim.plan(sim.new(agencies, weights), edge, scenario))
    # ...and some answered right at them (filed a few days before).
    for edge in EDGES:
        for _ in range(1):
            t = sim.new(agencies, weights)
            t.kind = AppealKind.message
            sim.start(sim.plan(t, edge - timedelta(days=rng.uniform(5, 20)), "answered", approve_at=edge))
    # Every agency index part needs an agency with too few answers to be ranked: the fourth one above has a few.
    await sim.run()
    clock.set(END)
    for t in sim.appeals:
        t.deadline = (await f.appeal(services, t.id)).deadline_at
    await checkpoint(engine)
    await engine.dispose()
    officials = {agency: actor.id for agency, actor in sim.officials.items()}
    return DataSet(path, sim.appeals, sim.ratings, sim.followups, agencies, officials, tg)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> DataSet:
    path = tmp_path_factory.mktemp("stats") / "stats.db"
    copy_db(template_db, path)
    return asyncio.run(build_dataset(path))


@pytest.fixture
def db_path(tmp_path: Path, dataset: DataSet) -> Path:
    path = tmp_path / "tsur.db"
    copy_db(dataset.path, path)
    return path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(END)


# --- the independent computation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One thing a metric counts: when its event happened, the dimension values it falls in, the official it is
    held to, and what it measures."""

    at: datetime
    attrs: dict[Dimension, Key]
    official: int | None
    measure: Any


def items(data: DataSet, metric: Metric) -> list[Item]:
    appeals = data.appeals
    match metric:
        case Metric.received | Metric.rejected_share:
            return [Item(t.created, t.attrs(), t.official, t) for t in appeals]
        case Metric.overdue:
            return [
                Item(t.created, t.attrs(), t.official, t)
                for t in appeals
                if t.status in (S.assigned, S.in_progress) and t.deadline is not None and t.deadline < END
            ]
        case Metric.first_action_median | Metric.first_action_p90:
            return [
                Item(t.first_action, t.attrs(), t.official, int((t.first_action - t.created).total_seconds()))
                for t in appeals
                if t.first_action is not None
            ]
        case Metric.rating_avg | Metric.rating_count:
            return [Item(r.at, r.appeal.attrs(r.agency, True), r.official, r.score) for r in data.ratings]
        case Metric.fixed_share:
            return [
                Item(r.at, r.appeal.attrs(), r.appeal.official, r.answer == FollowupAnswer.yes)
                for r in data.followups
                if r.answer in (FollowupAnswer.yes, FollowupAnswer.no)
            ]
    # The answer metrics: the latest answer of each appeal.
    return [Item(t.answers[-1].at, t.attrs(), t.official, t) for t in appeals if t.answers]


def local(at: datetime, dim: Dimension) -> str:
    day = at.astimezone(MSK).date()
    if dim == Dimension.month:
        return day.strftime("%Y-%m")
    if dim == Dimension.week:
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.isoformat()


def key_of(item: Item, dim: Dimension) -> Key:
    return local(item.at, dim) if dim in (Dimension.day, Dimension.week, Dimension.month) else item.attrs[dim]


def nearest_rank(values: list[int], percent: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(percent * len(ordered) / 100) - 1])


@dataclass(frozen=True)
class Cell:
    value: float | None
    base: int
    reasons: tuple[int, ...] = ()


def measure(metric: Metric, group: list[Item]) -> Cell:
    n = len(group)
    match metric:
        case Metric.received | Metric.answered | Metric.overdue | Metric.rating_count:
            return Cell(float(n), n)
        case Metric.on_time:
            k = sum(1 for i in group if i.measure.answers[-1].on_time)
            return Cell(float(k), k)
        case Metric.on_time_share:
            k = sum(1 for i in group if i.measure.answers[-1].on_time)
            return Cell(k / n if n else None, n)
        case Metric.reopened_share:
            k = sum(1 for i in group if i.measure.reopens > 0)
            return Cell(k / n if n else None, n)
        case Metric.answer_median | Metric.answer_p90:
            percent = 50 if metric == Metric.answer_median else 90
            return Cell(nearest_rank([i.measure.answers[-1].seconds for i in group], percent), n)
        case Metric.first_action_median | Metric.first_action_p90:
            percent = 50 if metric == Metric.first_action_median else 90
            return Cell(nearest_rank([i.measure for i in group], percent), n)
        case Metric.rejected_share:
            rejected = [i.measure.reason for i in group if i.measure.status == S.rejected]
            reasons = tuple(sum(1 for r in rejected if r == reason.value) for reason in RejectReason)
            return Cell(len(rejected) / n if n else None, n, reasons)
        case Metric.rating_avg:
            return Cell(sum(i.measure for i in group) / n if n else None, n)
        case Metric.fixed_share:
            return Cell(sum(1 for i in group if i.measure) / n if n else None, n)
    raise AssertionError(metric)


def expect(
    data: DataSet,
    spec: SliceSpec,
    period: Period,
    official: int | None = None,
    extra: dict[Dimension, tuple[Key, ...]] | None = None,
) -> tuple[dict[tuple[Key, ...], Cell], Cell]:
    """The slice's rows (keys -> cell) and its total, computed here."""
    filters = {dim: set(values) for dim, values in spec.filters}
    for dim, values in (extra or {}).items():
        filters[dim] = filters.get(dim, set(values)) & set(values)
    chosen = [
        i
        for i in items(data, spec.metric)
        if period.start <= i.at < period.end
        and all(i.attrs[dim] in values for dim, values in filters.items())
        and (official is None or i.official == official)
    ]
    groups: dict[tuple[Key, ...], list[Item]] = defaultdict(list)
    for i in chosen:
        groups[tuple(key_of(i, d) for d in spec.dims)].append(i)
    cells = {keys: measure(spec.metric, group) for keys, group in groups.items()}
    if spec.dims:
        cells = {keys: c for keys, c in cells.items() if c.base or c.value}
    return cells, measure(spec.metric, chosen)


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def compare(table: Table, expected: tuple[dict[tuple[Key, ...], Cell], Cell]) -> list[str]:
    """What differs between the SQL table and the independent computation (empty: nothing)."""
    cells, total = expected
    what = f"{table.spec.metric.value} by {[d.value for d in table.spec.dims]} {dict(table.spec.filters)} " + (
        f"{table.period.first_day}..{table.period.last_day}"
    )
    errors = []
    got = {r.keys: Cell(r.value, r.base, r.reasons) for r in table.rows}
    if table.spec.dims:
        for keys in sorted(set(got) | set(cells), key=str):
            a, b = got.get(keys), cells.get(keys)
            if a is None or b is None or a.base != b.base or not close(a.value, b.value) or a.reasons != b.reasons:
                errors.append(f"{what} {keys}: SQL {a}, expected {b}")
    t = table.total
    if total.base == 0:
        # Nothing to count: a count is 0, a share, an average or a percentile is not known.
        if t.base != 0 or (t.value or 0) != 0:
            errors.append(f"{what} total: SQL {t}, expected nothing")
    elif t.base != total.base or not close(t.value, total.value) or (t.reasons and t.reasons != total.reasons):
        errors.append(f"{what} total: SQL {t.value}/{t.base}, expected {total.value}/{total.base}")
    return errors


def custom(first: str, last: str, metric: Metric, *dims: Dimension, **filters: tuple[Key, ...]) -> SliceSpec:
    spec = SliceSpec(metric, tuple(dims), (), PeriodKind.custom, first, last)
    for name, values in filters.items():
        spec = spec.with_filter(Dimension(name), values)  # type: ignore[arg-type]
    return spec


async def check(
    services: Services, data: DataSet, actor: Actor, spec: SliceSpec, **held: Any
) -> tuple[list[str], Table]:
    table = await services.stats.slice(actor, spec)
    return compare(table, expect(data, spec, table.period, **held)), table


# --- 1–2. every metric, by every dimension and some pairs, for several periods -----------------------------


async def test_the_data_set_has_every_kind_of_history(dataset: DataSet) -> None:
    """The generator made what the checks need (so that none of them passes over an empty set)."""
    appeals = dataset.appeals
    answers = [a for t in appeals for a in t.answers]
    statuses = {t.status for t in appeals}
    assert 250 <= len(appeals) <= 400
    assert {S.moderation, S.rejected, S.assigned, S.in_progress, S.clarification, S.answered, S.closed} <= statuses
    assert S.reopened in statuses
    assert any(a.on_time for a in answers) and any(not a.on_time for a in answers)
    assert sum(1 for t in appeals if t.reopens and len(t.answers) > 1) >= 5
    assert {t.reason for t in appeals if t.reason} == {r.value for r in RejectReason}
    assert {r.score for r in dataset.ratings} == {1, 2, 3, 4, 5}
    assert {r.answer for r in dataset.followups} == {"yes", "no", "unknown"}
    assert sum(1 for t in appeals if t.status in (S.assigned, S.in_progress) and t.deadline and t.deadline < END) >= 5
    assert {t.agency for t in appeals if t.answers} == set(dataset.agencies)
    assert {t.kind for t in appeals} == {AppealKind.message, AppealKind.appeal}
    # Answered in time only thanks to an extension (the deadline in force at the answer had moved), and with pauses
    # left out of the answer time.
    extended = [t for t in appeals if t.deadline_before_extension and t.answers]
    assert any(t.answers[-1].on_time and t.answers[-1].at > t.deadline_before_extension for t in extended)
    assert any(t.paused for t in appeals if t.answers)
    assert any(t.returned for t in appeals)
    assert {a.at for t in appeals for a in t.answers} >= set(EDGES)
    assert {t.created for t in appeals} >= set(EDGES)


@pytest.mark.parametrize("metric", list(Metric))
async def test_every_metric_matches_an_independent_count(services: Services, dataset: DataSet, metric: Metric) -> None:
    """Each metric, with no dimension over several periods, by every dimension, by pairs (time ones included: day,
    week and month in the region's time) and with filters, equals what Python counts from the ground truth."""
    analyst = await services.users.identify(dataset.tg["analyst"])
    agencies = dataset.agencies
    some_block = services.directory.blocks()[0].id
    specs = [SliceSpec(metric, (), (), period) for period in (PeriodKind.today, PeriodKind.days7)]
    specs += [SliceSpec(metric, (), (), PeriodKind.last_month), SliceSpec(metric, (), (), PeriodKind.days30)]
    specs += [custom(*CUSTOM, metric), custom(*WHOLE, metric)]
    specs += [custom(*WHOLE, metric, dim) for dim in Dimension]
    specs += [SliceSpec(metric, (dim,), (), PeriodKind.last_month) for dim in (Dimension.agency, Dimension.day)]
    specs += [custom(*CUSTOM, metric, Dimension.day), SliceSpec(metric, (Dimension.day,), (), PeriodKind.days7)]
    pairs = [
        (Dimension.agency, Dimension.day),
        (Dimension.category, Dimension.district),
        (Dimension.block, Dimension.week),
        (Dimension.status, Dimension.kind),
        (Dimension.district, Dimension.month),
        (Dimension.week, Dimension.agency),
    ]
    specs += [custom(*WHOLE, metric, *pair) for pair in pairs]
    specs += [
        custom(*WHOLE, metric, Dimension.district, agency=(agencies[0], agencies[2])),
        custom(*WHOLE, metric, Dimension.agency, kind=(AppealKind.appeal.value,)),
        custom(*CUSTOM, metric, Dimension.week, block=(some_block,)),
        custom(*WHOLE, metric, Dimension.kind, status=(S.closed.value, S.answered.value, S.reopened.value)),
        SliceSpec(metric, (Dimension.month,), (), PeriodKind.last_month).with_filter(Dimension.agency, (agencies[1],)),
    ]
    errors: list[str] = []
    sizes = []
    for spec in specs:
        found, table = await check(services, dataset, analyst, spec)
        errors += found
        sizes.append(len(table.rows) if spec.dims else table.total.base)
    assert errors == []
    assert sum(sizes) > 0


async def test_the_period_edges_fall_on_the_region_s_midnight(services: Services, dataset: DataSet) -> None:
    """An appeal filed (or answered) at 23:59:59 Moscow counts on that day, one at 00:00 on the next; days, weeks
    and months are the region's, not UTC's."""
    analyst = await services.users.identify(dataset.tg["analyst"])
    table = await services.stats.slice(analyst, custom(*CUSTOM, Metric.received, Dimension.day))
    days = {r.keys[0]: r.base for r in table.rows}
    first = [t for t in dataset.appeals if t.created == msk(10, 5)]
    before = [t for t in dataset.appeals if t.created == msk(10, 4, 23, 59, 59)]
    assert first and before
    assert "2026-10-04" not in days and days["2026-10-05"] >= len(first)
    month = await services.stats.slice(analyst, custom(*WHOLE, Metric.answered, Dimension.month))
    by_month = {r.keys[0]: r.base for r in month.rows}
    answered_at = [t.answers[-1].at.astimezone(MSK) for t in dataset.appeals if t.answers]
    assert by_month["2026-10"] == sum(1 for at in answered_at if (at.year, at.month) == (2026, 10))
    assert msk(10, 31, 23, 59, 59) in {t.answers[-1].at for t in dataset.appeals if t.answers}


async def test_day_week_and_month_are_not_mixed_up_by_the_statement_cache(services: Services, dataset: DataSet) -> None:
    """The same slice by month, by week, by day and by month again: each gets its own buckets (the unit was a bound
    value once, which SQLAlchemy's statement cache does not tell apart, so the first unit compiled served them
    all)."""
    analyst = await services.users.identify(dataset.tg["analyst"])
    keys: dict[Dimension, set[Key]] = {}
    for dim in (Dimension.month, Dimension.week, Dimension.day, Dimension.month):
        table = await services.stats.slice(analyst, custom(*WHOLE, Metric.received, dim))
        keys[dim] = {r.keys[0] for r in table.rows}
    assert keys[Dimension.month] == {"2026-08", "2026-09", "2026-10", "2026-11"}
    weeks = [date.fromisoformat(str(k)) for k in keys[Dimension.week]]
    assert len(weeks) == 11 and {w.weekday() for w in weeks} == {0}
    assert min(weeks) == date(2026, 8, 24) and max(weeks) == date(2026, 11, 2)
    days = [date.fromisoformat(str(k)) for k in keys[Dimension.day]]
    assert len(days) > 50 and max(days) == date(2026, 11, 2)


async def test_a_slice_of_an_empty_period_counts_nothing(services: Services, dataset: DataSet) -> None:
    """Before the first appeal: counts are 0, shares, averages and percentiles not known (on PostgreSQL a share's
    0/0 raised a division by zero; SQLite said NULL)."""
    analyst = await services.users.identify(dataset.tg["analyst"])
    for metric in Metric:
        table = await services.stats.slice(analyst, custom("2026-01-01", "2026-01-31", metric))
        kind = table.kind.value
        assert (table.total.value, table.total.base) == ((0.0, 0) if kind == "count" else (None, 0)), metric
        by_agency = await services.stats.slice(analyst, custom("2026-01-01", "2026-01-31", metric, Dimension.agency))
        assert by_agency.rows == [] and by_agency.total.base == 0, metric


# --- scopes --------------------------------------------------------------------------------------------------


async def test_each_role_gets_exactly_its_subset(services: Services, dataset: DataSet) -> None:
    """A block head reads the block, a supervisor the agency, an official their own appeals and ratings: the same
    figures as the whole region's filtered by hand; another block or agency is refused."""
    data = dataset
    supervisor = await services.users.identify(data.tg["supervisor"])
    official = await services.users.identify(data.tg["official_b"])
    editor = await services.users.identify(data.tg["editor"])
    block = services.directory.blocks()[1].id
    other_block = services.directory.blocks()[2].id
    block_head = replace(editor, roles=frozenset({Role.block_head}), block_id=block)
    errors: list[str] = []
    for metric in Metric:
        for dims in ((), (Dimension.agency,), (Dimension.category, Dimension.week)):
            spec = custom(*WHOLE, metric, *dims)
            errors += (await check(services, data, block_head, spec, extra={Dimension.block: (block,)}))[0]
            agency = supervisor.agency_id
            errors += (await check(services, data, supervisor, spec, extra={Dimension.agency: (agency,)}))[0]
            errors += (await check(services, data, official, spec, official=official.id))[0]
    assert errors == []
    audited = await f.last_id(services, f.AuditEntry)
    with pytest.raises(Forbidden):
        await services.stats.slice(
            block_head, custom(*WHOLE, Metric.received).with_filter(Dimension.block, (other_block,))
        )
    refused = [(a[0], a[1], a[3].get("refused")) for a in await f.audits(services, audited)]
    assert refused == [(editor.id, "refused", "stats:another_block")]
    other_category = services.directory.categories(other_block)[0].id
    with pytest.raises(Forbidden):
        await services.stats.slice(
            block_head, custom(*WHOLE, Metric.received).with_filter(Dimension.category, (other_category,))
        )
    with pytest.raises(Forbidden):
        spec = custom(*WHOLE, Metric.received).with_filter(Dimension.agency, (data.agencies[1],))
        await services.stats.slice(supervisor, spec)
    resident = await services.users.identify(2000)
    with pytest.raises(Forbidden):
        await services.stats.slice(resident, custom(*WHOLE, Metric.received))


# --- 3. the agency index ---------------------------------------------------------------------------------------


@dataclass
class Expected:
    agency: int
    answered: int
    parts: dict[str, float | None]
    index: float | None


def agency_index(data: DataSet, period: Period, weights: dict[str, float], worst_days: int) -> list[Expected]:
    """The index of every agency with something in the period, from the ground truth."""
    inside = lambda at: period.start <= at < period.end  # noqa: E731
    answered: dict[int, list[Truth]] = defaultdict(list)
    for t in data.appeals:
        if t.answers and inside(t.answers[-1].at) and t.agency is not None:
            answered[t.agency].append(t)
    scores: dict[int, list[int]] = defaultdict(list)
    for r in data.ratings:
        if inside(r.at) and r.agency is not None:
            scores[r.agency].append(r.score)
    checked: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for t in data.appeals:
        if t.agency is None:
            continue
        checked[t.agency][0] += sum(1 for at in t.submitted if inside(at))
        checked[t.agency][1] += sum(1 for at in t.returned if inside(at))
    result = []
    for agency in sorted(set(answered) | set(scores) | {a for a, (n, _r) in checked.items() if n}):
        appeals = answered.get(agency, [])
        n = len(appeals)
        median = nearest_rank([t.answers[-1].seconds for t in appeals], 50)
        submitted, sent_back = checked[agency]
        parts: dict[str, float | None] = {
            "on_time": sum(1 for t in appeals if t.answers[-1].on_time) / n if n else None,
            "answer_time": max(0.0, 1 - median / (worst_days * 86400)) if median is not None else None,
            "rating": (sum(scores[agency]) / len(scores[agency]) - 1) / 4 if scores.get(agency) else None,
            "reopened": 1 - sum(1 for t in appeals if t.reopens) / n if n else None,
            "returned": 1 - sent_back / submitted if submitted else None,
        }
        weighted = [(weights[name], part) for name, part in parts.items() if part is not None]
        total = sum(w for w, _p in weighted)
        index = round(100 * sum(w * p for w, p in weighted) / total, 1) if total > 0 else None
        result.append(Expected(agency, n, parts, index))
    return result


def ranking(entries: list[Expected], minimum: int) -> tuple[list[int], list[int]]:
    ranked = [e for e in entries if e.answered >= minimum and e.index is not None]
    ranked.sort(key=lambda e: (-(e.index or 0), -e.answered, e.agency))
    apart = sorted((e for e in entries if e not in ranked), key=lambda e: (-e.answered, e.agency))
    return [e.agency for e in ranked], [e.agency for e in apart]


async def test_the_agency_index_is_the_weighted_mean_of_its_parts(db_path: Path, dataset: DataSet) -> None:
    """With weights and a minimum from the config: each agency's parts and index as computed here, the agencies
    with fewer answered appeals than the minimum apart, and the rank of the period before."""
    weights = {"on_time": 0.5, "answer_time": 0.1, "rating": 0.2, "reopened": 0.05, "returned": 0.15}
    settings = make_settings(db_path, stats={"index": weights, "min_appeals": 12, "answer_days_worst": 20})
    engine = create_engine(settings.database.url)
    services = build_services(settings, create_sessionmaker(engine), ManualClock(END))
    await services.directory.reload()
    try:
        analyst = await services.users.identify(dataset.tg["analyst"])
        period = services.stats.period(SliceSpec(period=PeriodKind.last_month))
        rating = await services.stats.rating(analyst, period)
    finally:
        await engine.dispose()
    expected = agency_index(dataset, period, weights, 20)
    ranked, apart = ranking(expected, 12)
    assert [e.agency_id for e in rating.ranked] == ranked
    assert [e.agency_id for e in rating.apart] == apart
    assert len(ranked) >= 2 and apart, "the data set must leave an agency below the minimum"
    assert [e.rank for e in rating.ranked] == list(range(1, len(ranked) + 1))
    by_id = {e.agency: e for e in expected}
    for entry in rating.ranked + rating.apart:
        mine = by_id[entry.agency_id]
        assert entry.answered == mine.answered
        assert entry.index == mine.index, entry.agency_id
        assert entry.parts.keys() == mine.parts.keys()
        for name, part in mine.parts.items():
            assert close(entry.parts[name], part), (entry.agency_id, name, entry.parts[name], part)
    previous = ranking(agency_index(dataset, period.before(), weights, 20), 12)[0]
    assert previous, "the period before must have a ranking too"
    for entry in rating.ranked:
        assert entry.previous_rank == (previous.index(entry.agency_id) + 1 if entry.agency_id in previous else None)
    assert any(e.previous_rank is not None and e.previous_rank != e.rank for e in rating.ranked) or len(ranked) < 3


# --- 4. problem spots -------------------------------------------------------------------------------------------


async def test_a_category_and_district_that_grew_past_the_factor_is_a_problem_spot(
    services: Services, dataset: DataSet, clock: ManualClock
) -> None:
    """The week of 26 October against the 4 weeks before (28 September – 25 October), factor 2, at least 5: what
    grew past twice its weekly average is flagged, what did not (or is too small) is not; the week and the 4 weeks
    are cut at the region's midnight."""
    week = services.stats.days(date(2026, 10, 26), date(2026, 11, 1))
    used = {(t.category, t.district) for t in dataset.appeals}
    free = [
        (c.id, d.id)
        for b in services.directory.blocks()
        for c in services.directory.categories(b.id)
        for d in services.directory.districts()
        if (c.id, d.id) not in used
    ]
    a, b, c, d, g = free[:5]
    resident = await services.users.identify(2000)
    n = 0

    async def file(cell: tuple[int, int], at: datetime, times: int = 1) -> None:
        nonlocal n
        for _ in range(times):
            clock.set(at)
            draft = f.draft(services, draft_id=f"spot-{n:06d}", category_id=cell[0], district_id=cell[1])
            await services.appeals.file(resident, draft)
            n += 1

    weeks_before = [msk(9, 28) + timedelta(days=7 * i, hours=12) for i in range(4)]
    for at in weeks_before[:3]:
        await file(a, at)
    await file(a, msk(10, 25, 23, 59, 59))  # the 4th week's last second
    await file(a, msk(10, 26), 6)  # the week's first second: 6 against 1 a week
    for at in weeks_before:
        await file(b, at, 3)
    await file(b, msk(10, 28, 12), 6)  # 6 against 3 a week: not more than twice
    await file(c, msk(10, 29, 12), 4)  # new, but fewer than 5
    await file(d, msk(11, 1, 23, 59, 59), 5)  # new, 5 (the week's last second)
    for at in weeks_before:
        await file(g, at, 2)
    await file(g, msk(9, 27, 23, 59, 59), 4)  # a second before the 4 weeks: not counted
    await file(g, msk(10, 30, 12), 5)  # 5 against 2 a week
    await file(c, msk(11, 2), 3)  # after the week: not counted
    clock.set(END)
    async with services.stats.sessionmaker() as session:
        spots = await services.stats.problem_spots(session, Scope(), week)
    flagged = {(s.category_id, s.district_id): s for s in spots}
    assert a in flagged and d in flagged and g in flagged
    assert b not in flagged and c not in flagged
    assert (flagged[a].count, flagged[a].weekly_before, flagged[a].factor) == (6, 1.0, 6.0)
    assert (flagged[d].count, flagged[d].weekly_before, flagged[d].factor) == (5, 0.0, None)
    assert (flagged[g].count, flagged[g].weekly_before) == (5, 2.0)
    # Nothing else in the data set grew so (checked independently over every cell).
    cells: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for t in dataset.appeals:
        cells[(t.category, t.district)].append(t.created)
    for cell, moments in cells.items():
        now = sum(1 for at in moments if week.start <= at < week.end)
        before = sum(1 for at in moments if week.start - timedelta(days=28) <= at < week.start)
        assert (cell in flagged) == (now >= 5 and now > 2 * before / 4), cell
    assert [s.factor or math.inf for s in spots] == sorted((s.factor or math.inf for s in spots), reverse=True)


# --- 6. periods ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "kind", "first", "last"),
    [
        (msk(1, 1, 0, 30), PeriodKind.today, date(2026, 1, 1), date(2026, 1, 1)),  # 31 Dec 21:30 UTC
        (msk(1, 1, 0, 30), PeriodKind.days7, date(2025, 12, 26), date(2026, 1, 1)),
        (msk(1, 1, 0, 30), PeriodKind.days30, date(2025, 12, 3), date(2026, 1, 1)),
        (msk(1, 1, 0, 30), PeriodKind.this_month, date(2026, 1, 1), date(2026, 1, 1)),
        (msk(1, 1, 0, 30), PeriodKind.last_month, date(2025, 12, 1), date(2025, 12, 31)),
        (msk(1, 1, 0, 30), PeriodKind.quarter, date(2026, 1, 1), date(2026, 1, 1)),
        (msk(1, 1, 0, 30), PeriodKind.year, date(2026, 1, 1), date(2026, 1, 1)),
        (msk(12, 31, 23, 59, 59, year=2025), PeriodKind.year, date(2025, 1, 1), date(2025, 12, 31)),
        (msk(3, 1, 2), PeriodKind.this_month, date(2026, 3, 1), date(2026, 3, 1)),  # 28 Feb 23:00 UTC
        (msk(3, 1, 2), PeriodKind.last_month, date(2026, 2, 1), date(2026, 2, 28)),
        (msk(3, 1, 2), PeriodKind.days30, date(2026, 1, 31), date(2026, 3, 1)),
        (msk(3, 31, 23, 59, 59), PeriodKind.quarter, date(2026, 1, 1), date(2026, 3, 31)),
        (msk(4, 1), PeriodKind.quarter, date(2026, 4, 1), date(2026, 4, 1)),
        (msk(4, 1), PeriodKind.last_month, date(2026, 3, 1), date(2026, 3, 31)),
        (msk(10, 1, 1), PeriodKind.quarter, date(2026, 10, 1), date(2026, 10, 1)),
        (msk(7, 15, 12), PeriodKind.quarter, date(2026, 7, 1), date(2026, 7, 15)),
    ],
)
async def test_each_period_kind_at_its_edges(
    services: Services, now: datetime, kind: PeriodKind, first: date, last: date
) -> None:
    """The local days a period covers, and its [start, end) at the region's midnights (21:00 UTC)."""
    period = services.stats.period(SliceSpec(period=kind), now)
    assert (period.first_day, period.last_day) == (first, last)
    assert period.start == datetime.combine(first, datetime.min.time(), MSK)
    assert period.end == datetime.combine(last + timedelta(days=1), datetime.min.time(), MSK)
    assert period.start.astimezone(UTC).hour == 21
    if kind == PeriodKind.last_month:
        assert period.end <= now < period.end + timedelta(days=31)
    else:
        assert period.start <= now < period.end


async def test_a_custom_period_is_two_local_days_both_included(services: Services) -> None:
    now = msk(11, 2, 15)
    spec = SliceSpec(period=PeriodKind.custom, start="01.10.2026", end="2026-10-31")
    period = services.stats.period(spec, now)
    assert (period.start, period.end) == (datetime(2026, 9, 30, 21, tzinfo=UTC), datetime(2026, 10, 31, 21, tzinfo=UTC))
    today = services.stats.period(replace(spec, start="02.11.2026", end="02.11.2026"), now)
    assert today.end == datetime(2026, 11, 2, 21, tzinfo=UTC)
    assert parse_days("01.10.2026 – 31.10.2026") == (date(2026, 10, 1), date(2026, 10, 31))
    assert parse_days("1.10.2026 31.10.2026") == (date(2026, 10, 1), date(2026, 10, 31))
    longest = services.stats.period(replace(spec, start="2021-10-29", end="2026-11-01"), now)
    assert (longest.last_day - longest.first_day).days + 1 == services.stats.settings.stats.max_period_days == 1830


@pytest.mark.parametrize(
    ("start", "end", "detail"),
    [
        ("03.11.2026", "03.11.2026", "future"),  # tomorrow in Grozny (still 2 November in UTC at 23:30 local)
        ("01.10.2026", "03.11.2026", "future"),
        ("31.10.2026", "01.10.2026", "reversed"),
        ("32.13.2026", "01.10.2026", "malformed"),
        ("yesterday", "01.10.2026", "malformed"),
        ("30.02.2026", "01.10.2026", "malformed"),
        ("2026-10-01", "", "malformed"),
        ("01.01.2006", "31.12.2025", "too_long"),
        ("2021-10-28", "2026-11-01", "too_long"),  # one day over the maximum
    ],
)
async def test_a_bad_period_is_refused_with_its_reason(services: Services, start: str, end: str, detail: str) -> None:
    now = msk(11, 2, 23, 30)
    with pytest.raises(PeriodRefused) as refused:
        services.stats.period(SliceSpec(period=PeriodKind.custom, start=start, end=end or None), now)
    assert refused.value.detail == detail
    with pytest.raises(PeriodRefused) as typed:
        parse_days("01.10.2026")
    assert typed.value.detail == "malformed"
    assert parse_day("2026-10-01") == date(2026, 10, 1)
