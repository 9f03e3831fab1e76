"""Residents' ratings as the staff see them in Telegram (issue 12, the staff side): the card of a rated answer, the
re-opened appeal at the top of the queue, the agencies' ratings in the daily digests and the coordinators' list of
yesterday's low ratings; and residents, who never see any of it.

The bot runs against the emulator; the world (staff with roles, appeals answered) is set up through the services,
ratings are rows written as the resident side writes them (tests.factories.rate), time travels with the
ManualClock and the scheduler's jobs are run by hand at the moment the scheduler would run them.
Moscow is UTC+03:00 all year; the moments below are Moscow wall-clock times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.callbacks import StaffAction, StaffCb
from bot.clock import ManualClock
from emulator import EmulatedUser
from storage.models import Appeal, Outbox, Rating
from tests import factories
from tests.conftest import Harness
from tests.factories import TG, World, make_world

MSK = ZoneInfo("Europe/Moscow")
STAFF = ("coordinator", "official", "supervisor", "official_b", "supervisor_b", "admin")


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK).astimezone(UTC)


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [TG["admin"]]}}


async def world(harness: Harness) -> World:
    """Everyone of factories.TG, the staff speaking English, each with the chat open."""
    assert harness.app is not None
    services = harness.app.services
    built = await make_world(services, harness.clock)
    for name in STAFF:
        built.people[name] = await services.users.set_locale(built[name], "en")
    for name in (*STAFF, "owner"):
        await harness.emu.user(TG[name], language_code="en").send_text("/start")
    await harness.settle()
    return built


def person(harness: Harness, name: str) -> EmulatedUser:
    return harness.emu.user(TG[name])


async def answered_by(people: World, official: str = "official") -> Appeal:
    """An answered appeal of the official's agency (the suggested one; agency_b for official_b)."""
    if official == "official":
        return await factories.answered(people)
    s = people.services
    row = await people.file()
    await s.coordination.route(people["coordinator"], row.id, people.agency_b)
    await s.agency.take(people[official], row.id)
    await s.agency.answer(people[official], row.id, "Done")
    await s.coordination.review(people["coordinator"], row.id, approve=True)
    return await factories.appeal(s, row.id)


async def run_job(harness: Harness, job_id: str, moment: datetime) -> None:
    """Travel to `moment` and run one of the scheduler's jobs there, then let the notifications arrive."""
    assert harness.app is not None and harness.app.scheduler is not None
    harness.clock.set(moment)
    job = harness.app.scheduler.get_job(job_id)
    assert job is not None
    await job.func()
    await harness.settle()


def with_text(user: EmulatedUser, *needles: str) -> list[str]:
    return [m.text for m in user.messages if all(n in m.text for n in needles)]


def notification(user: EmulatedUser, *needles: str) -> int:
    """The id of the newest bot message holding every needle."""
    return next(m.message_id for m in reversed(user.messages) if all(n in m.text for n in needles))


# --- the card --------------------------------------------------------------------------------------------------


async def test_the_rating_of_an_answer_shows_in_its_card_to_the_staff(harness: Harness, clock: ManualClock) -> None:
    clock.set(at(11, 2, 12))
    people = await world(harness)
    s = people.services
    row = await answered_by(people)
    comment = "<b>Thanks</b> & the water is back"
    clock.set(at(11, 3, 10, 30))
    await factories.rate(s, row.id, 4, comment=comment)
    await factories.followup(s, row.id, "yes")
    await harness.settle()

    official, coordinator, supervisor = (person(harness, n) for n in ("official", "coordinator", "supervisor"))
    # The official opens it from the assignment, the coordinator from the answer to check: «Open» on each.
    await official.click("Open", message_id=notification(official, row.number))
    await coordinator.click("Open", message_id=notification(coordinator, row.number, "waits for your check"))
    # The supervisor presses «Open» of a card on the message he has (an escalation's button, say).
    await supervisor.press_callback(supervisor.last_message.message_id, StaffCb(action=StaffAction.open, id=row.id).pack())
    await harness.settle()
    for user in (official, coordinator, supervisor):
        card = user.last_message.text
        assert f"Appeal № {row.number}" in card
        assert "The resident's rating of the answer:" in card
        assert "⭐ 4 — helped · 03.11.2026 10:30" in card
        # The resident's words are shown as written, never as markup.
        assert f"Comment: {comment}" in card
        assert "Is it fixed? yes, fixed · 03.11.2026 10:30" in card
        assert "Reopened" not in card.split("\n")[1]


async def test_a_reopened_appeal_is_first_in_the_queue_with_its_marker(harness: Harness, clock: ManualClock) -> None:
    clock.set(at(11, 2, 12))
    people = await world(harness)
    s = people.services
    older = await people.file()
    row = await answered_by(people)
    clock.set(at(11, 3, 12))
    newer = await people.file()
    clock.set(at(11, 4, 12))
    await factories.rate(s, row.id, 1, comment="Nothing was done" + "!" * 4984, reopen=True)  # 5,000 characters
    await harness.settle()

    coordinator = person(harness, "coordinator")
    await coordinator.send_text("/staff")
    await harness.settle()
    await coordinator.click("📥 Queue")
    await harness.settle()
    screen = coordinator.last_message
    assert "reopened 1" in screen.text and "🔁 sent back by the resident: at the top of the list" in screen.text
    numbered = [b for b in screen.buttons if "№" in b]
    assert [next(n for n in (row.number, older.number, newer.number) if n in b) for b in numbered] == [
        row.number,
        older.number,
        newer.number,
    ]
    assert numbered[0].startswith("🔁") and not numbered[1].startswith("🔁")
    await coordinator.click(numbered[0])
    await harness.settle()
    card = coordinator.last_message.text
    assert "🔁 Reopened 1 of 2 times" in card.split("\n")[1]
    assert "⭐ 1 — did not help at all · 04.11.2026 12:00" in card
    assert f"Comment: Nothing was done{'!' * 184}… (5000 characters in all)" in card


# --- the digests -----------------------------------------------------------------------------------------------


async def test_the_daily_digest_carries_each_agencys_rating_of_30_days(harness: Harness, clock: ManualClock) -> None:
    clock.set(at(9, 20, 12))
    people = await world(harness)
    s = people.services
    digest_at = at(11, 2, 9)
    given = [
        ("official", 5, digest_at - timedelta(days=1)),
        ("official", 4, digest_at - timedelta(days=12)),
        ("official", 1, digest_at - timedelta(days=29, hours=23)),
        ("official", 1, digest_at - timedelta(days=30, hours=1)),  # out of the 30 days
        ("official_b", 2, digest_at - timedelta(days=2)),
        ("official_b", 3, digest_at - timedelta(days=5)),
    ]
    for who, score, moment in given:
        await factories.rate(s, (await answered_by(people, who)).id, score, at=moment)
    # The figures, computed here from the rows the database holds.
    figures: dict[int, list[int]] = {}
    for r in await harness.rows(Rating):
        if r.created_at >= digest_at - timedelta(days=30):
            figures.setdefault(r.agency_id, []).append(r.score)
    tenth = Decimal("0.1")
    average = {a: str((Decimal(sum(v)) / len(v)).quantize(tenth, ROUND_HALF_UP)) for a, v in figures.items()}
    count = {a: len(v) for a, v in figures.items()}
    assert count == {people.agency: 3, people.agency_b: 2}
    names = {a.id: a.name("en") for a in s.directory.agencies()}

    await run_job(harness, "daily_digest", digest_at)
    a, b = people.agency, people.agency_b
    for who, agency in (("official", a), ("supervisor", a), ("official_b", b), ("supervisor_b", b)):
        [digest] = with_text(person(harness, who), "Residents' rating")
        assert f"over 30 days: {average[agency]} of 5 ({count[agency]} ratings)." in digest, who
    [official_digest] = with_text(person(harness, "official"), "Your agency today")
    assert "⭐ Residents' rating" in official_digest  # in the same message as the queue's figures
    [coordinators] = with_text(person(harness, "coordinator"), "Residents' ratings over 30 days, the worst first")
    lines = coordinators.split("\n")
    start = lines.index("⭐ Residents' ratings over 30 days, the worst first:")
    worst_first = sorted(figures, key=lambda agency: sum(figures[agency]) / len(figures[agency]))
    assert lines[start + 1 :] == [f"• {names[x]}: {average[x]} ({count[x]})" for x in worst_first]
    # Residents and the admin get none of it; a second run of the job sends nothing more.
    assert not with_text(person(harness, "owner"), "rating")
    sent = len(await harness.rows(Outbox))
    await run_job(harness, "daily_digest", digest_at + timedelta(minutes=1))
    assert len(await harness.rows(Outbox)) == sent


async def test_coordinators_get_yesterdays_low_ratings_once_a_day(harness: Harness, clock: ManualClock) -> None:
    clock.set(at(10, 25, 12))
    people = await world(harness)
    s = people.services
    rows = [await answered_by(people) for _ in range(3)] + [await answered_by(people, "official_b")]
    long_comment = "<i>x</i>" + "y" * 4992  # 5,000 characters
    await factories.rate(s, rows[0].id, 1, comment=long_comment, at=at(11, 1, 0, 5))
    await factories.rate(s, rows[1].id, 4, comment="Fine", at=at(11, 1, 10))  # not low
    await factories.rate(s, rows[2].id, 2, at=at(10, 31, 23, 59))  # the day before yesterday
    await factories.rate(s, rows[3].id, 2, comment="Slow", at=at(11, 1, 23, 59))
    coordinator, admin = person(harness, "coordinator"), person(harness, "admin")

    await run_job(harness, "daily_digest", at(11, 2, 9))
    [listed] = with_text(coordinator, "Ratings of 1–2 given on 01.11.2026")
    names = {a.id: a.name("en") for a in s.directory.agencies()}
    lines = listed.split("\n")
    assert lines[1] == f"• № {rows[0].number} · {names[people.agency]} · 1: «<i>x</i>{'y' * 192}…»"
    assert lines[2] == f"• № {rows[3].number} · {names[people.agency_b]} · 2: «Slow»"
    assert len(lines) == 3 and rows[1].number not in listed and rows[2].number not in listed
    message = next(m for m in coordinator.messages if "Ratings of 1–2" in m.text)
    assert message.buttons == [f"№ {rows[0].number}", f"№ {rows[3].number}"]
    assert not with_text(admin, "Ratings of 1–2") and not with_text(person(harness, "owner"), "Ratings of 1–2")

    # Its button opens the card; a restart and the sweep after it (the catch-up) send no second list.
    await coordinator.click(f"№ {rows[3].number}", message_id=message.message_id)
    await harness.settle()
    assert f"Appeal № {rows[3].number}" in coordinator.last_message.text
    assert "⭐ 2 — rather did not help" in coordinator.last_message.text
    # The list stays as it was, its buttons there to open the next card.
    assert coordinator.message(message.message_id).text == listed and coordinator.message(message.message_id).buttons
    await harness.restart()
    await run_job(harness, "sweep", at(11, 2, 9, 30))
    await run_job(harness, "daily_digest", at(11, 2, 10))
    assert len(with_text(coordinator, "Ratings of 1–2")) == 1
    # The next day: no low rating the day before, no list.
    await run_job(harness, "daily_digest", at(11, 3, 9))
    assert len(with_text(coordinator, "Ratings of 1–2")) == 1
    # A bot down at digest time sends the day's list on its first sweep after it.
    await factories.rate(s, (await answered_by(people)).id, 1, at=at(11, 3, 15))
    await run_job(harness, "sweep", at(11, 4, 11))
    assert len(with_text(coordinator, "Ratings of 1–2 given on 03.11.2026")) == 1


# --- residents -------------------------------------------------------------------------------------------------


async def test_a_resident_never_sees_the_staff_screens_of_ratings(harness: Harness, clock: ManualClock) -> None:
    clock.set(at(11, 1, 12))
    people = await world(harness)
    s = people.services
    row = await answered_by(people)
    await factories.rate(s, row.id, 1, comment="Useless", reopen=True, at=at(11, 1, 13))
    await harness.settle()
    owner = person(harness, "owner")
    seen = len(owner.messages)
    answers = len(owner.callback_answers)
    # A forged «Open» of the staff card of their own appeal, and the staff menu.
    await owner.press_callback(owner.last_message.message_id, StaffCb(action=StaffAction.open, id=row.id).pack())
    await harness.settle()
    assert len(owner.callback_answers) == answers + 1
    assert owner.callback_answers[-1].get("text") == "Обращение не найдено."
    assert len(owner.messages) == seen
    await owner.send_text("/staff")
    await harness.settle()
    assert owner.last_message.text == "Это меню доступно только сотрудникам ЦУР и ведомств."
    await run_job(harness, "daily_digest", at(11, 2, 9))
    for message in owner.messages[seen:]:
        assert "⭐" not in message.text and "Reopened 1 of" not in message.text and "Ratings of 1–2" not in message.text
    assert with_text(person(harness, "coordinator"), "Ratings of 1–2", row.number)

