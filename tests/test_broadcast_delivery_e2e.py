"""Delivering broadcasts end to end through the emulator (issue 13): who gets an item and in which language, the
personal lane first, flood control, blocked residents, bounded retries, quiet hours, pausing and cancelling, a
restart in the middle with exactly-once delivery per recipient, the progress message and the final report.

The composer (tests/test_broadcasts_e2e.py) stores broadcasts through the dialog; here a broadcast row is stored as
the composer stores it, and the scheduler's job (run by the test after moving its clock) starts and ends it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot import notices
from bot.domain import BroadcastAudience, BroadcastStatus, Lane, OutboxState
from emulator import EmulatedUser
from storage.models import Block, Broadcast, NewsBlockOff, NewsPrefs, Outbox, User
from storage.repositories.outbox import OutboxRepo
from tests.conftest import Harness
from tests.test_polls_e2e import person
from tests.test_staff_e2e import district_id

ADMIN = 9000
TEXT = {"ru": "<b>Отключение воды</b> в Гудермесе", "en": "<b>Water outage</b> in Gudermes"}


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    # Quiet hours 21:00-09:00 (region time, UTC+3); the manual clock starts at 09:00 UTC = 12:00 there.
    return {"bot": {"admins": [ADMIN]}, "broadcasts": {"rate": 25, "max_attempts": 3}}


async def admin_user_id(harness: Harness) -> int:
    """The author (an admin of the config), who reads English."""
    assert harness.app is not None
    async with harness.app.sessionmaker() as session:
        await session.execute(update(User).where(User.tg_id == ADMIN).values(locale="en"))
        await session.commit()
        return (await session.execute(select(User.id).where(User.tg_id == ADMIN))).scalar_one()


async def store(
    harness: Harness,
    *,
    audience: BroadcastAudience | None = None,
    texts: dict[str, str] | None = None,
    urgent: bool = False,
    start_at: datetime | None = None,
    progress: EmulatedUser | None = None,
) -> int:
    """A confirmed broadcast, stored as the composer stores it; with `progress`, its author's progress message."""
    assert harness.app is not None and harness.bot is not None
    now = harness.clock.now()
    message_id = None
    if progress is not None:
        message_id = (await harness.bot.send_message(progress.chat_id, "📣 …")).message_id
    async with harness.app.sessionmaker() as session:
        row = Broadcast(
            draft_key=uuid.uuid4().hex,
            created_by=await admin_user_id(harness),
            created_at=now,
            status=BroadcastStatus.scheduled,
            urgent=urgent,
            texts=texts or TEXT,
            audience=(audience or BroadcastAudience()).to_json(),
            start_at=start_at or now,
            listed=False,
            progress_chat_id=progress.chat_id if progress else None,
            progress_message_id=message_id,
        )
        session.add(row)
        await session.commit()
        return row.id


async def run_job(harness: Harness) -> None:
    assert harness.app is not None and harness.app.scheduler is not None
    await harness.app.scheduler.get_job("broadcasts_start").func()  # starts what is due
    await harness.settle(timeout=30)
    await harness.app.scheduler.get_job("broadcasts").func()  # ends what is finished, edits the progress
    await harness.settle(timeout=30)


async def items(harness: Harness, broadcast_id: int) -> list[Outbox]:
    return await harness.rows(Outbox, Outbox.broadcast_id == broadcast_id)


def got(user: EmulatedUser, needle: str) -> list[Any]:
    return [m for m in user.messages if m.text and needle in m.text]


async def test_a_broadcast_reaches_its_audience_in_their_language_once_with_a_report(harness: Harness) -> None:
    emu = harness.emu
    author = emu.user(ADMIN, language_code="en")
    author.open_chat()
    ru = await person(harness, 1001, "ru", district="gudermessky")
    en = await person(harness, 1002, "en", district="gudermessky")
    ce = await person(harness, 1003, "ce", district="gudermessky")  # no Chechen text: Russian
    elsewhere = await person(harness, 1004, "ru", district="grozny")
    stopped = await person(harness, 1005, "ru", district="gudermessky")
    blocked = await person(harness, 1006, "ru", district="gudermessky")
    assert harness.app is not None
    async with harness.app.sessionmaker() as session:
        user_id = (await session.execute(select(User.id).where(User.tg_id == 1005))).scalar_one()
        session.add(NewsPrefs(user_id=user_id, stopped=True, districts_chosen=False, updated_at=harness.clock.now()))
        await session.commit()
    blocked.block(notify=False)  # Telegram will answer 403; the bot does not know yet

    broadcast_id = await store(
        harness, audience=BroadcastAudience(districts=(district_id(harness, "gudermessky"),)), progress=author
    )
    await run_job(harness)  # starts it: the recipients are listed, the sender delivers
    await run_job(harness)  # ends it: the report

    assert [m.text for m in ru.messages][-1] == "Отключение воды в Гудермесе"
    assert [m.text for m in en.messages][-1] == "Water outage in Gudermes"
    assert [m.text for m in ce.messages][-1] == "Отключение воды в Гудермесе"
    item = ru.messages[-1]
    assert item.html == TEXT["ru"]
    assert "nw:u:" in str(item.reply_markup)  # «Unsubscribe from such news»
    for outsider in (elsewhere, stopped):
        assert not got(outsider, "Гудермес")
    assert not blocked.messages or not got(blocked, "Гудермес")

    rows = await items(harness, broadcast_id)
    assert Counter(r.status for r in rows) == {OutboxState.sent: 3, OutboxState.blocked: 1}
    assert all(r.lane == Lane.bulk for r in rows)
    assert not (await harness.rows(User, User.tg_id == 1006))[0].is_active  # skipped from then on
    row = (await harness.rows(Broadcast, Broadcast.id == broadcast_id))[0]
    assert row.status == BroadcastStatus.done and row.recipients == 4 and row.listed

    report = author.messages[-1].text
    assert f"Broadcast № {broadcast_id} is finished" in report
    assert "Recipients: 4." in report and "Delivered: 3." in report and "Blocked the bot: 1." in report
    assert "Other errors: 0." in report
    progress = author.messages[0]
    assert progress.edits >= 1 and "finished" in progress.text and "Sent: 3 of 4." in progress.text
    assert progress.reply_markup is None or progress.reply_markup.get("inline_keyboard") in ([], [[]])

    # Running the job again changes nothing and sends nothing.
    before = sum(len(u.messages) for u in (ru, en, ce, author))
    await run_job(harness)
    assert sum(len(u.messages) for u in (ru, en, ce, author)) == before


async def test_audience_by_block_and_by_language(harness: Harness) -> None:
    a = await person(harness, 1011, "ru", district="grozny")
    b = await person(harness, 1012, "en", district="grozny")
    c = await person(harness, 1013, "ru", district="argun")
    assert harness.app is not None
    block_id = (await harness.rows(Block, Block.code == "housing"))[0].id
    async with harness.app.sessionmaker() as session:
        user_id = (await session.execute(select(User.id).where(User.tg_id == 1013))).scalar_one()
        session.add(NewsBlockOff(user_id=user_id, block_id=block_id))
        await session.commit()
    await store(harness, audience=BroadcastAudience(block_id=block_id), texts={"ru": "ЖКХ новости"})
    await run_job(harness)
    assert got(a, "ЖКХ новости") and got(b, "ЖКХ новости") and not got(c, "ЖКХ новости")
    await store(harness, audience=BroadcastAudience(language="en"), texts={"ru": "по-русски", "en": "in English"})
    await run_job(harness)
    assert got(b, "in English") and not got(a, "по-русски") and not got(c, "по-русски")


async def test_appeal_notifications_go_before_the_broadcast(harness: Harness) -> None:
    """60 items at 25/s take 2.4 s (on the test's clock); a notification due 1 s in goes out within 0.6 s."""
    residents = [await person(harness, 2000 + i, "ru") for i in range(60)]
    # Telegram's limits, counted on the test's clock (the one the sender's rate limiter waits on).
    harness.emu.rate_limit(per_chat_per_second=1, global_per_second=30, clock=lambda: harness.clock.now().timestamp())
    official = harness.emu.user(3000, language_code="ru")
    official.open_chat()
    assert harness.app is not None
    start = harness.clock.now()
    due = start + timedelta(seconds=1)
    async with harness.app.sessionmaker() as session:
        official_user = User(tg_id=3000, locale="ru", is_active=True, created_at=start)
        session.add(official_user)
        await session.flush()
        row = OutboxRepo(session).add(
            official_user.id, notices.StatusChanged(appeal_id=1, number="2026-000001", status="assigned"), start
        )
        row.next_attempt_at = due
        await session.commit()
        personal_id = row.id
    broadcast_id = await store(harness, texts={"ru": "Новость дня"})
    await run_job(harness)
    personal = (await harness.rows(Outbox, Outbox.id == personal_id))[0]
    sent = sorted(r.sent_at for r in await items(harness, broadcast_id))
    assert len(sent) == 60 and all(got(r, "Новость дня") for r in residents)
    assert sent[-1] - sent[0] >= timedelta(seconds=2)  # the configured rate held
    assert personal.status == OutboxState.sent
    assert personal.sent_at - due <= timedelta(seconds=0.6)
    assert sent[0] < personal.sent_at < sent[-1]  # it went out in the middle of the broadcast
    assert [c for c in harness.emu.calls() if c.error_code == 429] == []  # the rate kept under Telegram's limit


async def test_a_listing_cut_off_by_a_crash_resumes_after_its_cursor(harness: Harness) -> None:
    """Recipients are listed `broadcasts.batch` at a time, each batch in its own transaction; a starter that died
    after some batches leaves a cursor and a lease; the next tick after the lease goes on from the cursor."""
    residents = [await person(harness, 2600 + i, "ru") for i in range(25)]
    assert harness.app is not None
    harness.settings.broadcasts.batch = 10
    broadcast_id = await store(harness, texts={"ru": "По частям"})
    async with harness.app.sessionmaker() as session:  # held while the scene is set
        await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(status=BroadcastStatus.paused))
        await session.commit()
    delivery = harness.app.services.delivery
    await delivery.start(broadcast_id)
    rows = sorted(await items(harness, broadcast_id), key=lambda r: r.user_id)
    assert len(rows) == 25
    # Undo the last 15 as if the starter had died after its first batch, holding the lease.
    cut = rows[9].user_id
    async with harness.app.sessionmaker() as session:
        await session.execute(
            Outbox.__table__.delete().where(Outbox.broadcast_id == broadcast_id, Outbox.user_id > cut)
        )
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(cursor=cut, recipients=10, listed=False, claim="dead", locked_until=harness.clock.now() + timedelta(seconds=60))
        )
        await session.commit()
    assert await delivery.start_due() == 0  # the dead starter's lease still runs
    harness.clock.advance(seconds=61)
    assert await delivery.start_due() == 15
    rows = await items(harness, broadcast_id)
    assert sorted(Counter(r.user_id for r in rows).values()) == [1] * 25
    row = (await harness.rows(Broadcast, Broadcast.id == broadcast_id))[0]
    assert row.recipients == 25 and row.listed and row.claim is None
    async with harness.app.sessionmaker() as session:
        await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(status=BroadcastStatus.running))
        await session.commit()
    harness.app.wake_sender()
    await harness.settle(timeout=30)
    await run_job(harness)
    assert all(len(got(r, "По частям")) == 1 for r in residents)


async def test_flood_control_pauses_the_broadcast_and_loses_nothing(harness: Harness) -> None:
    residents = [await person(harness, 2100 + i, "ru") for i in range(20)]
    fault = harness.emu.inject("sendMessage", "429", count=1, retry_after=3)
    broadcast_id = await store(harness, texts={"ru": "После паузы"})
    assert harness.app is not None
    await harness.app.services.delivery.start(broadcast_id)
    for _ in range(500):
        if fault.hits:
            break
        await asyncio.sleep(0.01)
    assert fault.hits == 1
    await asyncio.sleep(0.2)
    paused = [r for r in await items(harness, broadcast_id) if r.status == OutboxState.sent]
    harness.clock.advance(seconds=3)  # Telegram's retry_after, on the test's clock
    await harness.settle(timeout=30)
    await run_job(harness)
    rows = await items(harness, broadcast_id)
    assert Counter(r.status for r in rows) == {OutboxState.sent: 20}
    assert all(len(got(r, "После паузы")) == 1 for r in residents)
    assert len(paused) < 20  # nothing more went out while flood control lasted
    row = (await harness.rows(Broadcast, Broadcast.id == broadcast_id))[0]
    assert row.flood_waits == 1 and row.status == BroadcastStatus.done


async def test_other_errors_are_retried_a_bounded_number_of_times(harness: Harness) -> None:
    unlucky = await person(harness, 2201, "ru")
    lucky = await person(harness, 2202, "ru")
    harness.emu.inject("sendMessage", "500", count=10, chat_id=unlucky.chat_id)
    broadcast_id = await store(harness, texts={"ru": "Повторы"})
    await run_job(harness)
    for _ in range(4):  # the retries' backoff, on the test's clock
        harness.clock.advance(seconds=30)
        await harness.settle(timeout=30)
    await run_job(harness)
    rows = {r.user_id: r for r in await items(harness, broadcast_id)}
    failed = [r for r in rows.values() if r.status == OutboxState.failed]
    assert len(failed) == 1 and failed[0].attempts == 3 and "gave up after 3 attempts" in failed[0].last_error
    assert got(lucky, "Повторы") and not got(unlucky, "Повторы")
    row = (await harness.rows(Broadcast, Broadcast.id == broadcast_id))[0]
    assert row.status == BroadcastStatus.done


async def test_quiet_hours_hold_a_normal_broadcast_but_not_an_urgent_one(harness: Harness) -> None:
    resident = await person(harness, 2301, "ru")
    author = harness.emu.user(ADMIN, language_code="en")
    author.open_chat()
    harness.clock.set(datetime.combine(harness.clock.now().date(), time(19, 0), tzinfo=harness.clock.now().tzinfo))  # 22:00 there
    normal = await store(harness, texts={"ru": "Обычная"}, progress=author)
    urgent = await store(harness, texts={"ru": "Срочная"}, urgent=True)
    await run_job(harness)
    assert got(resident, "Срочная") and not got(resident, "Обычная")
    assert [r.status for r in await items(harness, normal)] == [OutboxState.pending]
    waiting = author.messages[0].text
    assert "sending" in waiting and "Waiting for the end of the quiet hours: it goes on at" in waiting, waiting
    assert "Time left" not in waiting
    harness.clock.advance(hours=11)  # 09:00 there
    await harness.settle(timeout=30)
    await run_job(harness)
    assert got(resident, "Обычная")
    assert (await harness.rows(Broadcast, Broadcast.id == urgent))[0].status == BroadcastStatus.done


async def test_paused_broadcast_waits_and_a_cancelled_one_stops_with_a_report(harness: Harness) -> None:
    from bot.services.broadcast_delivery import finish

    author = harness.emu.user(ADMIN, language_code="en")
    author.open_chat()
    residents = [await person(harness, 2400 + i, "ru") for i in range(5)]
    assert harness.app is not None
    paused = await store(harness, texts={"ru": "Пауза"}, progress=author)
    sender = harness.app.sender
    assert sender is not None
    await sender.stop()  # nothing goes out while the test sets the scene
    await harness.app.services.delivery.start(paused)
    async with harness.app.sessionmaker() as session:
        await session.execute(update(Broadcast).where(Broadcast.id == paused).values(status=BroadcastStatus.paused))
        await session.commit()
    await harness.restart()
    await run_job(harness)
    assert not any(got(r, "Пауза") for r in residents)
    assert "paused" in author.messages[0].text and "Resume" in str(author.messages[0].reply_markup)

    async with harness.app.sessionmaker() as session:
        assert await finish(session, paused, BroadcastStatus.cancelled, harness.clock.now())
        await session.commit()
        assert not await finish(session, paused, BroadcastStatus.cancelled, harness.clock.now())  # only once
    harness.app.wake_sender()
    await harness.settle()
    await run_job(harness)
    assert not any(got(r, "Пауза") for r in residents)
    assert Counter(r.status for r in await items(harness, paused)) == {OutboxState.cancelled: 5}
    report = author.messages[-1].text
    assert f"Broadcast № {paused} was cancelled" in report and "Not sent (cancelled): 5." in report


async def test_a_restart_in_the_middle_delivers_each_recipient_exactly_once(harness: Harness) -> None:
    """The bot stops after some items went out, and one item's call was in flight when a sender died (its lease is
    left behind, as after kill -9): after the restart every recipient has the broadcast once, except that one item,
    which is sent again and counted as "possibly received twice"."""
    residents = [await person(harness, 2500 + i, "ru") for i in range(40)]
    author = harness.emu.user(ADMIN, language_code="en")
    author.open_chat()
    assert harness.app is not None and harness.bot is not None
    broadcast_id = await store(harness, texts={"ru": "Без дублей"})
    async with harness.app.sessionmaker() as session:  # held while the scene is set
        await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(status=BroadcastStatus.paused))
        await session.commit()
    await harness.app.services.delivery.start(broadcast_id)
    rows = sorted(await items(harness, broadcast_id), key=lambda r: r.id)
    assert len(rows) == 40
    # A dead sender's lease on the first item: Telegram took the call, the outcome was never recorded.
    in_flight = rows[0]
    await harness.bot.send_message(residents[0].chat_id, "Без дублей")
    async with harness.app.sessionmaker() as session:
        await session.execute(
            update(Outbox).where(Outbox.id == in_flight.id).values(locked_until=harness.clock.now() + timedelta(seconds=60))
        )
        await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(status=BroadcastStatus.running))
        await session.commit()
    harness.app.wake_sender()
    # Some of it goes out, then the bot is killed (its polling cut off, the sender stopped mid-broadcast).
    for _ in range(1000):
        if len([r for r in await items(harness, broadcast_id) if r.status == OutboxState.sent]) >= 10:
            break
        await asyncio.sleep(0.005)
    await harness.kill()
    sent_before = len([r for r in await _items(harness, broadcast_id) if r.status == OutboxState.sent])
    assert 10 <= sent_before < 39
    await harness.start()
    harness.clock.advance(seconds=61)  # the dead sender's lease expires
    await harness.settle(timeout=30)
    await run_job(harness)
    received = [len(got(r, "Без дублей")) for r in residents]
    assert received == [2] + [1] * 39
    rows = await items(harness, broadcast_id)
    assert Counter(r.status for r in rows) == {OutboxState.sent: 40}
    assert [r.user_id for r in rows if r.lost_leases] == [in_flight.user_id]
    report = author.messages[-1].text
    assert "Delivered: 40." in report and "Possibly received twice (a connection or the bot failed while sending): 1." in report


async def _items(harness: Harness, broadcast_id: int) -> list[Outbox]:
    """The items read with a connection of the test's own (after kill() the bot's app is gone)."""
    from storage.db import create_engine, create_sessionmaker

    engine = create_engine(harness.settings.database.url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list((await session.execute(select(Outbox).where(Outbox.broadcast_id == broadcast_id))).scalars())
    finally:
        await engine.dispose()


async def test_a_message_telegram_refuses_for_its_content_holds_the_broadcast(harness: Harness) -> None:
    """«can't parse entities» would come back for every recipient: the first one pauses the broadcast and its author
    is told why, instead of the whole audience being tried and failed."""
    residents = [await person(harness, 2700 + i, "ru") for i in range(10)]
    author = harness.emu.user(ADMIN, language_code="en")
    author.open_chat()
    harness.emu.inject(
        "sendMessage", "error", count=1, error_code=400,
        description="Bad Request: can't parse entities: Unexpected end tag at byte offset 5",
    )
    broadcast_id = await store(harness, texts={"ru": "Плохая"})
    await run_job(harness)
    rows = await items(harness, broadcast_id)
    assert Counter(r.status for r in rows) == {OutboxState.failed: 1, OutboxState.pending: 9}
    row = (await harness.rows(Broadcast, Broadcast.id == broadcast_id))[0]
    assert row.status == BroadcastStatus.paused
    held = author.messages[-1].text
    assert f"Broadcast № {broadcast_id} is paused: Telegram refused its message" in held and "can't parse entities" in held
    assert not any(got(r, "Плохая") for r in residents)


async def test_an_item_in_flight_at_a_cancel_is_cancelled_when_its_lease_runs_out(harness: Harness) -> None:
    from bot.services.broadcast_delivery import finish

    await person(harness, 2801, "ru")
    await person(harness, 2802, "ru")
    author = harness.emu.user(ADMIN, language_code="en")
    author.open_chat()
    assert harness.app is not None
    broadcast_id = await store(harness, texts={"ru": "Отменим"})
    async with harness.app.sessionmaker() as session:  # held while the scene is set
        await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(status=BroadcastStatus.paused))
        await session.commit()
    await harness.app.services.delivery.start(broadcast_id)
    rows = sorted(await items(harness, broadcast_id), key=lambda r: r.id)
    async with harness.app.sessionmaker() as session:  # a sender died with the first one in flight
        await session.execute(
            update(Outbox).where(Outbox.id == rows[0].id).values(locked_until=harness.clock.now() + timedelta(seconds=60))
        )
        assert await finish(session, broadcast_id, BroadcastStatus.cancelled, harness.clock.now())
        await session.commit()
    assert Counter(r.status for r in await items(harness, broadcast_id)) == {OutboxState.cancelled: 1, OutboxState.pending: 1}
    await harness.settle()
    assert not any("Its report" in (m.text or "") for m in author.messages)  # not while an item may be in flight
    harness.clock.advance(seconds=61)
    await run_job(harness)
    assert Counter(r.status for r in await items(harness, broadcast_id)) == {OutboxState.cancelled: 2}
    report = author.messages[-1].text
    assert f"Broadcast № {broadcast_id} was cancelled" in report
    assert "Recipients: 2." in report and "Delivered: 0." in report and "Not sent (cancelled): 2." in report


async def test_a_connection_lost_after_the_call_counts_the_item_as_possibly_twice(harness: Harness) -> None:
    """Telegram took the call but the answer was lost: the item is sent again (it may arrive twice), and the report
    says so instead of claiming exactly once."""
    residents = [await person(harness, 2900 + i, "ru") for i in range(3)]
    author = harness.emu.user(ADMIN, language_code="en")
    author.open_chat()
    harness.emu.inject("sendMessage", "drop_after", count=1, chat_id=residents[1].chat_id)
    broadcast_id = await store(harness, texts={"ru": "Связь"})
    await run_job(harness)
    harness.clock.advance(seconds=30)  # the retry's backoff
    await harness.settle(timeout=30)
    await run_job(harness)
    assert [len(got(r, "Связь")) for r in residents] == [1, 2, 1]
    rows = {r.user_id: r for r in await items(harness, broadcast_id)}
    assert sorted(r.lost_leases for r in rows.values()) == [0, 0, 1]
    report = author.messages[-1].text
    assert "Delivered: 3." in report and "Possibly received twice (a connection or the bot failed while sending): 1." in report
