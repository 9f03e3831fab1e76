"""Deadlines, reminders, escalations and digests as staff see them in Telegram (issue 10, defects 5, 8–11).

The bot runs against the emulator; the world (staff with roles, appeals routed and taken) is set up through
the services, time travels with the ManualClock, and the scheduler's own jobs are run by hand where the
scheduler would run them (APScheduler keeps real time). What is checked is what people receive: the
reminders' texts, the card's "Due:" line, how many escalations and digests arrive and when.

Moscow is UTC+03:00 all year; the moments below are Moscow wall-clock times.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from emulator import EmulatedUser
from storage.models import Appeal, Reminder
from tests.conftest import Harness
from tests.factories import TG, World, appeal, make_world

MSK = ZoneInfo("Europe/Moscow")


def at(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=MSK).astimezone(UTC)


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [TG["admin"]]}}


async def world(harness: Harness, lang: str = "en") -> World:
    """Everyone of factories.TG, the staff speaking `lang`."""
    assert harness.app is not None
    services = harness.app.services
    built = await make_world(services, harness.clock)
    for name in ("coordinator", "official", "supervisor", "official_b", "admin"):
        built.people[name] = await services.users.set_locale(built[name], lang)
    for name in ("coordinator", "official", "supervisor", "owner"):  # they have written to the bot
        await harness.emu.user(TG[name], language_code=lang).send_text("/start")
    await harness.settle()
    return built


def person(harness: Harness, name: str) -> EmulatedUser:
    return harness.emu.user(TG[name])


async def sweep_at(harness: Harness, moment: datetime) -> None:
    """Travel to `moment` and run the scheduler's sweep job there, then let the notifications arrive."""
    assert harness.app is not None and harness.app.scheduler is not None
    harness.clock.set(moment)
    job = harness.app.scheduler.get_job("sweep")
    assert job is not None
    await job.func()
    await harness.settle()


def texts(user: EmulatedUser, *needles: str) -> list[str]:
    return [m.text for m in user.messages if all(n in m.text for n in needles)]


# --- 11. the reminder before the last day names that day ------------------------------------------------


@pytest.mark.parametrize(
    ("filed", "lang", "reminded", "expected"),
    [
        # Filed on Friday 6 November: ten days end on Monday the 16th; the last working day before is Friday.
        pytest.param(at(11, 6, 12), "en", at(11, 13, 9), "the answer is due Monday, 16.11.2026", id="friday-monday-en"),
        pytest.param(at(11, 6, 12), "ru", at(11, 13, 9), "понедельник, 16.11.2026", id="friday-monday-ru"),
        pytest.param(at(11, 6, 12), "ce", at(11, 13, 9), "оршот, 16.11.2026", id="friday-monday-ce"),
        # Filed on Sunday 1 November: the term ends on Wednesday the 11th, reminded on Tuesday.
        pytest.param(at(11, 1, 12), "en", at(11, 10, 9), "the answer is due Wednesday, 11.11.2026", id="tuesday-wednesday"),
    ],
)
async def test_the_reminder_before_the_last_day_names_its_weekday_and_date(
    harness: Harness, clock: ManualClock, filed: datetime, lang: str, reminded: datetime, expected: str
) -> None:
    clock.set(filed)
    people = await world(harness, lang)
    row = await people.in_progress()
    official = person(harness, "official")
    await sweep_at(harness, reminded - timedelta(hours=13))  # 20:00 the evening before: the half-time one is out
    seen = len(official.messages)
    await sweep_at(harness, reminded)
    [reminder] = [m.text for m in official.messages[seen:] if row.number in m.text]  # (the digest came too)
    assert expected in reminder
    assert "tomorrow" not in reminder and "завтра" not in reminder and "кхана" not in reminder
    [message] = [m for m in official.messages[seen:] if row.number in m.text]
    assert message.buttons == [{"en": "Open", "ru": "Открыть", "ce": "Схьайелла"}[lang]]


# --- 5. a pause shorter than a day never moves the date people see ---------------------------------------


@pytest.mark.parametrize(
    ("asked", "pause", "last_day"),
    [
        pytest.param(at(11, 9, 10), timedelta(seconds=1), date(2026, 11, 12), id="1-second"),
        pytest.param(at(11, 8, 12), timedelta(hours=23), date(2026, 11, 12), id="23-hours-across-midnight"),
        # 2 days 5 hours count as 2 days: Thursday 12th + 2 = Saturday 14th, a day off → Monday 16th.
        pytest.param(at(11, 8, 12), timedelta(days=2, hours=5), date(2026, 11, 16), id="2-days-5-hours"),
        pytest.param(at(11, 8, 12), timedelta(days=5, hours=23), date(2026, 11, 17), id="5-days-23-hours"),
    ],
)
async def test_a_pause_moves_the_date_only_by_whole_days(
    harness: Harness, clock: ManualClock, asked: datetime, pause: timedelta, last_day: date
) -> None:
    clock.set(at(11, 2, 12))
    people = await world(harness)
    row = await people.in_progress()  # the term ends on Thursday 12 November
    services = people.services
    clock.set(asked)
    await services.agency.ask_clarification(people["official"], row.id, "Which entrance?")
    clock.advance(pause)
    await services.replies.reply_clarification(people["owner"], row.id, "The third one")
    await harness.settle()
    after = await appeal(services, row.id)
    assert after.deadline_at is not None
    local = after.deadline_at.astimezone(MSK)
    assert (local.date(), local.time().hour, local.time().minute) == (last_day, 23, 59)
    shown = last_day.strftime("%d.%m.%Y")

    # The last morning: the reminder names the date, and the card it opens says the same.
    official = person(harness, "official")
    await sweep_at(harness, datetime.combine(last_day, datetime.min.time(), tzinfo=MSK).astimezone(UTC) + timedelta(hours=9))
    [last] = [m for m in official.messages if row.number in m.text and "last day" in m.text]
    assert f"today, {shown}, is the last day" in last.text
    await official.click("Open", message_id=last.message_id)
    await harness.settle()
    assert f"Due: {shown}" in official.message(last.message_id).text
    # The day before, the reminder had named the same date.
    [before] = texts(official, row.number, "⏳ Appeal")
    assert shown in before
    # Nothing escalates on the last day itself.
    assert texts(person(harness, "supervisor"), row.number, "🚨") == []


# --- 9. quiet hours hold what fell due while the bot was down ---------------------------------------------


async def test_after_downtime_reminders_due_in_quiet_hours_wait_for_the_morning(
    harness: Harness, clock: ManualClock
) -> None:
    clock.set(at(11, 2, 12))
    people = await world(harness)
    row = await people.in_progress()  # the term ends on 12 November: escalations from the 13th at 09:00
    supervisor, official = person(harness, "supervisor"), person(harness, "official")
    await sweep_at(harness, at(11, 12, 8))  # half and the day-before reminders went out in time
    sent_before = len(texts(official, row.number))
    # The bot is down from 08:00 on the last day until 22:00 on the next one.
    await sweep_at(harness, at(11, 13, 22))
    await sweep_at(harness, at(11, 14, 3))
    assert texts(supervisor, row.number, "🚨") == []
    await sweep_at(harness, at(11, 14, 9) - timedelta(seconds=1))
    assert texts(supervisor, row.number, "🚨") == []
    await sweep_at(harness, at(11, 14, 9))
    assert len(texts(supervisor, row.number, "🚨")) == 1
    # The "today is the last day" reminder of the 12th is stale by then: the escalation says it instead.
    assert len(texts(official, row.number)) == sent_before


# --- 10. daily escalations at the same morning time -------------------------------------------------------


async def test_daily_escalations_keep_the_morning_time_after_a_late_delivery(
    harness: Harness, clock: ManualClock
) -> None:
    clock.set(at(11, 2, 12))
    people = await world(harness)
    row = await people.in_progress()
    supervisor = person(harness, "supervisor")

    async def next_escalation() -> datetime:
        [pending] = await harness.rows(
            Reminder, Reminder.appeal_id == row.id, Reminder.kind == "escalation", Reminder.sent_at.is_(None)
        )
        return pending.due_at

    assert await next_escalation() == at(11, 13, 9)
    await sweep_at(harness, at(11, 13, 15, 40))  # the bot was down all morning: delivered late
    assert len(texts(supervisor, row.number, "🚨")) == 1
    assert await next_escalation() == at(11, 14, 9)  # not 15:40
    for day in (14, 15, 16):
        await sweep_at(harness, at(11, day, 9) - timedelta(seconds=1))
        assert len(texts(supervisor, row.number, "🚨")) == day - 13
        await sweep_at(harness, at(11, day, 9))
        assert len(texts(supervisor, row.number, "🚨")) == day - 12
        assert await next_escalation() == at(11, day + 1, 9)
    await sweep_at(harness, at(11, 16, 20))
    assert len(texts(supervisor, row.number, "🚨")) == 4


# --- 8. a restart around digest time ------------------------------------------------------------------


async def test_a_restart_across_the_digest_time_sends_the_digest_once(harness: Harness, clock: ManualClock) -> None:
    clock.set(at(10, 20, 12))
    people = await world(harness)
    await people.assigned()  # overdue by 12 November
    official = person(harness, "official")
    coordinator = person(harness, "coordinator")

    def digests() -> tuple[int, int]:
        return len(texts(official, "Your agency today")), len(texts(coordinator, "Overdue appeals by agency"))

    await sweep_at(harness, at(11, 12, 8, 59, 40))
    assert digests() == (0, 0)
    await harness.stop()  # down from 08:59:40 …
    clock.set(at(11, 12, 9, 0, 30))
    await harness.start()  # … to 09:00:30: the cron job's 09:00 has passed
    assert harness.app is not None and harness.app.scheduler is not None
    cron = harness.app.scheduler.get_job("daily_digest")
    assert cron is not None and cron.next_run_time is not None and cron.next_run_time > datetime.now(UTC)
    await sweep_at(harness, at(11, 12, 9, 0, 30))
    assert digests() == (1, 1)
    await sweep_at(harness, at(11, 12, 9, 1, 30))
    # The cron job itself, had it fired, finds the day's digest sent.
    await cron.func()
    await harness.settle()
    assert digests() == (1, 1)
    await harness.restart()  # a restart after the digest time: no second one
    await sweep_at(harness, at(11, 12, 9, 5))
    await sweep_at(harness, at(11, 12, 18))
    assert digests() == (1, 1)
    # The next day's comes at its time.
    await sweep_at(harness, at(11, 13, 8, 59))
    assert digests() == (1, 1)
    await sweep_at(harness, at(11, 13, 9))
    assert digests() == (2, 2)
    assert [a.number for a in await harness.rows(Appeal)]  # the world is there all along
