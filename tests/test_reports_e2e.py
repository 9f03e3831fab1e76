"""The scheduled statistics reports as their readers get them in Telegram (issue 14): every Monday morning the
leadership's "state of the region" (text, chart, spreadsheet), each block head's report of their block, the weekly
presets to their recipients under each recipient's own scope; on the 1st the monthly presets and the agency rating;
claims that keep a restart (or a second instance) from sending anything twice; "<3" for small category × district
cells; the problem spots.

The bot runs against the emulator; appeals are filed through the services at moments the ManualClock travels to,
and the scheduler's jobs are run by hand at the moment the scheduler would run them (tests/conftest.py pauses its
triggers). Leadership and block-head roles and the presets are rows written as the roles' and the builder's services
write them (those are other engineers' parts). Moscow is UTC+03:00 all year; the moments are Moscow wall-clock times.
Week 47 of 2026 is Monday 16 – Sunday 22 November; its reports go out on Monday 23 November at 09:00."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.domain import Dimension, Metric, PeriodKind, ReportSchedule, Role, SliceSpec
from bot.services.users import Actor
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import Digest, Outbox, StatPreset, StatReport, UserRole
from tests import factories
from tests.conftest import Harness
from tests.factories import TG, World, make_world

MSK = ZoneInfo("Europe/Moscow")
LEADER, LEADER_RU, HEAD, HEAD_B = 20, 21, 22, 23
REPORT_TEMPLATES = ("stats_report_text", "stats_report_chart", "stats_report_sheet")


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK).astimezone(UTC)


MONDAY = at(11, 23, 9)


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [TG["admin"]]}}


async def world(harness: Harness) -> World:
    """Everyone of factories.TG (the staff speaking English), each with the chat open."""
    assert harness.app is not None
    services = harness.app.services
    harness.clock.set(at(10, 20, 12))
    built = await make_world(services, harness.clock)
    for name in ("coordinator", "official", "supervisor", "official_b", "supervisor_b", "analyst", "admin"):
        built.people[name] = await services.users.set_locale(built[name], "en")
    for name in TG:
        await harness.emu.user(TG[name], language_code="en").send_text("/start")
    await harness.settle()
    return built


async def grant(harness: Harness, tg_id: int, role: Role, block_id: int | None = None, locale: str = "en") -> Actor:
    """A person given `role` (leadership, block head) as the roles' service grants it: a user_roles row."""
    assert harness.app is not None
    services = harness.app.services
    person = await services.users.identify(tg_id)
    person = await services.users.set_locale(person, locale)
    async with harness.app.sessionmaker() as session:
        session.add(UserRole(user_id=person.id, role=role, block_id=block_id, granted_at=harness.clock.now()))
        await session.commit()
    await harness.emu.user(tg_id, language_code=locale).send_text("/start")
    await harness.settle()
    return await services.users.identify(tg_id)


async def preset(harness: Harness, owner: Actor, name: str, spec: SliceSpec, schedule: ReportSchedule, recipients: list[int]) -> int:
    """A saved, scheduled slice as the builder stores it."""
    assert harness.app is not None
    now = harness.clock.now()
    async with harness.app.sessionmaker() as session:
        row = StatPreset(
            owner_id=owner.id,
            name=name,
            spec=spec.to_json(),
            schedule=schedule,
            recipients=recipients,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.commit()
        return row.id


async def filed(people: World, moment: datetime, count: int, category_id: int, district_id: int, agency: int | None = None) -> None:
    """`count` appeals filed at `moment` (routed to `agency` when given)."""
    people.clock.set(moment)
    for _ in range(count):
        row = await people.file(category_id=category_id, district_id=district_id)
        if agency is not None:
            await people.services.coordination.route(people["coordinator"], row.id, agency)


async def run_job(harness: Harness, job_id: str, moment: datetime) -> None:
    """Travel to `moment` and run one of the scheduler's jobs there, then let the notifications arrive."""
    assert harness.app is not None and harness.app.scheduler is not None
    harness.clock.set(moment)
    job = harness.app.scheduler.get_job(job_id)
    assert job is not None
    await job.func()
    await harness.settle()


def person(harness: Harness, tg_id: int) -> EmulatedUser:
    return harness.emu.user(tg_id)


def texts(user: EmulatedUser, needle: str) -> list[str]:
    return [m.text or "" for m in user.messages if needle in (m.text or "")]


def files(user: EmulatedUser, kind: str) -> list[BotMessage]:
    return [m for m in user.messages if m.kind == kind]


def file_name(harness: Harness, message: BotMessage) -> str:
    return str(harness.emu.state.files[message.file_id or ""].meta.get("file_name"))


def workbook(harness: Harness, message: BotMessage) -> openpyxl.Workbook:
    """The spreadsheet a person received, read back."""
    return openpyxl.load_workbook(io.BytesIO(harness.emu.state.files[message.file_id or ""].content))


def sheet_rows(book: openpyxl.Workbook, title: str) -> list[list[Any]]:
    """The header and the rows of a sheet (under its title and note: bot/stats_files.py xlsx_bytes)."""
    return [list(row) for row in book[title].iter_rows(min_row=3, values_only=True)]


class Names:
    """The directory's names (English) of the categories and districts the tests file in."""

    def __init__(self, people: World) -> None:
        d = people.services.directory
        self.blocks = d.blocks()
        first, second = self.blocks[0], self.blocks[1]
        self.cat_a, self.cat_b = d.categories(first.id)[0], d.categories(first.id)[1]
        self.cat_c = d.categories(second.id)[0]  # another block's
        self.d1, self.d2 = d.districts()[0], d.districts()[1]

    def cell(self, category: Any, district: Any) -> str:
        return f"{category.name('en')} · {district.name('en')}"


async def region_data(people: World) -> Names:
    """Oct 26: 2 appeals (A × D1) routed, overdue by the 23rd; Nov 10 (week 46): 2 more A × D1; week 47: 6 A × D1, 3
    B × D1, 1 B × D2 (block one) and 2 C × D1 (block two). A × D1 is a problem spot: 6 against 4 in the 4 weeks before."""
    n = Names(people)
    await filed(people, at(10, 26, 12), 2, n.cat_a.id, n.d1.id, people.agency)
    await filed(people, at(11, 10, 12), 2, n.cat_a.id, n.d1.id)
    await filed(people, at(11, 17, 12), 6, n.cat_a.id, n.d1.id)
    await filed(people, at(11, 18, 12), 3, n.cat_b.id, n.d1.id)
    await filed(people, at(11, 19, 12), 1, n.cat_b.id, n.d2.id)
    await filed(people, at(11, 22, 23, 30), 2, n.cat_c.id, n.d1.id)  # Sunday night: still week 47 in Moscow
    await filed(people, at(11, 23, 0, 30), 1, n.cat_c.id, n.d2.id)  # Monday: week 48, not in the report
    return n


# --- the leadership's "state of the region" ---------------------------------------------------------------------


async def test_the_leadership_gets_the_state_of_the_region_on_monday_morning(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    n = await region_data(people)
    coordinator = person(harness, TG["coordinator"])
    before = len(coordinator.messages)

    await run_job(harness, "reports", MONDAY)

    leader = person(harness, LEADER)
    [text] = texts(leader, "State of the region")
    assert "State of the region, week 16.11.2026–22.11.2026" in text
    assert "Received: 12 (the week before: 2, +10)" in text
    assert "Overdue now by agency: 2" in text
    assert f"• {people.services.directory.agency(people.agency).name('en')}: 2" in text  # type: ignore[union-attr]
    assert "Top 4 problems: category × district" in text
    assert f"1. {n.cell(n.cat_a, n.d1)}: 6 (the week before: <3, ↑)" in text
    assert "«Is it fixed?»" in text and "Average rating" in text
    # Text, chart, spreadsheet: in that order, one message each.
    kinds = [m.kind for m in leader.messages[-3:]]
    assert kinds == ["text", "photo", "document"]
    [sheet] = files(leader, "document")
    assert file_name(harness, sheet) == "state-of-region-2026-W47.xlsx"
    book = workbook(harness, sheet)
    assert book.sheetnames == ["Summary", "Overdue by agency", "Top problems", "Problem spots"]
    summary = sheet_rows(book, "Summary")
    assert summary[0] == ["Figure", "This week", "The week before"]
    assert ["Received", 12, 2] in summary  # numbers as numbers
    problems = sheet_rows(book, "Top problems")
    assert problems[1] == [n.cat_a.name("en"), n.d1.name("en"), 6, "<3", "↑"]
    [photo] = files(leader, "photo")
    assert harness.emu.state.files[photo.file_id or ""].content.startswith(b"\x89PNG")
    # Nobody else gets it.
    assert len(coordinator.messages) == before
    async with harness.app.sessionmaker() as session:  # type: ignore[union-attr]
        stored = (await session.execute(select(StatReport.kind, StatReport.period, StatReport.locale))).all()
    assert stored == [("region", "2026-W47", "en")]


async def test_small_category_by_district_cells_show_as_under_three(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    n = await region_data(people)

    await run_job(harness, "reports", MONDAY)

    leader = person(harness, LEADER)
    [text] = texts(leader, "State of the region")
    # 3 is not small, 1 and 2 are (none is no one: 0); the change that would give a small cell away is not shown.
    assert f"{n.cell(n.cat_a, n.d1)}: 6 (the week before: <3, ↑)" in text
    assert f"{n.cell(n.cat_b, n.d1)}: 3 (the week before: 0, +3)" in text
    assert f"{n.cell(n.cat_b, n.d2)}: <3 (the week before: 0, ↑)" in text
    assert f"{n.cell(n.cat_c, n.d1)}: <3 (the week before: 0, ↑)" in text
    assert f"{n.cell(n.cat_b, n.d2)}: 1 " not in text
    book = workbook(harness, files(leader, "document")[0])
    rows = sheet_rows(book, "Top problems")
    assert [n.cat_a.name("en"), n.d1.name("en"), 6, "<3", "↑"] in rows
    assert [n.cat_b.name("en"), n.d2.name("en"), "<3", 0, "↑"] in rows
    assert [n.cat_b.name("en"), n.d1.name("en"), 3, 0, 3] in rows
    assert all(v in (0, "<3") or v >= 3 for row in rows[1:] for v in row[2:4])


async def test_a_problem_spot_is_flagged_when_a_cell_grew_past_the_factor(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    n = await region_data(people)

    await run_job(harness, "reports", MONDAY)

    [text] = texts(person(harness, LEADER), "State of the region")
    spots = text.split("Problem spots (conflict situations)")[1]
    # 6 this week against 4 in the 4 weeks before (1 a week): more than twice its usual week.
    assert f"• {n.cell(n.cat_a, n.d1)}: 6 this week, 4 in the 4 weeks before (×6.0)" in spots
    assert n.cat_b.name("en") not in spots  # 3 appeals: fewer than stats.problem_min
    rows = sheet_rows(workbook(harness, files(person(harness, LEADER), "document")[0]), "Problem spots")
    assert rows[1:] == [[n.cat_a.name("en"), n.d1.name("en"), 6, 4, 6.0]]


async def test_a_week_without_problem_spots_says_so(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    n = Names(people)
    await filed(people, at(11, 3, 12), 4, n.cat_a.id, n.d1.id)  # 1 a week in the 4 weeks before
    await filed(people, at(11, 17, 12), 2, n.cat_a.id, n.d1.id)  # twice its usual week: not more

    await run_job(harness, "reports", MONDAY)

    [text] = texts(person(harness, LEADER), "State of the region")
    assert "None: no category × district grew past 2.0 times its usual week." in text


# --- block heads --------------------------------------------------------------------------------------------------


async def test_a_block_head_gets_only_their_blocks_figures(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    n = Names(people)
    await grant(harness, HEAD, Role.block_head, n.blocks[0].id)
    await grant(harness, HEAD_B, Role.block_head, n.blocks[1].id)
    await region_data(people)

    await run_job(harness, "reports", MONDAY)

    head, head_b = person(harness, HEAD), person(harness, HEAD_B)
    [text] = texts(head, "in the block")
    assert f"Week 16.11.2026–22.11.2026 in the block «{n.blocks[0].name('en')}»" in text
    assert "Received: 10 (the week before: 2, +8)" in text  # 6 + 3 + 1 of block one; not the 2 of block two
    assert n.cat_c.name("en") not in text
    assert "State of the region" not in "\n".join(m.text or "" for m in head.messages)
    [text_b] = texts(head_b, "in the block")
    assert "Received: 2 (the week before: 0, +2)" in text_b
    assert n.cat_a.name("en") not in text_b and n.cat_b.name("en") not in text_b
    [sheet] = files(head, "document")
    assert file_name(harness, sheet) == "block-report-2026-W47.xlsx"
    cells = {str(v) for row in sheet_rows(workbook(harness, sheet), "Top problems") for v in row}
    assert n.cat_c.name("en") not in cells


# --- scheduled presets ----------------------------------------------------------------------------------------------


async def test_a_weekly_preset_reaches_its_recipients_under_their_scope(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    n = Names(people)
    directory = people.services.directory
    agency, agency_b = (directory.agency(a).name("en") for a in (people.agency, people.agency_b))  # type: ignore[union-attr]
    await filed(people, at(11, 17, 12), 3, n.cat_a.id, n.d1.id, people.agency)  # week 47: not in the report
    await filed(people, at(11, 24, 12), 5, n.cat_a.id, n.d1.id, people.agency)
    await filed(people, at(11, 25, 12), 2, n.cat_b.id, n.d2.id, people.agency_b)
    clock.set(at(11, 26, 15))
    # Saved with "today" as its period: the scheduled report covers the last whole week all the same.
    by_agency = SliceSpec(Metric.received, (Dimension.agency,), period=PeriodKind.today)
    recipients = [people[name].id for name in ("analyst", "supervisor", "other")]
    preset_id = await preset(harness, people["analyst"], "Agencies <weekly>", by_agency, ReportSchedule.weekly, recipients)
    only_b = by_agency.with_filter(Dimension.agency, (people.agency_b,))
    await preset(harness, people["analyst"], "Agency B", only_b, ReportSchedule.weekly, recipients)
    await preset(harness, people["analyst"], "Monthly", by_agency, ReportSchedule.monthly, recipients)
    forged = by_agency.with_filter(Dimension.agency, (999_999,))  # an agency no directory knows
    await preset(harness, people["analyst"], "Forged", forged, ReportSchedule.weekly, recipients)

    await run_job(harness, "reports", at(11, 30, 9))  # Monday: the week of 23–29 November

    analyst, supervisor, resident = (person(harness, TG[name]) for name in ("analyst", "supervisor", "other"))
    [text] = texts(analyst, "«Agencies <weekly>»")
    assert "Period: 23.11.2026–29.11.2026" in text
    assert f"{agency}: 5" in text and f"{agency_b}: 2" in text and "Total: 7" in text
    assert len(texts(analyst, "Scheduled report")) == 2  # «Agencies» and «Agency B»; the monthly one waits
    [b_text] = texts(analyst, "«Agency B»")
    assert f"{agency_b}: 2" in b_text and f"{agency}: 5" not in b_text
    # The supervisor reads his own agency's figures only, and not «Agency B» at all (another agency's).
    [sup_text] = texts(supervisor, "«Agencies <weekly>»")
    assert f"{agency}: 5" in sup_text and agency_b not in sup_text
    assert texts(supervisor, "«Agency B»") == []
    assert texts(analyst, "«Forged»") == []  # refused for everyone (Gone), and the others went out all the same
    # A resident among the recipients gets nothing: no statistics are theirs to read.
    assert texts(resident, "Scheduled report") == []
    [sheet] = [m for m in files(analyst, "document") if file_name(harness, m) == f"report-{preset_id}-2026-W48.xlsx"]
    book = workbook(harness, sheet)
    rows = [row for title in book.sheetnames for row in sheet_rows(book, title)]
    assert [agency, 5] in [row[:2] for row in rows] and [agency_b, 2] in [row[:2] for row in rows]
    # The name is escaped in the HTML the bot sent.
    html = next(m.html for m in analyst.messages if "Agencies" in (m.text or ""))
    assert "«Agencies &lt;weekly&gt;»" in (html or "")


async def test_a_monthly_preset_and_the_agency_rating_go_out_on_the_first(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    n = Names(people)
    await filed(people, at(11, 5, 12), 3, n.cat_a.id, n.d1.id, people.agency)
    clock.set(at(11, 20, 15))
    spec = SliceSpec(Metric.received, (Dimension.district,), period=PeriodKind.days7)
    await preset(harness, people["analyst"], "Districts", spec, ReportSchedule.monthly, [people["analyst"].id])

    await run_job(harness, "reports", at(12, 1, 8, 59))  # quiet hours: nothing yet
    assert texts(person(harness, LEADER), "Monthly report to the leadership") == []
    await run_job(harness, "reports", at(12, 1, 9))

    leader, analyst = person(harness, LEADER), person(harness, TG["analyst"])
    [rating] = texts(leader, "Monthly report to the leadership")
    assert "01.11.2026–30.11.2026" in rating
    sheets = [file_name(harness, m) for m in files(leader, "document")]
    assert "agency-rating-2026-11.xlsx" in sheets
    [monthly] = texts(analyst, "«Districts»")
    assert "Period: 01.11.2026–30.11.2026" in monthly and f"{n.d1.name('en')}: 3" in monthly


# --- once, whatever happens ------------------------------------------------------------------------------------------


async def report_rows(harness: Harness) -> int:
    assert harness.app is not None
    async with harness.app.sessionmaker() as session:
        return int(
            (await session.execute(select(func.count()).where(Outbox.template.in_(REPORT_TEMPLATES)))).scalar_one()
        )


async def test_a_restart_in_between_sends_nothing_twice(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    await grant(harness, LEADER_RU, Role.leadership, locale="ru")
    await grant(harness, HEAD, Role.block_head, Names(people).blocks[0].id)
    await region_data(people)

    await run_job(harness, "reports_catch_up", at(11, 23, 8, 30))  # the quiet hours: it waits
    assert await report_rows(harness) == 0
    await run_job(harness, "reports", MONDAY)
    sent = await report_rows(harness)
    assert sent == 9  # 3 parts to each leader and to the head
    leader = person(harness, LEADER)
    assert len(texts(leader, "State of the region")) == 1
    [ru] = texts(person(harness, LEADER_RU), "Положение дел в регионе")  # the Russian leader's report is in Russian
    assert "16.11.2026–22.11.2026" in ru

    await harness.restart()
    await run_job(harness, "reports_catch_up", at(11, 23, 9, 5))
    await run_job(harness, "reports", at(11, 23, 9, 6))
    await run_job(harness, "reports_catch_up", at(11, 25, 12))
    assert await report_rows(harness) == sent
    assert len(texts(leader, "State of the region")) == 1
    async with harness.app.sessionmaker() as session:  # type: ignore[union-attr]
        claims = sorted((await session.execute(select(Digest.kind, Digest.period))).all())
    assert ("region_week", "2026-W47") in claims and ("reports_week", "2026-W47") in claims
    assert sum(1 for kind, _period in claims if kind == "region_week") == 1


async def test_a_bot_down_on_monday_morning_sends_the_reports_when_it_is_back(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    await region_data(people)
    await harness.stop()
    clock.set(at(11, 24, 11))  # back on Tuesday
    await harness.start()

    await run_job(harness, "reports_catch_up", at(11, 24, 11))

    [text] = texts(person(harness, LEADER), "State of the region")
    assert "week 16.11.2026–22.11.2026" in text
    assert await report_rows(harness) == 3


async def test_two_instances_at_the_same_moment_send_once(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    await region_data(people)
    assert harness.app is not None
    clock.set(MONDAY)
    # Two sweeps at once: the claims in the database arbitrate, whichever instance runs them.
    await asyncio.gather(harness.app.reports.tick(), harness.app.reports.tick())
    await harness.settle()
    assert await report_rows(harness) == 3
    assert len(texts(person(harness, LEADER), "State of the region")) == 1


@pytest.mark.parametrize("sections", [{"bot": {"admins": [TG["admin"]]}, "stats": {"min_appeals": 1}}])
async def test_the_monthly_rating_ranks_the_agencies_for_the_leadership(harness: Harness, clock: ManualClock) -> None:
    people = await world(harness)
    await grant(harness, LEADER, Role.leadership)
    clock.set(at(11, 10, 12))
    await factories.answered(people)  # the agency answers one appeal in November: ranked (stats.min_appeals = 1)

    await run_job(harness, "reports", at(12, 1, 9))

    leader = person(harness, LEADER)
    agency = people.services.directory.agency(people.agency).name("en")  # type: ignore[union-attr]
    [text] = texts(leader, "Monthly report to the leadership")
    assert "Agency rating" in text and "Period: 01.11.2026–30.11.2026 (compared with 01.10.2026–31.10.2026)" in text
    assert f"1. {agency} — " in text
    [sheet] = [m for m in files(leader, "document") if file_name(harness, m) == "agency-rating-2026-11.xlsx"]
    rows = sheet_rows(workbook(harness, sheet), "Agency rating")
    assert rows[1][:2] == [1, agency] and rows[1][4] == 1  # place, agency, …, answered
    assert any(m.kind == "photo" for m in leader.messages)  # the index chart
