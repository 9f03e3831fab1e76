"""SLA clocks: deadlines set on routing, reminders to the official, pauses, extensions, escalations, quiet
hours, the 59-ФЗ forwarding reminder, digests, restarts, concurrent sweeps and the APScheduler wiring.

Service-level tests, no Telegram. Time travels with the ManualClock and `services.reminders.sweep()` is
called by hand; the rows the services write (`reminders`, `outbox`, `appeals.deadline_at`) are read back.

Europe/Moscow is UTC+03:00 all year (no DST since 2014); expected moments are written in Moscow time.
The production calendar (storage/data/calendar.toml) has no working Saturdays in 2026 or 2027, so the
working-day cases cross holidays and the transferred day off (31 December 2026), not a working weekend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import ManualClock
from bot.config import ConfigError, Settings
from bot.scheduler import create_scheduler
from bot.services import build_services
from bot.services.calendar import ProductionCalendar
from bot.services.deadlines import ReminderService
from bot.services.users import Actor
from storage.db import create_engine, create_sessionmaker
from storage.models import Appeal, AppealRequest, Outbox, Reminder
from storage.repositories.reminders import ReminderRepo
from tests.conftest import make_settings
from tests.databases import ON_POSTGRES, checkpoint, copy_db
from tests.factories import TG, World, appeal, make_world, rows, staff

MSK = ZoneInfo("Europe/Moscow")
US = timedelta(microseconds=1)
AGENCY_TEMPLATES = ("reminder_half", "reminder_day_before", "reminder_deadline")
REMINDER_TEMPLATES = (*AGENCY_TEMPLATES, "escalation", "forward_due")
APPLICANT = {"applicant_name": "Иванов Иван Иванович", "applicant_contact": "+7 928 000-00-00"}


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    """A Moscow wall-clock moment, as an aware UTC datetime (what the database returns)."""
    return datetime(year, month, day, hour, minute, tzinfo=MSK).astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """23:59:59.999999 Moscow time of `day`, in UTC: where a term ends."""
    return datetime.combine(day, time.max, tzinfo=MSK).astimezone(UTC)


def ref(row: Appeal, deadline: datetime | None = None) -> dict[str, Any]:
    """The params of a reminder about `row` (its deadline as the sweep saw it)."""
    moment = deadline if deadline is not None else row.deadline_at
    assert moment is not None
    return {"appeal_id": row.id, "number": row.number, "deadline": moment.astimezone(UTC).isoformat()}


# --- the environment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class People:
    """A database file with everyone of factories.TG set up once through the services."""

    path: Path
    people: dict[str, Actor]
    agency: int
    agency_b: int


@pytest.fixture(scope="session")
def people_db(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> People:
    path = tmp_path_factory.mktemp("deadlines") / "people.db"
    copy_db(template_db, path)

    async def build() -> People:
        settings = make_settings(path)
        engine = create_engine(settings.database.url)
        clock = ManualClock()
        built = build_services(settings, create_sessionmaker(engine), clock)
        await built.directory.reload()
        world = await make_world(built, clock)
        await checkpoint(engine)
        await engine.dispose()
        return People(path, world.people, world.agency, world.agency_b)

    return asyncio.run(build())


@dataclass
class Env(World):
    """A World (admin, coordinator, official and supervisor of the suggested agency, residents, the same
    for another agency) with the settings and the engine its services were built on."""

    settings: Settings = field(kw_only=True)
    engine: AsyncEngine = field(kw_only=True)

    @property
    def reminders(self) -> ReminderService:
        return self.services.reminders

    async def message(self, **changes: object) -> Appeal:
        """A сообщение filed now, routed to the suggested agency and taken by its official."""
        return await self.in_progress(**changes)

    async def obrashchenie(self, **changes: object) -> Appeal:
        """An обращение (59-ФЗ) filed now, routed and taken."""
        return await self.in_progress(kind="appeal", **APPLICANT, **changes)


class Opener:
    """Builds services with chosen config sections on one database file; several at once, or one after
    another (a restart), each on its own engine."""

    def __init__(self, path: Path, clock: ManualClock, base: People) -> None:
        self.path = path
        self.clock = clock
        self.base = base
        self.engines: list[AsyncEngine] = []

    async def __call__(self, **sections: dict[str, Any]) -> Env:
        return await self.attach(make_settings(self.path, **sections))

    async def attach(self, settings: Settings) -> Env:
        """Another `build_services` on the same database (another process, or the same one restarted)."""
        engine = create_engine(settings.database.url)
        self.engines.append(engine)
        built = build_services(settings, create_sessionmaker(engine), self.clock)
        await built.directory.reload()
        return Env(
            built,
            self.clock,
            dict(self.base.people),
            self.base.agency,
            self.base.agency_b,
            settings=settings,
            engine=engine,
        )

    async def restart(self, env: Env) -> Env:
        """Drop the engine of `env` (the process stops) and build everything anew on the same file."""
        await env.engine.dispose()
        return await self.attach(env.settings)

    async def close(self) -> None:
        for engine in self.engines:
            await engine.dispose()


@pytest.fixture
async def open_env(tmp_path: Path, people_db: People, clock: ManualClock) -> AsyncIterator[Opener]:
    path = tmp_path / "deadlines.db"
    copy_db(people_db.path, path)
    opener = Opener(path, clock, people_db)
    yield opener
    await opener.close()


# --- reading rows --------------------------------------------------------------------------------

Sent = tuple[int, str, dict[str, Any], datetime]


async def sent(env: Env, templates: tuple[str, ...] = REMINDER_TEMPLATES) -> list[Sent]:
    """(user id, template, params, queued at) of the outbox rows of `templates`, oldest first."""
    found = await rows(env.services, Outbox, Outbox.template.in_(templates))
    return [(o.user_id, o.template, dict(o.params), o.created_at) for o in found]


async def plan(env: Env, appeal_id: int) -> list[tuple[str, int, datetime, datetime | None]]:
    """(kind, seq, due_at, sent_at) of every reminder row of an appeal."""
    found = await rows(env.services, Reminder, Reminder.appeal_id == appeal_id)
    return sorted(((r.kind, r.seq, r.due_at, r.sent_at) for r in found), key=lambda r: (r[2], r[0], r[1]))


async def pending(env: Env, appeal_id: int) -> dict[str, datetime]:
    """kind -> due_at of the reminders of an appeal not sent yet."""
    found = await rows(env.services, Reminder, Reminder.appeal_id == appeal_id, Reminder.sent_at.is_(None))
    assert len({r.kind for r in found}) == len(found), "two pending reminders of one kind"
    return {r.kind: r.due_at for r in found}


async def sweep_at(env: Env, moment: datetime, times: int = 3) -> int:
    """Travel to `moment` and sweep `times` times there; the reminders claimed by all of them."""
    env.clock.set(moment)
    return sum([await env.reminders.sweep() for _ in range(times)])


async def sweep_every(env: Env, start: datetime, end: datetime, step: timedelta) -> None:
    moment = start
    while moment <= end:
        await sweep_at(env, moment, times=1)
        moment += step


def escalations(notes: list[Sent], appeal_id: int) -> list[tuple[int, int, datetime]]:
    """(user id, days over, queued at) of the escalations of one appeal."""
    return [(u, p["days"], t) for u, tpl, p, t in notes if tpl == "escalation" and p["appeal_id"] == appeal_id]


# --- 1. the deadline set on routing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("filed", "kind", "last_day"),
    [
        pytest.param(at(11, 2, 12), "message", date(2026, 11, 12), id="message-10-days"),
        pytest.param(at(11, 2, 12), "appeal", date(2026, 12, 2), id="appeal-30-days"),
        pytest.param(at(11, 2, 23, 59), "message", date(2026, 11, 12), id="23:59-msk-is-still-that-day"),
        pytest.param(at(11, 3, 0, 30), "message", date(2026, 11, 13), id="00:30-msk-is-the-next-day"),
        pytest.param(at(10, 25, 12), "message", date(2026, 11, 5), id="4-november-holiday-moves-to-5th"),
        pytest.param(at(11, 4, 12), "message", date(2026, 11, 16), id="saturday-moves-to-monday"),
        pytest.param(at(12, 2, 12), "appeal", date(2027, 1, 11), id="1-january-moves-past-new-year-holidays"),
        pytest.param(at(12, 21, 12), "message", date(2027, 1, 11), id="31-december-transferred-day-off"),
    ],
)
async def test_routing_sets_a_calendar_day_deadline_at_the_end_of_the_moscow_day(
    open_env: Opener, clock: ManualClock, filed: datetime, kind: str, last_day: date
) -> None:
    env = await open_env()
    clock.set(filed)
    extra: dict[str, object] = {"kind": kind, **APPLICANT} if kind == "appeal" else {}
    row = await env.file(**extra)
    assert row.deadline_at is None  # not before routing
    await env.services.coordination.route(env["coordinator"], row.id)
    deadline = (await appeal(env.services, row.id)).deadline_at
    assert deadline == end_of_day(last_day)
    assert deadline is not None
    local = deadline.astimezone(MSK)
    assert (local.date(), local.time()) == (last_day, time(23, 59, 59, 999999))
    assert deadline == datetime.combine(last_day, time(20, 59, 59, 999999), tzinfo=UTC)


async def test_the_term_counts_from_registration_not_from_routing(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    row = await env.file()  # 2 November
    clock.set(at(11, 5, 15))
    await env.services.coordination.route(env["coordinator"], row.id)
    assert (await appeal(env.services, row.id)).deadline_at == end_of_day(date(2026, 11, 12))


@pytest.mark.parametrize(
    ("filed", "deadlines", "kind", "last_day"),
    [
        # 3 Nov, [4 Nov holiday], 5, 6, 9, 10, 11, 12, 13, 16, 17: ten working days.
        pytest.param(at(11, 2, 12), {}, "message", date(2026, 11, 17), id="message-crosses-4-november"),
        # 19 working days left in November after the 2nd (4th is a holiday), then 1–4, 7–11, 14, 15 December.
        pytest.param(at(11, 2, 12), {}, "appeal", date(2026, 12, 15), id="appeal-crosses-4-november"),
        # 25, 28, 29, 30 December, [31 Dec transferred day off, 1–10 January 2027 off], 11 January.
        pytest.param(
            at(12, 24, 12), {"message_days": 5}, "message", date(2027, 1, 11), id="crosses-new-year-and-31-december"
        ),
        # Filed on the holiday itself: 5, 6, 9, 10, 11 November.
        pytest.param(at(11, 4, 12), {"message_days": 5}, "message", date(2026, 11, 11), id="filed-on-a-holiday"),
    ],
)
async def test_working_day_terms_skip_holidays_and_transferred_days_off(
    open_env: Opener, clock: ManualClock, filed: datetime, deadlines: dict[str, Any], kind: str, last_day: date
) -> None:
    env = await open_env(deadlines={"working_days": True, **deadlines})
    clock.set(filed)
    extra: dict[str, object] = {"kind": kind, **APPLICANT} if kind == "appeal" else {}
    row = await env.assigned(**extra)
    assert row.deadline_at == end_of_day(last_day)


@pytest.mark.parametrize(
    ("working_days", "overridden", "other"),
    [
        # Calendar days: 7 November is a Saturday → Monday 9th; the other category keeps its 10 days.
        pytest.param(False, date(2026, 11, 9), date(2026, 11, 12), id="calendar-days"),
        # Working days: 3, 5, 6, 9, 10 November.
        pytest.param(True, date(2026, 11, 10), date(2026, 11, 17), id="working-days"),
    ],
)
async def test_a_category_override_wins_over_the_kind(
    open_env: Opener, working_days: bool, overridden: date, other: date
) -> None:
    probe = await open_env()
    block = probe.services.directory.blocks()[0]
    first, second = probe.services.directory.categories(block.id)[:2]
    env = await open_env(deadlines={"working_days": working_days, "category_days": {first.code: 5}})
    message = await env.assigned(category_id=first.id)
    obrashchenie = await env.assigned(category_id=first.id, kind="appeal", **APPLICANT)
    assert message.deadline_at == obrashchenie.deadline_at == end_of_day(overridden)
    # A category without an override: the kind's days (routed explicitly: the matrix may not cover it).
    row = await env.file(category_id=second.id)
    await env.services.coordination.route(env["coordinator"], row.id, env.agency)
    assert (await appeal(env.services, row.id)).deadline_at == end_of_day(other)


# --- 2. reminders to the official ------------------------------------------------------------------


@pytest.mark.parametrize("taken", [True, False], ids=["taken-by-the-official", "nobody-took-it"])
async def test_reminders_reach_the_official_once_each_at_their_points(open_env: Opener, taken: bool) -> None:
    env = await open_env()
    row = await env.message() if taken else await env.assigned()  # 2 November, 12:00 Moscow
    start, deadline = row.assigned_at, end_of_day(date(2026, 11, 12))
    assert start == at(11, 2, 12) and row.deadline_at == deadline
    half = start + (deadline - start) / 2
    assert abs(half - at(11, 7, 18)) <= US  # 5 days 6 hours of the 10.5-day term
    points = {
        "half": half,
        "day_before": at(11, 11, 9),  # Wednesday, the last working day before Thursday the 12th
        "deadline": at(11, 12, 9),
        "escalation": at(11, 13, 9),
    }
    assert await pending(env, row.id) == {**points, "forward_due": at(11, 7, 12)}

    expected: list[Sent] = []
    for kind in ("half", "day_before", "deadline"):
        moment = points[kind]
        await sweep_at(env, moment - US)
        assert await sent(env) == expected, f"{kind} went out early"
        await sweep_at(env, moment, times=5)
        await sweep_at(env, moment + timedelta(hours=1))
        expected.append((env["official"].id, f"reminder_{kind}", ref(row), moment))
        assert await sent(env) == expected, kind
    assert [(k, s, d, t) for k, s, d, t in await plan(env, row.id) if k in ("half", "day_before", "deadline")] == [
        (kind, 0, points[kind], points[kind]) for kind in ("half", "day_before", "deadline")
    ]
    # Nobody else of either agency got them.
    assert {u for u, tpl, _p, _t in await sent(env) if tpl in AGENCY_TEMPLATES} == {env["official"].id}


@pytest.mark.parametrize(
    ("filed", "last_day", "day_before"),
    [
        pytest.param(at(10, 26, 12), date(2026, 11, 5), date(2026, 11, 3), id="4-november-is-skipped"),
        pytest.param(at(11, 6, 12), date(2026, 11, 16), date(2026, 11, 13), id="monday-deadline-friday-before"),
        pytest.param(at(12, 21, 12), date(2027, 1, 11), date(2026, 12, 30), id="after-new-year-holidays"),
    ],
)
async def test_the_day_before_reminder_is_on_the_last_working_day(
    open_env: Opener, clock: ManualClock, filed: datetime, last_day: date, day_before: date
) -> None:
    env = await open_env()
    clock.set(filed)
    row = await env.message()
    assert row.deadline_at == end_of_day(last_day)
    moment = datetime.combine(day_before, time(9, 0), tzinfo=MSK).astimezone(UTC)
    assert (await pending(env, row.id))["day_before"] == moment
    assert (await pending(env, row.id))["deadline"] == datetime.combine(last_day, time(9, 0), tzinfo=MSK)
    await sweep_at(env, moment - US)
    assert await sent(env, ("reminder_day_before",)) == []
    await sweep_at(env, moment)
    assert await sent(env, ("reminder_day_before",)) == [(env["official"].id, "reminder_day_before", ref(row), moment)]


# --- 3. pause for a clarification ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pause", "last_day", "day_before"),
    [
        pytest.param(timedelta(days=1), date(2026, 11, 13), date(2026, 11, 12), id="1-day"),
        # 17 November is a Tuesday: the day before is Monday the 16th.
        pytest.param(timedelta(days=5), date(2026, 11, 17), date(2026, 11, 16), id="5-days"),
    ],
)
async def test_a_clarification_pauses_the_clock_and_the_reply_replans_it(
    open_env: Opener, clock: ManualClock, pause: timedelta, last_day: date, day_before: date
) -> None:
    env = await open_env()
    row = await env.message()
    half = (await pending(env, row.id))["half"]
    await sweep_at(env, half)
    official = env["official"].id
    assert await sent(env) == [(official, "reminder_half", ref(row), half)]

    asked = at(11, 8, 12)
    clock.set(asked)
    await env.services.agency.ask_clarification(env["official"], row.id, "Уточните номер дома")
    assert await pending(env, row.id) == {}  # day_before, deadline and escalation are gone
    # While the resident thinks, the old points pass in silence.
    await sweep_every(env, asked + timedelta(hours=1), asked + pause - US, timedelta(hours=1))
    assert len(await sent(env)) == 1

    replied = asked + pause
    clock.set(replied)
    await env.services.replies.reply_clarification(env["owner"], row.id, "Дом 5, подъезд 2")
    after = await appeal(env.services, row.id)
    assert after.status == "in_progress" and after.paused_at is None
    assert after.deadline_at == end_of_day(date(2026, 11, 12)) + pause == end_of_day(last_day)
    assert after.paused_seconds == int(pause.total_seconds())
    points = {
        "day_before": datetime.combine(day_before, time(9, 0), tzinfo=MSK).astimezone(UTC),
        "deadline": datetime.combine(last_day, time(9, 0), tzinfo=MSK).astimezone(UTC),
        "escalation": datetime.combine(last_day + timedelta(days=1), time(9, 0), tzinfo=MSK).astimezone(UTC),
    }
    assert await pending(env, row.id) == points  # the half was sent before: not planned again

    for kind in ("day_before", "deadline"):
        await sweep_at(env, points[kind] - US)
        await sweep_at(env, points[kind])
    assert await sent(env, AGENCY_TEMPLATES) == [
        (official, "reminder_half", ref(row), half),
        (official, "reminder_day_before", ref(after), points["day_before"]),
        (official, "reminder_deadline", ref(after), points["deadline"]),
    ]
    assert [(k, s) for k, s, _d, t in await plan(env, row.id) if t is not None] == [
        ("forward_due", 0),
        ("half", 0),
        ("day_before", 0),
        ("deadline", 0),
    ]


@pytest.mark.parametrize(
    ("asked", "pauses", "last_day"),
    [
        pytest.param(at(11, 9, 10, 5), [timedelta(seconds=1)], date(2026, 11, 12), id="1-second"),
        pytest.param(at(11, 9, 10, 5), [timedelta(hours=3, minutes=17, seconds=11)], date(2026, 11, 12), id="3-hours"),
        pytest.param(at(11, 8, 12), [timedelta(hours=23)], date(2026, 11, 12), id="23-hours-across-midnight"),
        # Two pauses of 16 hours: the second completes the first whole day.
        pytest.param(at(11, 8, 12), [timedelta(hours=16)] * 2, date(2026, 11, 13), id="two-of-16-hours"),
        pytest.param(at(11, 3, 12), [timedelta(days=4, hours=20)], date(2026, 11, 16), id="4-days-20-hours"),
    ],
)
async def test_a_pause_moves_the_deadline_by_its_whole_days_only(
    open_env: Opener, clock: ManualClock, asked: datetime, pauses: list[timedelta], last_day: date
) -> None:
    env = await open_env()
    row = await env.message()  # the term ends on Thursday 12 November
    clock.set(asked)
    for pause in pauses:
        await env.services.agency.ask_clarification(env["official"], row.id, "Какой подъезд?")
        clock.advance(pause)
        await env.services.replies.reply_clarification(env["owner"], row.id, "Второй")
        clock.advance(hours=1)
    after = await appeal(env.services, row.id)
    assert after.deadline_at == end_of_day(last_day)
    assert after.paused_seconds == int(sum(pauses, timedelta(0)).total_seconds())
    points = await pending(env, row.id)
    assert points["deadline"] == datetime.combine(last_day, time(9, 0), tzinfo=MSK)
    assert points["escalation"] == datetime.combine(last_day + timedelta(days=1), time(9, 0), tzinfo=MSK)
    if last_day == date(2026, 11, 12):
        assert points["day_before"] == at(11, 11, 9)


async def test_after_a_pause_the_half_reminder_comes_when_half_of_the_running_time_is_used(
    open_env: Opener, clock: ManualClock
) -> None:
    env = await open_env()
    row = await env.message()  # half of the term is used on 7 November at 18:00
    clock.set(at(11, 3, 12))
    await env.services.agency.ask_clarification(env["official"], row.id, "Уточните номер дома")
    clock.set(at(11, 7, 12))  # four days paused
    await env.services.replies.reply_clarification(env["owner"], row.id, "Дом 5")
    assert (await appeal(env.services, row.id)).deadline_at == end_of_day(date(2026, 11, 16))
    # 1 day ran before the pause; the other 4 days 6 hours of the first half run from 7 November 12:00.
    await sweep_at(env, at(11, 11, 18) - US)
    assert await sent(env, ("reminder_half",)) == []
    assert (await pending(env, row.id))["half"] == at(11, 11, 18)


# --- 4. an extension -----------------------------------------------------------------------------


async def test_an_approved_extension_moves_the_deadline_and_the_pending_reminders(
    open_env: Opener, clock: ManualClock
) -> None:
    env = await open_env()
    row = await env.message()
    half = (await pending(env, row.id))["half"]
    await sweep_at(env, half)

    clock.set(at(11, 9, 10))
    await env.services.agency.request_extension(env["official"], row.id, 10, "Нужен выезд комиссии")
    (request,) = await rows(env.services, AppealRequest, AppealRequest.appeal_id == row.id)
    assert await pending(env, row.id) == {  # a request alone changes nothing
        "day_before": at(11, 11, 9),
        "deadline": at(11, 12, 9),
        "escalation": at(11, 13, 9),
    }
    clock.set(at(11, 9, 11))
    await env.services.coordination.decide(env["coordinator"], request.id, True)
    after = await appeal(env.services, row.id)
    # 12 November + 10 days = Sunday 22nd → Monday 23rd.
    assert after.deadline_at == end_of_day(date(2026, 11, 23)) and after.extension_used
    assert await pending(env, row.id) == {
        "day_before": at(11, 20, 9),  # Friday
        "deadline": at(11, 23, 9),
        "escalation": at(11, 24, 9),
    }
    for moment in (at(11, 11, 9), at(11, 12, 9), at(11, 13, 9)):  # the old points pass in silence
        await sweep_at(env, moment)
    official = env["official"].id
    assert await sent(env) == [(official, "reminder_half", ref(row), half)]
    for moment in (at(11, 20, 9), at(11, 23, 9)):
        await sweep_at(env, moment - US)
        await sweep_at(env, moment)
    assert await sent(env) == [
        (official, "reminder_half", ref(row), half),
        (official, "reminder_day_before", ref(after), at(11, 20, 9)),
        (official, "reminder_deadline", ref(after), at(11, 23, 9)),
    ]


# --- 5. escalation -------------------------------------------------------------------------------


async def test_an_overdue_appeal_escalates_daily_until_its_answer_is_approved(
    open_env: Opener, clock: ManualClock
) -> None:
    env = await open_env()
    row = await env.message()
    other = await env.assigned()  # answered in time: never escalated
    await env.services.agency.take(env["official"], other.id)
    await env.services.agency.answer(env["official"], other.id, "Водоснабжение восстановлено")
    await env.services.coordination.review(env["coordinator"], other.id, True)
    # Answered: nothing left for staff, not even the forwarding reminder; only the resident's rating (issue 12).
    assert set(await pending(env, other.id)) == {"rate_reminder", "rate_close"}

    await sweep_every(env, at(11, 2, 13), at(11, 13, 8, 59), timedelta(hours=1))
    assert escalations(await sent(env), row.id) == []
    await sweep_at(env, at(11, 12, 23))  # the last evening of the term: not yet
    assert escalations(await sent(env), row.id) == []

    supervisor, coordinator = env["supervisor"].id, env["coordinator"].id
    expected: list[tuple[int, int, datetime]] = []
    for seq, day in enumerate((13, 14, 15)):
        moment = at(11, day, 9)
        await sweep_at(env, moment - US)
        assert escalations(await sent(env), row.id) == expected
        await sweep_at(env, moment, times=4)
        await sweep_at(env, moment + timedelta(hours=6))
        expected += [(supervisor, seq + 1, moment), (coordinator, seq + 1, moment)]
        assert sorted(escalations(await sent(env), row.id)) == sorted(expected)
        assert (await pending(env, row.id))["escalation"] == at(11, day + 1, 9)
    assert [(k, s, t) for k, s, _d, t in await plan(env, row.id) if k == "escalation"] == [
        ("escalation", 0, at(11, 13, 9)),
        ("escalation", 1, at(11, 14, 9)),
        ("escalation", 2, at(11, 15, 9)),
        ("escalation", 3, None),
    ]
    # The params: the deadline and how many days it is overdue.
    assert [p for _u, tpl, p, _t in await sent(env) if tpl == "escalation"][-1] == {**ref(row), "days": 3}

    clock.set(at(11, 15, 10))
    await env.services.agency.answer(env["official"], row.id, "Водоснабжение восстановлено")
    clock.set(at(11, 15, 11))
    await env.services.coordination.review(env["coordinator"], row.id, True)
    assert set(await pending(env, row.id)) == {"rate_reminder", "rate_close"}  # the resident's (issue 12)
    await sweep_every(env, at(11, 15, 12), at(11, 20, 12), timedelta(hours=3))
    notes = await sent(env)
    assert sorted(escalations(notes, row.id)) == sorted(expected)
    assert escalations(notes, other.id) == []
    # The official, the other agency and the admin (a coordinator exists) never get escalations.
    bystanders = {env[name].id for name in ("official", "official_b", "supervisor_b", "admin")}
    assert not [n for n in notes if n[1] == "escalation" and n[0] in bystanders]


async def test_without_coordinators_the_admins_get_the_escalations(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    row = await env.message()
    await env.services.access.revoke(env["admin"], env["coordinator"].id, "coordinator")
    await sweep_at(env, at(11, 13, 9))
    assert sorted((u, d) for u, d, _t in escalations(await sent(env), row.id)) == sorted(
        [(env["supervisor"].id, 1), (env["admin"].id, 1)]
    )


@pytest.mark.parametrize("how", ["answer-returned", "clarification-replied"])
async def test_escalations_resume_when_an_overdue_appeal_is_back_at_work(
    open_env: Opener, clock: ManualClock, how: str
) -> None:
    env = await open_env()
    row = await env.message()
    await sweep_at(env, at(11, 13, 9))
    await sweep_at(env, at(11, 14, 9))
    assert len(escalations(await sent(env), row.id)) == 4  # days 1 and 2, to the supervisor and the coordinator
    clock.set(at(11, 14, 10))
    if how == "answer-returned":
        await env.services.agency.answer(env["official"], row.id, "Сделано")
        clock.set(at(11, 14, 11))
        await env.services.coordination.review(env["coordinator"], row.id, False, "Нет фотографии результата")
    else:
        await env.services.agency.ask_clarification(env["official"], row.id, "Какой подъезд?")
        clock.set(at(11, 14, 11))
        await env.services.replies.reply_clarification(env["owner"], row.id, "Второй")
    after = await appeal(env.services, row.id)
    assert after.status == "in_progress" and after.deadline_at is not None and after.deadline_at < clock.now()
    await sweep_every(env, at(11, 14, 11), at(11, 16, 20), timedelta(hours=1))
    later = [t for u, _d, t in escalations(await sent(env), row.id) if u == env["supervisor"].id and t > at(11, 14, 10)]
    assert {t.astimezone(MSK).date() for t in later} >= {date(2026, 11, 15), date(2026, 11, 16)}


# --- 6. quiet hours ------------------------------------------------------------------------------


async def test_a_reminder_that_falls_at_night_waits_until_nine(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    row = await env.file()  # 2 November, 12:00 Moscow: the term ends on the 12th
    clock.set(at(11, 3, 4))  # routed at 04:00 Moscow: half of the rest falls on 8 November at 02:00
    await env.services.coordination.route(env["coordinator"], row.id)
    routed = await appeal(env.services, row.id)
    assert routed.deadline_at is not None and routed.assigned_at is not None
    assert abs(routed.assigned_at + (routed.deadline_at - routed.assigned_at) / 2 - at(11, 8, 2)) <= US
    assert (await pending(env, row.id))["half"] == at(11, 8, 9)
    for kind, due in (await pending(env, row.id)).items():
        assert time(9, 0) <= due.astimezone(MSK).time() < time(21, 0), kind

    for moment in (at(11, 7, 21), at(11, 7, 23), at(11, 8, 0), at(11, 8, 2), at(11, 8, 9) - US):
        await sweep_at(env, moment)
    assert await sent(env) == []
    await sweep_at(env, at(11, 8, 9))
    assert await sent(env) == [(env["official"].id, "reminder_half", ref(routed), at(11, 8, 9))]
    # The last evening of the term and the night after it: the escalation waits for the morning too.
    await sweep_at(env, at(11, 12, 9))
    before = len(await sent(env))
    for moment in (at(11, 12, 21), at(11, 12, 23), at(11, 13, 0, 1), at(11, 13, 8, 59)):
        assert await sweep_at(env, moment) == 0
    assert len(await sent(env)) == before


# --- 7. forwarding under 59-ФЗ -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "filed", "due"),
    [
        pytest.param({}, at(11, 2, 12), at(11, 7, 12), id="default-5-days"),
        pytest.param({"forward_remind_days": 3}, at(11, 2, 12), at(11, 5, 12), id="3-days"),
        pytest.param({}, at(11, 2, 22, 30), at(11, 8, 9), id="falls-in-quiet-hours"),
    ],
)
async def test_an_appeal_left_in_moderation_reminds_the_coordinators_to_forward_it(
    open_env: Opener, clock: ManualClock, scheduler: dict[str, Any], filed: datetime, due: datetime
) -> None:
    env = await open_env(scheduler=scheduler)
    clock.set(filed)
    waiting = await env.file()
    routed = await env.file()
    await env.services.coordination.route(env["coordinator"], routed.id)
    rejected = await env.file()
    await env.services.coordination.reject(env["coordinator"], rejected.id, "spam")
    assert await pending(env, waiting.id) == {"forward_due": due}
    assert await pending(env, rejected.id) == {}

    await sweep_at(env, due - US)
    assert await sent(env, ("forward_due",)) == []
    await sweep_at(env, due, times=4)
    await sweep_at(env, due + timedelta(days=1))
    params = {
        "appeal_id": waiting.id,
        "number": waiting.number,
        "deadline": None,
        "due": (filed + timedelta(days=7)).isoformat(),
    }
    assert await sent(env, ("forward_due",)) == [(env["coordinator"].id, "forward_due", params, due)]
    assert [(k, t) for k, _s, _d, t in await plan(env, routed.id) if k == "forward_due"] == [("forward_due", due)]


# --- 8. digests ----------------------------------------------------------------------------------


async def digests(env: Env) -> list[tuple[int, str, dict[str, Any], datetime]]:
    return await sent(env, ("digest_official", "digest_coordinator", "weekly_summary"))


async def test_the_daily_digest_goes_once_a_day_whatever_restarts(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    agency, agency_b = env.agency, env.agency_b
    clock.set(at(10, 20, 12))
    overdue = await env.assigned()  # term ended 30 October
    paused = await env.assigned()  # overdue too, but waits for the resident: not counted
    await env.services.agency.ask_clarification(env["official"], paused.id, "Уточните адрес")
    clock.set(at(11, 2, 12))
    await env.assigned()  # due on 12 November
    other = await env.file()
    await env.services.coordination.route(env["coordinator"], other.id, agency_b)  # due on 12 November, another agency
    await env.file()  # still in moderation: not counted
    clock.set(at(11, 11, 15))
    await env.assigned()  # new: routed within the last day

    clock.set(at(11, 12, 9))
    assert await env.reminders.daily_digest() == 3
    official, official_b, coordinator = env["official"].id, env["official_b"].id, env["coordinator"].id
    first = [
        (official, "digest_official", {"overdue": 1, "due_today": 1, "new": 1}, at(11, 12, 9)),
        (official_b, "digest_official", {"overdue": 0, "due_today": 1, "new": 0}, at(11, 12, 9)),
        (coordinator, "digest_coordinator", {"overdue": [[agency, 1]]}, at(11, 12, 9)),
    ]
    assert sorted(await digests(env), key=lambda n: n[0]) == sorted(first, key=lambda n: n[0])
    assert overdue.deadline_at == end_of_day(date(2026, 10, 30))

    # Again the same day, on the same services, after a restart, and from a bare second ReminderService.
    clock.set(at(11, 12, 23, 59))
    assert await env.reminders.daily_digest() == 0
    env = await open_env.restart(env)
    assert await env.reminders.daily_digest() == 0
    bare = ReminderService(env.reminders.sessionmaker, clock, env.settings, ProductionCalendar.load())
    assert await bare.daily_digest() == 0
    assert len(await digests(env)) == 3

    # Just after midnight in Moscow (still 12 November in UTC) it is a new day: the 12th's terms are overdue.
    clock.set(at(11, 13, 0, 30))
    assert clock.now().date() == date(2026, 11, 12)
    assert await env.reminders.daily_digest() == 3
    second = [
        (official, "digest_official", {"overdue": 2, "due_today": 0, "new": 0}, at(11, 13, 0, 30)),
        (official_b, "digest_official", {"overdue": 1, "due_today": 0, "new": 0}, at(11, 13, 0, 30)),
        (coordinator, "digest_coordinator", {"overdue": [[agency, 2], [agency_b, 1]]}, at(11, 13, 0, 30)),
    ]
    assert sorted((await digests(env))[3:], key=lambda n: n[0]) == sorted(second, key=lambda n: n[0])
    clock.set(at(11, 13, 9))
    assert await bare.daily_digest() == 0
    # Supervisors, admins and residents get no daily digest.
    assert {u for u, *_ in await digests(env)} == {official, official_b, coordinator}


async def test_a_coordinator_who_is_also_an_official_gets_both_digests(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    await staff(env.services, env["admin"], TG["coordinator"], "official", env.agency_b)
    clock.set(at(10, 20, 12))
    await env.assigned()
    clock.set(at(11, 12, 9))
    await env.reminders.daily_digest()
    got = {tpl for u, tpl, _p, _t in await digests(env) if u == env["coordinator"].id}
    assert got == {"digest_official", "digest_coordinator"}


async def test_the_weekly_summary_goes_to_the_admins_once_per_iso_week(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    await env.file()
    await env.assigned()
    admin = env["admin"].id
    assert await env.reminders.weekly_summary() == 1  # Monday 2 November
    week45 = {"statuses": {"moderation": 1, "assigned": 1}, "agencies": [[env.agency, 1]], "week": "2026-W45"}
    assert await digests(env) == [(admin, "weekly_summary", week45, at(11, 2, 12))]
    assert await env.reminders.weekly_summary() == 0
    env = await open_env.restart(env)
    clock.set(at(11, 8, 23, 59))  # Sunday: the same ISO week
    assert await env.reminders.weekly_summary() == 0
    clock.set(at(11, 9, 0, 1))  # Monday in Moscow, still Sunday in UTC
    assert await env.reminders.weekly_summary() == 1
    assert await env.reminders.weekly_summary() == 0
    notes = await digests(env)
    assert [(u, p["week"]) for u, _t, p, _at in notes] == [(admin, "2026-W45"), (admin, "2026-W46")]


# --- 9. a restart in the middle --------------------------------------------------------------------


async def test_restarts_in_the_middle_neither_repeat_nor_miss_a_reminder(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    message = await env.message()  # term ends 12 November
    obr = await env.obrashchenie()  # term ends 2 December
    assert message.deadline_at == end_of_day(date(2026, 11, 12))
    assert obr.deadline_at == end_of_day(date(2026, 12, 2))

    step = timedelta(hours=3)  # sweeps at 00, 03, …, 21 UTC: every point below lies on one
    moment = at(11, 2, 15)
    end = at(12, 4, 15)
    restarts = {at(11, 11, 9), at(12, 2, 9)}  # exactly when a reminder is due, before any sweep took it
    answered = False
    while moment <= end:
        if moment in restarts:
            env = await open_env.restart(env)
        if not answered and moment > at(11, 16, 12):
            clock.set(at(11, 16, 12, 30))
            await env.services.agency.answer(env["official"], message.id, "Водоснабжение восстановлено")
            await env.services.coordination.review(env["coordinator"], message.id, True)
            answered = True
        await sweep_at(env, moment, times=2)
        moment += step

    official, supervisor, coordinator = env["official"].id, env["supervisor"].id, env["coordinator"].id
    expected: list[Sent] = [
        (official, "reminder_half", ref(message), at(11, 7, 18)),
        (official, "reminder_day_before", ref(message), at(11, 11, 9)),
        (official, "reminder_deadline", ref(message), at(11, 12, 9)),
        *[
            (who, "escalation", {**ref(message), "days": days}, at(11, 12 + days, 9))
            for days in (1, 2, 3, 4)
            for who in (supervisor, coordinator)
        ],
        (official, "reminder_half", ref(obr), at(11, 17, 18)),
        (official, "reminder_day_before", ref(obr), at(12, 1, 9)),
        (official, "reminder_deadline", ref(obr), at(12, 2, 9)),
        *[
            (who, "escalation", {**ref(obr), "days": days}, at(12, 2 + days, 9))
            for days in (1, 2)
            for who in (supervisor, coordinator)
        ],
    ]

    def key(n: Sent) -> tuple[datetime, int, str, int]:
        return (n[3], n[2]["appeal_id"], n[1], n[0])

    assert sorted(await sent(env), key=key) == sorted(expected, key=key)
    staff_kinds = [row for row in await plan(env, message.id) if not row[0].startswith("rate_")]  # issue 12's aside
    assert [(k, s, t) for k, s, _d, t in staff_kinds] == [
        ("forward_due", 0, at(11, 7, 12)),
        ("half", 0, at(11, 7, 18)),
        ("day_before", 0, at(11, 11, 9)),
        ("deadline", 0, at(11, 12, 9)),
        *[("escalation", seq, at(11, 13 + seq, 9)) for seq in range(4)],
    ]
    assert await pending(env, obr.id) == {"escalation": at(12, 5, 9)}


# --- 10. two sweeps at once ----------------------------------------------------------------------


async def test_two_instances_sweeping_at_once_send_each_reminder_once(open_env: Opener, clock: ManualClock) -> None:
    env_a = await open_env()
    ids = [(await env_a.assigned()).id for _ in range(20)]
    env_b = await open_env.attach(env_a.settings)
    clock.set(at(11, 20, 12))
    due = len(await rows(env_a.services, Reminder, Reminder.sent_at.is_(None), Reminder.due_at <= clock.now()))
    assert due == 5 * len(ids)  # forward_due, half, day_before, deadline, escalation of each

    async def drain(env: Env) -> int:
        claimed = 0
        while n := await env.reminders.sweep(limit=7):
            claimed += n
            await asyncio.sleep(0)
        return claimed

    # The scheduler's job (sweep_all: ticks until nothing is due) against a hand-driven loop and two single ticks.
    a, b, c, d = await asyncio.gather(
        env_a.reminders.sweep_all(limit=7), drain(env_b), env_a.reminders.sweep(), env_b.reminders.sweep()
    )
    assert a + b + c + d == due
    notes = await sent(env_a)
    official, supervisor, coordinator = env_a["official"].id, env_a["supervisor"].id, env_a["coordinator"].id
    # Claimed once each; the agency's three reminders, claimed after the term was over (as after downtime),
    # are stale and say nothing: the escalation speaks for them.
    assert official not in {u for u, *_ in notes}
    per_appeal = sorted([(supervisor, "escalation"), (coordinator, "escalation")])
    for appeal_id in ids:
        assert sorted((u, t) for u, t, p, _at in notes if p["appeal_id"] == appeal_id) == per_appeal
    assert len(notes) == 2 * len(ids)
    assert len(await rows(env_a.services, Reminder, Reminder.sent_at.is_(None))) == len(ids)  # tomorrow's escalations
    assert await env_b.reminders.sweep() == 0


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has one writer at a time: a second sweep waits for the first's commit")
async def test_a_sweep_while_another_holds_its_claim_takes_the_next_reminders(open_env: Opener, clock: ManualClock) -> None:
    """On PostgreSQL two instances sweep at the same moment: the second neither waits for the rows the first holds
    nor comes back empty-handed (which would end its sweep_all with reminders still due): it takes the next ones."""
    env_a = await open_env()
    for _ in range(4):
        await env_a.assigned()
    env_b = await open_env.attach(env_a.settings)
    clock.set(at(11, 20, 12))
    async with env_a.reminders.sessionmaker() as first:
        held = await ReminderRepo(first).claim_due(clock.now(), 7)  # the first instance's claim, not yet committed
        assert len(held) == 7
        taken = await asyncio.wait_for(env_b.reminders.sweep(limit=7), 10)
        assert taken == 7
        await first.commit()
    claimed = await rows(env_a.services, Reminder, Reminder.sent_at.is_not(None))
    assert len(claimed) == 14 and {r.id for r in held} <= {r.id for r in claimed}


# --- 11. the APScheduler wiring --------------------------------------------------------------------


async def test_the_scheduler_runs_the_sweep_and_the_digests(
    open_env: Opener, clock: ManualClock, db_path: Path
) -> None:
    with pytest.raises(ConfigError, match="sweep_seconds"):
        make_settings(db_path, scheduler={"sweep_seconds": 4})
    env = await open_env(scheduler={"sweep_seconds": 5, "digest_time": "08:30", "weekly_day": "fri"})
    scheduler = create_scheduler(env.settings, env.reminders)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"sweep", "daily_digest", "weekly_summary"}
    sweep, digest, weekly = (jobs[name].trigger for name in ("sweep", "daily_digest", "weekly_summary"))
    assert isinstance(sweep, IntervalTrigger) and sweep.interval == timedelta(seconds=5)
    assert isinstance(digest, CronTrigger) and isinstance(weekly, CronTrigger)
    assert str(digest.timezone) == str(weekly.timezone) == "Europe/Moscow"
    monday = datetime(2026, 11, 2, 10, 0, tzinfo=MSK)
    assert digest.get_next_fire_time(None, monday) == datetime(2026, 11, 3, 8, 30, tzinfo=MSK)
    assert weekly.get_next_fire_time(None, monday) == datetime(2026, 11, 6, 8, 30, tzinfo=MSK)

    row = await env.message()
    scheduler.start()
    try:
        assert scheduler.running
        assert all(job.next_run_time is not None for job in scheduler.get_jobs())
        clock.set(at(11, 7, 18))
        job = scheduler.get_job("sweep")
        assert job is not None
        await job.func()
        await job.func()
        assert await sent(env) == [(env["official"].id, "reminder_half", ref(row), at(11, 7, 18))]
        assert [(k, t) for k, _s, _d, t in await plan(env, row.id)][:2] == [
            ("forward_due", at(11, 7, 18)),
            ("half", at(11, 7, 18)),
        ]
        digest_job = scheduler.get_job("daily_digest")
        assert digest_job is not None
        await digest_job.func()
        await digest_job.func()
        assert sorted(t for _u, t, _p, _at in await digests(env)) == [
            "digest_coordinator",
            "digest_official",
            "digest_official",
        ]
        weekly_job = scheduler.get_job("weekly_summary")
        assert weekly_job is not None
        await weekly_job.func()
        assert [t for _u, t, _p, _at in await digests(env)].count("weekly_summary") == 1
    finally:
        scheduler.shutdown(wait=False)
    await asyncio.sleep(0)
    assert not scheduler.running


# --- 12. after downtime (issue 10: defects 8, 9, 10) -----------------------------------------------------


async def test_after_downtime_what_fell_due_waits_for_the_end_of_quiet_hours(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env()
    row = await env.message()
    await sweep_at(env, at(11, 11, 20))  # half and the day before are out; the bot then stops until 22:00 on the 13th
    before = await sent(env)
    for moment in (at(11, 13, 21), at(11, 13, 23, 30), at(11, 14, 8, 59)):
        assert await sweep_at(env, moment) == 0
    assert await sent(env) == before
    assert set(await pending(env, row.id)) == {"deadline", "escalation"}
    await sweep_at(env, at(11, 14, 9))
    supervisor, coordinator = env["supervisor"].id, env["coordinator"].id
    # The last-day reminder is stale by now and says nothing; the escalation goes out at 09:00.
    assert (await sent(env))[len(before) :] == [
        (supervisor, "escalation", {**ref(row), "days": 2}, at(11, 14, 9)),
        (coordinator, "escalation", {**ref(row), "days": 2}, at(11, 14, 9)),
    ]


async def test_escalations_go_out_every_morning_at_the_same_time_after_a_late_one(
    open_env: Opener, clock: ManualClock
) -> None:
    env = await open_env()
    row = await env.message()
    await sweep_at(env, at(11, 12, 9))
    await sweep_at(env, at(11, 13, 16, 45))  # down all morning: the first escalation is late
    assert (await pending(env, row.id))["escalation"] == at(11, 14, 9)
    await sweep_at(env, at(11, 14, 9))
    await sweep_at(env, at(11, 15, 11, 20))  # late again
    await sweep_every(env, at(11, 15, 12), at(11, 17, 12), timedelta(minutes=30))
    supervisor = env["supervisor"].id
    assert [(d, t) for u, d, t in escalations(await sent(env), row.id) if u == supervisor] == [
        (1, at(11, 13, 16, 45)),
        (2, at(11, 14, 9)),
        (3, at(11, 15, 11, 20)),
        (4, at(11, 16, 9)),
        (5, at(11, 17, 9)),
    ]


async def test_a_digest_missed_by_a_restart_is_caught_up_the_same_day_once(open_env: Opener, clock: ManualClock) -> None:
    env = await open_env(scheduler={"weekly_day": "thu"})
    clock.set(at(10, 20, 12))
    await env.assigned()
    clock.set(at(11, 12, 8, 59) + timedelta(seconds=40))  # a Thursday
    assert await env.reminders.tick() == 0
    env = await open_env.restart(env)
    clock.set(at(11, 12, 9) + timedelta(seconds=30))
    # The sweep's tick after the start: the appeal's overdue reminders, then the day's digests to official,
    # official_b and coordinator, and (Thursday) the admin's weekly summary.
    await env.reminders.tick()
    assert sorted(t for _u, t, _p, _at in await digests(env)) == [
        "digest_coordinator",
        "digest_official",
        "digest_official",
        "weekly_summary",
    ]
    for moment in (at(11, 12, 9, 1), at(11, 12, 20)):
        clock.set(moment)
        assert await env.reminders.tick() == 0
        env = await open_env.restart(env)
        assert await env.reminders.tick() == 0
        assert await env.reminders.daily_digest() == 0  # the cron job finds the day claimed
        assert await env.reminders.weekly_summary() == 0
    clock.set(at(11, 12, 22))  # quiet hours: nothing even if unsent
    assert await env.reminders.tick() == 0
    clock.set(at(11, 13, 8, 59))
    assert await env.reminders.tick() == 0
    clock.set(at(11, 13, 9))
    await env.reminders.tick()
    assert len(await digests(env)) == 7  # Friday: the daily digests only


async def test_two_instances_claiming_one_digest_send_it_once(open_env: Opener, clock: ManualClock) -> None:
    env_a = await open_env()
    env_b = await open_env.attach(env_a.settings)
    clock.set(at(11, 12, 9))
    counts = await asyncio.gather(
        env_a.reminders.daily_digest(), env_b.reminders.daily_digest(), env_a.reminders.tick(), env_b.reminders.tick()
    )
    assert sum(counts) == 3
    assert len(await digests(env_a)) == 3
