"""The outbox sender against the Bot API emulator: delivery, faults, restarts, two instances, rate limits."""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import notices
from bot.clock import ManualClock
from bot.domain import Lane
from bot.outbox import OutboxSender, Rendered
from storage.db import create_engine, create_sessionmaker
from storage.models import Outbox, User
from storage.repositories.outbox import OutboxRepo
from tests.databases import db_url

if TYPE_CHECKING:
    from emulator import BotAPIEmulator

Maker = async_sessionmaker[AsyncSession]
FAST: dict[str, Any] = {"global_rate": 1000.0, "per_chat_rate": 1000.0, "per_chat_burst": 100}


# --- fixtures and helpers -------------------------------------------------------------------------------


@pytest.fixture
async def engines(db_path: Path) -> AsyncIterator[list[AsyncEngine]]:
    """Engines on the test's database; each extra one plays another bot instance (process)."""
    made: list[AsyncEngine] = []
    yield made
    for engine in made:
        await engine.dispose()


def new_maker(engines: list[AsyncEngine], db_path: Path) -> Maker:
    engine = create_engine(db_url(db_path))
    engines.append(engine)
    return create_sessionmaker(engine)


@pytest.fixture
def db(engines: list[AsyncEngine], db_path: Path) -> Maker:
    return new_maker(engines, db_path)


@pytest.fixture
async def bots(emu: BotAPIEmulator) -> AsyncIterator[list[Bot]]:
    made: list[Bot] = []
    yield made
    for bot in made:
        await bot.session.close()


def new_bot(emu: BotAPIEmulator, bots: list[Bot]) -> Bot:
    # The same defaults as bot.app.create_bot: HTML parse mode.
    bot = emu.create_bot(default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    bots.append(bot)
    return bot


@pytest.fixture
def bot(emu: BotAPIEmulator, bots: list[Bot]) -> Bot:
    return new_bot(emu, bots)


class Renderer:
    """Templates: "note" (text with the locale), "none" (nothing to send), "media", "raw" (params["html"])."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str, int]] = []

    async def __call__(self, template: str, params: dict[str, Any], locale: str, user_id: int) -> Rendered | None:
        self.calls.append((template, params, locale, user_id))
        if template == "none":
            return None
        if template == "media":
            markup = None
            if params.get("button"):
                markup = InlineKeyboardMarkup(
                    inline_keyboard=[[InlineKeyboardButton(text="Open", callback_data="open:1")]]
                )
            return Rendered(text=params.get("caption"), reply_markup=markup, media=[(k, f) for k, f in params["media"]])
        if template == "raw":
            return Rendered(text=params["html"])
        return Rendered(text=f"<b>{html.escape(str(params['n']))}</b> [{locale}]")


async def add_users(
    db: Maker,
    emu: BotAPIEmulator,
    tg_ids: Iterable[int],
    clock: ManualClock,
    locale: str | None = "ru",
    open_chat: bool = True,
) -> dict[int, int]:
    """users rows (tg_id -> users.id); the emulated people opened the chat so the bot may write."""
    ids: dict[int, int] = {}
    async with db() as session, session.begin():
        for tg_id in tg_ids:
            user = User(tg_id=tg_id, locale=locale, is_active=True, created_at=clock.now())
            session.add(user)
            await session.flush()
            ids[tg_id] = user.id
            if open_chat:
                emu.user(tg_id).open_chat()
    return ids


async def queue(db: Maker, clock: ManualClock, items: Iterable[tuple[int, str, dict[str, Any]]]) -> list[int]:
    async with db() as session, session.begin():
        repo = OutboxRepo(session)
        rows = [repo.add_raw(user_id, template, params, clock.now()) for user_id, template, params in items]
        await session.flush()
        return [row.id for row in rows]


async def rows(db: Maker) -> dict[int, Outbox]:
    async with db() as session:
        return {row.id: row for row in (await session.execute(select(Outbox))).scalars()}


async def user_row(db: Maker, user_id: int) -> User:
    async with db() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def drain_all(sender: OutboxSender, db: Maker, clock: ManualClock, max_rounds: int = 500) -> int:
    """Drain, and when nothing more goes out now, travel to the next due moment, until no row is pending."""
    total = 0
    for _ in range(max_rounds):
        attempted = await sender.drain_once()
        total += attempted
        async with db() as session:
            next_due = (
                await session.execute(select(func.min(Outbox.next_attempt_at)).where(Outbox.status == "pending"))
            ).scalar_one_or_none()
        if next_due is None:
            return total
        if attempted == 0:
            # Nothing could go out now (backoff, lease or flood pause): move the clock on.
            clock.set(max(next_due, clock.now() + timedelta(seconds=1)))
    raise AssertionError("the outbox never emptied")


def texts(emu: BotAPIEmulator, chat_id: int) -> list[str]:
    return [m.text for m in emu.sent_messages(chat_id)]


def make_sender(bot: Bot, db: Maker, clock: ManualClock, render: Renderer | None = None, **kwargs: Any) -> OutboxSender:
    return OutboxSender(bot, db, clock, render or Renderer(), **{**FAST, **kwargs})


# --- delivery -------------------------------------------------------------------------------------------


async def test_plain_delivery_with_locale(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    users = await add_users(db, emu, [1001], clock)
    en = await add_users(db, emu, [1002], clock, locale="en")
    unset = await add_users(db, emu, [1003], clock, locale=None)
    ids = await queue(
        db,
        clock,
        [(users[1001], "note", {"n": "a & b"}), (en[1002], "note", {"n": 2}), (unset[1003], "note", {"n": 3})],
    )
    render = Renderer()
    sender = make_sender(bot, db, clock, render)
    start = clock.now()

    assert await sender.drain_once() == 3
    assert await sender.drain_once() == 0

    assert texts(emu, 1001) == ["a & b [ru]"]
    assert emu.sent_messages(1001)[0].html == "<b>a &amp; b</b> [ru]"
    assert emu.sent_messages(1001)[0].parse_mode == "HTML"
    assert texts(emu, 1002) == ["2 [en]"]
    assert texts(emu, 1003) == ["3 [ru]"]  # no locale yet: the default
    assert [(c[2], c[3]) for c in render.calls] == [("ru", users[1001]), ("en", en[1002]), ("ru", unset[1003])]
    stored = await rows(db)
    for row_id, chat in zip(ids, [1001, 1002, 1003], strict=True):
        row = stored[row_id]
        assert (row.status, row.attempts, row.locked_until, row.last_error) == ("sent", 1, None, None)
        assert start <= row.sent_at <= clock.now()  # the rate limiter's waits move the clock a little
        assert row.tg_message_id == emu.sent_messages(chat)[0].message_id


async def test_none_render_is_skipped_without_a_call(
    emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock
) -> None:
    users = await add_users(db, emu, [1001], clock)
    [row_id] = await queue(db, clock, [(users[1001], "none", {})])
    assert await make_sender(bot, db, clock).drain_once() == 1
    assert emu.calls("sendMessage") == []
    row = (await rows(db))[row_id]
    assert (row.status, row.last_error, row.tg_message_id, row.attempts) == ("sent", "skipped", None, 0)


async def test_a_row_no_notification_class_fits_is_marked_failed(
    emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The real decoding (bot.notices.decode) refuses the row: logged, failed at once, never retried, and the
    rows behind it still go out."""

    class Decoding(Renderer):
        async def __call__(self, template: str, params: dict[str, Any], locale: str, user_id: int) -> Rendered | None:
            if template != "note":
                notices.decode(template, params)
            return await super().__call__(template, params, locale, user_id)

    users = await add_users(db, emu, [1001], clock)
    bad, good = await queue(db, clock, [(users[1001], "no_such_template", {"n": 1}), (users[1001], "note", {"n": 2})])
    with caplog.at_level(logging.ERROR, logger="bot.outbox"):
        assert await make_sender(bot, db, clock, Decoding()).drain_once() == 2
    stored = await rows(db)
    assert (stored[bad].status, stored[bad].attempts) == ("failed", 0)
    assert stored[bad].last_error == "unknown notification: unknown template 'no_such_template'"
    assert stored[good].status == "sent" and texts(emu, 1001) == ["2 [ru]"]
    assert any("no_such_template" in r.getMessage() for r in caplog.records)


async def test_media_single_and_album(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    person = emu.user(1001)
    photo = (await person.send_photo())["photo"][-1]["file_id"]  # writing first also opens the chat
    video = (await person.send_video())["video"]["file_id"]
    document = (await person.send_document())["document"]["file_id"]
    users = await add_users(db, emu, [1001], clock)
    uid = users[1001]
    ids = await queue(
        db,
        clock,
        [
            (uid, "media", {"media": [["photo", photo]], "caption": "<i>one</i>", "button": True}),
            (uid, "media", {"media": [["document", document]]}),
            (uid, "media", {"media": [["photo", photo], ["video", video]], "caption": "album"}),
        ],
    )
    sender = make_sender(bot, db, clock)
    assert await sender.drain_once() == 3

    sent = emu.sent_messages(1001)
    assert [m.kind for m in sent] == ["photo", "document", "photo", "video"]
    assert sent[0].text == "one" and sent[0].buttons == ["Open"]
    assert sent[2].media_group_id is not None and sent[2].media_group_id == sent[3].media_group_id
    assert sent[2].text == "album"
    # One Telegram call per row, the album included.
    assert [c.method.lower() for c in emu.requests if c.ok] == ["sendphoto", "senddocument", "sendmediagroup"]
    stored = await rows(db)
    assert [stored[i].tg_message_id for i in ids] == [sent[0].message_id, sent[1].message_id, sent[2].message_id]
    assert all(stored[i].status == "sent" for i in ids)


async def test_album_with_keyboard_is_refused(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    person = emu.user(1001)
    photo = (await person.send_photo())["photo"][-1]["file_id"]
    users = await add_users(db, emu, [1001], clock)
    [row_id] = await queue(db, clock, [(users[1001], "media", {"media": [["photo", photo]] * 2, "button": True})])
    assert await make_sender(bot, db, clock).drain_once() == 1
    assert emu.calls("sendMediaGroup") == [] and emu.calls("sendPhoto") == []
    row = (await rows(db))[row_id]
    assert row.status == "failed" and "keyboard" in (row.last_error or "")


# --- faults ---------------------------------------------------------------------------------------------


async def test_faults_deliver_every_notification_exactly_once(
    emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock
) -> None:
    chats = [2001, 2002, 2003, 2004, 2005]
    users = await add_users(db, emu, chats, clock)
    items = [(users[chats[i % 5]], "note", {"n": f"n{i}"}) for i in range(30)]
    ids = await queue(db, clock, items)
    faults = [
        emu.inject("sendMessage", kind="429", count=2, retry_after=3),
        emu.inject("sendMessage", kind="500", count=5),
        emu.inject("sendMessage", kind="drop", count=4),
        emu.inject("sendMessage", kind="500", count=3, chat_id=2003),
        emu.inject("sendMessage", kind="429", count=1, retry_after=1, chat_id=2005),
    ]
    sender = make_sender(bot, db, clock)

    await drain_all(sender, db, clock)

    assert [f.hits for f in faults] == [2, 5, 4, 3, 1]
    for index, chat in enumerate(chats):
        expected = sorted(f"n{i} [ru]" for i in range(index, 30, 5))
        got = texts(emu, chat)
        assert sorted(got) == expected, emu.user(chat).dump()  # each exactly once: no loss, no duplicate
    calls = emu.calls("sendMessage")
    failed_per_chat = Counter(c.params["chat_id"] for c in calls if not c.ok)
    assert sum(failed_per_chat.values()) == 15
    stored = await rows(db)
    assert all(stored[i].status == "sent" and stored[i].locked_until is None for i in ids)
    # attempts = the calls made: one success per row plus every failure.
    assert sum(stored[i].attempts for i in ids) == len(calls) == 30 + 15
    for chat in chats:
        chat_rows = [stored[i] for i in ids if stored[i].user_id == users[chat]]
        assert sum(r.attempts for r in chat_rows) == len(chat_rows) + failed_per_chat[chat]
    # Message ids count per chat, as in Telegram's private chats.
    by_message = {(users[chat], m.message_id): m.text for chat in chats for m in emu.sent_messages(chat)}
    for i, row_id in enumerate(ids):
        assert by_message[(stored[row_id].user_id, stored[row_id].tg_message_id)] == f"n{i} [ru]"
    failed_rows = [stored[i] for i in ids if stored[i].attempts > 1]
    assert {r.last_error.split(":")[0] for r in failed_rows if r.last_error} <= {
        "TelegramRetryAfter",
        "TelegramServerError",
        "TelegramNetworkError",
    }


async def test_retry_after_pauses_all_sending(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    users = await add_users(db, emu, [2001, 2002], clock)
    ids = await queue(db, clock, [(users[2001], "note", {"n": 1}), (users[2002], "note", {"n": 2})])
    emu.inject("sendMessage", kind="429", count=1, retry_after=5)
    sender = make_sender(bot, db, clock)
    start = clock.now()

    assert await sender.drain_once() == 1  # the 429 stops the round
    row = (await rows(db))[ids[0]]
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, start + timedelta(seconds=5))
    assert row.last_error is not None and row.last_error.startswith("TelegramRetryAfter")
    # The other chat's row is due, but the bot as a whole waits out the flood control.
    clock.advance(seconds=4)
    assert await sender.drain_once() == 0
    assert len(emu.calls("sendMessage")) == 1
    clock.advance(seconds=1)
    assert await sender.drain_once() == 2
    assert texts(emu, 2001) == ["1 [ru]"] and texts(emu, 2002) == ["2 [ru]"]


async def test_backoff_is_exponential_and_capped(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    users = await add_users(db, emu, [2001], clock)
    [row_id] = await queue(db, clock, [(users[2001], "note", {"n": 1})])
    emu.inject("sendMessage", kind="500", count=None)
    sender = make_sender(bot, db, clock)
    delays = []
    for _ in range(11):
        before = clock.now()
        assert await sender.drain_once() == 1
        row = (await rows(db))[row_id]
        delays.append((row.next_attempt_at - before).total_seconds())
        assert await sender.drain_once() == 0  # not due yet
        clock.set(row.next_attempt_at)
    for attempt, delay in enumerate(delays, start=1):
        base = min(2**attempt, 300)
        assert base <= delay <= min(base * 1.1, 300) + 1e-6, (attempt, delay)
    assert delays[-1] == pytest.approx(300)
    assert row.attempts == 11 and row.status == "pending"
    assert row.last_error == "TelegramServerError: Internal Server Error"


async def test_blocked_user(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    users = await add_users(db, emu, [3001, 3002], clock)
    emu.user(3001).block(notify=False)
    ids = await queue(
        db,
        clock,
        [(users[3001], "note", {"n": 1}), (users[3002], "note", {"n": 2}), (users[3001], "note", {"n": 3})],
    )
    told: list[int] = []  # the app drops the person's cached actor, so their next update reactivates them
    sender = make_sender(bot, db, clock, on_blocked=told.append)
    assert await sender.drain_once() == 3
    assert told == [users[3001], users[3001]]

    stored = await rows(db)
    assert stored[ids[0]].status == "blocked" and stored[ids[0]].attempts == 1
    assert stored[ids[0]].last_error == "TelegramForbiddenError: Forbidden: bot was blocked by the user"
    assert stored[ids[1]].status == "sent"
    assert (stored[ids[2]].status, stored[ids[2]].attempts) == ("blocked", 0)
    assert not (await user_row(db, users[3001])).is_active
    assert (await user_row(db, users[3002])).is_active
    assert len([c for c in emu.calls("sendMessage") if c.params["chat_id"] == 3001]) == 1

    # Later notifications for them are settled without calling Telegram.
    [later] = await queue(db, clock, [(users[3001], "note", {"n": 4})])
    assert await sender.drain_once() == 1
    assert (await rows(db))[later].status == "blocked"
    assert len([c for c in emu.calls("sendMessage") if c.params["chat_id"] == 3001]) == 1


async def test_bad_request_fails_without_logging_the_text(
    emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    users = await add_users(db, emu, [3001], clock)
    stranger = await add_users(db, emu, [3002], clock, open_chat=False)  # never wrote: "chat not found"
    secret = "Ivan Petrov +79991234567"
    ids = await queue(
        db,
        clock,
        [(users[3001], "raw", {"html": f"<foo>{secret}</foo>"}), (stranger[3002], "note", {"n": secret})],
    )
    caplog.set_level(logging.DEBUG, logger="bot.outbox")
    assert await make_sender(bot, db, clock).drain_once() == 2

    stored = await rows(db)
    assert stored[ids[0]].status == "failed" and stored[ids[0]].attempts == 1
    assert stored[ids[0]].last_error is not None
    assert stored[ids[0]].last_error.startswith("TelegramBadRequest: Bad Request: can't parse entities")
    assert stored[ids[1]].status == "failed"
    assert stored[ids[1]].last_error == "TelegramBadRequest: Bad Request: chat not found"
    assert all(secret not in (r.last_error or "") for r in stored.values())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(str(i) in w.getMessage() for i, w in zip(ids, warnings, strict=True))
    assert all("raw" in w.getMessage() or "note" in w.getMessage() for w in warnings)  # the template is there
    assert any(r.levelno == logging.DEBUG and "attempt 1" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        message = record.getMessage()
        assert "Ivan" not in message and "+7999" not in message


async def test_gives_up_after_the_time_limit(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    users = await add_users(db, emu, [3001, 3002], clock)
    [stuck] = await queue(db, clock, [(users[3001], "note", {"n": 1})])
    emu.inject("sendMessage", kind="500", count=None, chat_id=3001)
    sender = make_sender(bot, db, clock, give_up_after=timedelta(hours=1))
    start = clock.now()

    await drain_all(sender, db, clock)

    row = (await rows(db))[stuck]
    assert row.status == "failed" and row.last_error == "gave up: TelegramServerError: Internal Server Error"
    assert clock.now() - start >= timedelta(hours=1)
    assert clock.now() - start < timedelta(hours=1, minutes=6)  # not later than one capped backoff
    assert row.attempts == len(emu.calls("sendMessage")) > 5
    # Old rows that never failed are still delivered: an outage delays, it does not drop.
    [late] = await queue(db, clock, [(users[3002], "note", {"n": 2})])
    clock.advance(hours=5)
    assert await sender.drain_once() == 1
    assert (await rows(db))[late].status == "sent"


# --- leases, restarts, two instances -------------------------------------------------------------------


class Crash(BaseException):
    """Stands for the process dying: nothing in the sender catches it."""


async def test_crash_after_claim_resends_after_the_lease(
    emu: BotAPIEmulator,
    db: Maker,
    bot: Bot,
    clock: ManualClock,
    engines: list[AsyncEngine],
    db_path: Path,
    bots: list[Bot],
) -> None:
    chats = [4001, 4002, 4003]
    users = await add_users(db, emu, chats, clock)
    ids = await queue(db, clock, [(users[chats[i % 3]], "note", {"n": f"n{i}"}) for i in range(10)])

    class CrashingRenderer(Renderer):
        async def __call__(self, *args: Any) -> Rendered | None:
            if len(self.calls) == 4:
                raise Crash  # the fifth row is claimed, then the process dies
            return await super().__call__(*args)

    first = make_sender(bot, db, clock, CrashingRenderer(), lease=timedelta(seconds=60))
    with pytest.raises(Crash):
        await first.drain_once()
    stored = await rows(db)
    leased = [i for i in ids if stored[i].locked_until is not None]
    assert len(leased) == 1 and stored[leased[0]].status == "pending"
    assert len([i for i in ids if stored[i].status == "sent"]) == 4

    # A new process: its own engine and bot. The leased row waits until its lease runs out.
    second = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock)
    assert await second.drain_once() == 5
    assert (await rows(db))[leased[0]].status == "pending"
    clock.advance(seconds=59)
    assert await second.drain_once() == 0
    clock.advance(seconds=1)
    assert await second.drain_once() == 1

    stored = await rows(db)
    assert all(stored[i].status == "sent" for i in ids)
    every = [t for chat in chats for t in texts(emu, chat)]
    assert sorted(every) == sorted(f"n{i} [ru]" for i in range(10))  # none lost, none twice


async def test_stop_then_a_new_instance_finishes(
    emu: BotAPIEmulator,
    db: Maker,
    bot: Bot,
    clock: ManualClock,
    engines: list[AsyncEngine],
    db_path: Path,
    bots: list[Bot],
) -> None:
    chats = [4001, 4002]
    users = await add_users(db, emu, chats, clock)
    ids = await queue(db, clock, [(users[chats[i % 2]], "note", {"n": f"n{i}"}) for i in range(20)])

    class HeldRenderer(Renderer):
        """Holds the fifth row until the test has asked the sender to stop: stopped mid-way, deterministically."""

        def __init__(self) -> None:
            super().__init__()
            self.reached, self.resume = asyncio.Event(), asyncio.Event()

        async def __call__(self, template: str, params: dict[str, Any], locale: str, user_id: int) -> Rendered | None:
            if len(self.calls) == 4:
                self.reached.set()
                await self.resume.wait()
            return await super().__call__(template, params, locale, user_id)

    render = HeldRenderer()
    first = OutboxSender(bot, db, clock, render, global_rate=20, per_chat_rate=100, per_chat_burst=100)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(render.reached.wait(), 5)
    stopping = asyncio.create_task(first.stop())
    await asyncio.sleep(0)  # stop() has asked; the row in flight goes on
    render.resume.set()
    await asyncio.wait_for(stopping, 2)
    await asyncio.wait_for(task, 1)
    await first.stop()  # idempotent
    assert first.idle

    stored = await rows(db)
    sent_before = [i for i in ids if stored[i].status == "sent"]
    assert 4 <= len(sent_before) < 20
    assert all(stored[i].locked_until is None for i in ids)  # the row in flight was finished, not abandoned
    assert len(emu.sent_messages()) == len(sent_before)
    assert await first.drain_once() == 0  # a stopped sender stays stopped

    second = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock)
    await drain_all(second, db, clock)
    every = [t for chat in chats for t in texts(emu, chat)]
    assert sorted(every) == sorted(f"n{i} [ru]" for i in range(20))
    assert len(emu.calls("sendMessage")) == 20


async def test_two_instances_draining_concurrently(
    emu: BotAPIEmulator, db: Maker, clock: ManualClock, engines: list[AsyncEngine], db_path: Path, bots: list[Bot]
) -> None:
    chats = [5001, 5002, 5003, 5004]
    users = await add_users(db, emu, chats, clock)
    ids = await queue(db, clock, [(users[chats[i % 4]], "note", {"n": f"n{i}"}) for i in range(40)])
    one = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock)
    two = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock)

    done = await asyncio.gather(one.drain_once(), two.drain_once())

    assert sum(done) == 40 and min(done) > 0, done  # both worked, and no row was settled twice
    assert len(emu.calls("sendMessage")) == 40
    every = [t for chat in chats for t in texts(emu, chat)]
    assert sorted(every) == sorted(f"n{i} [ru]" for i in range(40))
    stored = await rows(db)
    assert all(stored[i].status == "sent" and stored[i].attempts == 1 for i in ids)


async def test_claim_is_exclusive_until_the_lease_expires(db: Maker, emu: BotAPIEmulator, clock: ManualClock) -> None:
    users = await add_users(db, emu, [6001], clock)
    [row_id] = await queue(db, clock, [(users[6001], "note", {"n": 1})])
    lease = clock.now() + timedelta(seconds=60)
    async with db() as session, session.begin():
        claimed = await OutboxRepo(session).claim(row_id, clock.now(), lease)
    assert claimed is not None and claimed.chat_id == 6001 and claimed.locale == "ru" and claimed.user_active
    async with db() as session, session.begin():
        assert await OutboxRepo(session).claim(row_id, clock.now(), lease) is None
        assert await OutboxRepo(session).due(clock.now(), 10) == []
    async with db() as session, session.begin():
        assert await OutboxRepo(session).claim(row_id, lease, lease + timedelta(seconds=60)) is not None


# --- rate limits ------------------------------------------------------------------------------------------


async def test_per_chat_rate_limit(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    users = await add_users(db, emu, [7001, 7002], clock)
    await queue(db, clock, [(users[7001], "note", {"n": i}) for i in range(6)] + [(users[7002], "note", {"n": 9})])
    sender = OutboxSender(bot, db, clock, Renderer(), global_rate=1000, per_chat_rate=0.5, per_chat_burst=2)
    started, wall = clock.now(), time.monotonic()
    # A round ends when every row left waits for its chat (bulk rows could fill the wait); the next waits for it.
    sent = 0
    for _ in range(10):
        sent += await sender.drain_once()
    assert sent == 7
    assert clock.now() - started >= timedelta(seconds=7.5)  # 2 at once, then 4 more at 0.5/s, on the clock
    # The waits cost no real time: 8 s on the clock, far less on the wall even on a loaded machine.
    assert time.monotonic() - wall < 4
    stored = sorted((await rows(db)).values(), key=lambda r: r.id)
    times = [r.sent_at for r in stored if r.user_id == users[7001]]
    assert times[-1] - times[0] >= timedelta(seconds=7.5)
    # The other chat was not held up behind the busy one.
    other = next(r.sent_at for r in stored if r.user_id == users[7002])
    assert other - times[0] < timedelta(seconds=1)


async def test_global_rate_limit(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    chats = list(range(7101, 7111))
    users = await add_users(db, emu, chats, clock)
    await queue(db, clock, [(users[c], "note", {"n": c}) for c in chats])
    sender = OutboxSender(bot, db, clock, Renderer(), global_rate=2, per_chat_rate=1, per_chat_burst=3)
    started, wall = clock.now(), time.monotonic()
    assert await sender.drain_once() == 10
    assert clock.now() - started >= timedelta(seconds=4.5)  # 10 calls at 2/s, spread evenly, on the clock
    assert time.monotonic() - wall < 4  # on the clock, not the wall
    sent = sorted(r.sent_at for r in (await rows(db)).values())
    assert all(b - a >= timedelta(seconds=0.5) for a, b in pairwise(sent))


# --- run() and wake() --------------------------------------------------------------------------------------


async def test_run_sends_promptly_on_wake_and_stops(
    emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock
) -> None:
    users = await add_users(db, emu, [8001], clock)
    sender = make_sender(bot, db, clock, poll_interval=30.0)
    task = asyncio.create_task(sender.run())
    for _ in range(200):  # let it drain the empty table (both lanes) and start waiting, however busy the machine
        await asyncio.sleep(0.01)
        if sender.idle:
            break
    assert sender.idle

    await queue(db, clock, [(users[8001], "note", {"n": "woken"})])
    started = time.monotonic()
    sender.wake()
    message = await emu.user(8001).next_message(timeout=1.0)
    assert message.text == "woken [ru]"
    assert time.monotonic() - started < 1.0  # not the 30 s poll

    await asyncio.wait_for(sender.stop(), 1.0)
    await asyncio.wait_for(task, 1.0)
    assert task.done() and sender.idle


async def test_run_polls_without_wake(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    users = await add_users(db, emu, [8001], clock)
    sender = make_sender(bot, db, clock, poll_interval=0.1)
    task = asyncio.create_task(sender.run())
    try:
        await queue(db, clock, [(users[8001], "note", {"n": "polled"})])
        assert (await emu.user(8001).next_message(timeout=2.0)).text == "polled [ru]"
    finally:
        await asyncio.wait_for(sender.stop(), 1.0)
        await task


# --- lanes (issue 13) -------------------------------------------------------------------------------------


async def queue_bulk(db: Maker, clock: ManualClock, items: Iterable[tuple[int, str, dict[str, Any]]]) -> list[int]:
    """Rows of the bulk lane (as poll invitations are: no broadcast)."""
    async with db() as session, session.begin():
        repo = OutboxRepo(session)
        rows = [repo.add_raw(user_id, template, params, clock.now()) for user_id, template, params in items]
        for row in rows:
            row.lane = Lane.bulk
        await session.flush()
        return [row.id for row in rows]


async def test_personal_rows_go_before_bulk_rows_and_bulk_goes_in_small_rounds(
    emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock
) -> None:
    users = await add_users(db, emu, range(7001, 7031), clock)
    await queue_bulk(db, clock, [(users[7001 + i], "note", {"n": f"bulk{i}"}) for i in range(30)])
    sender = make_sender(bot, db, clock, global_rate=20.0)
    assert await sender.drain_once() == 10  # half a second's worth at 20/s
    await queue(db, clock, [(users[7030], "note", {"n": "personal"})])
    assert await sender.drain_once() == 1  # the personal row alone, before the rest of the bulk
    assert texts(emu, 7030) == ["personal [ru]"]
    await drain_all(sender, db, clock)
    assert texts(emu, 7030) == ["personal [ru]", "bulk29 [ru]"]


async def test_one_instance_sends_bulk_rows_at_a_time(
    emu: BotAPIEmulator, db: Maker, clock: ManualClock, engines: list[AsyncEngine], db_path: Path, bots: list[Bot]
) -> None:
    """Several instances together keep to the rate: only the holder of the bulk lease sends bulk rows; a clean stop
    hands it over at once, a dead holder's lease passes after bulk_lease."""
    users = await add_users(db, emu, range(7101, 7161), clock)
    await queue_bulk(db, clock, [(users[7101 + i], "note", {"n": f"b{i}"}) for i in range(60)])
    lease = timedelta(seconds=10)
    one = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock, bulk_lease=lease, global_rate=20.0)
    two = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock, bulk_lease=lease, global_rate=20.0)
    three = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock, bulk_lease=lease, global_rate=20.0)
    assert await one.drain_once() > 0
    assert await two.drain_once() == 0  # the lease is one's
    await queue(db, clock, [(users[7101], "note", {"n": "personal"})])
    assert await two.drain_once() == 1  # personal rows are anyone's
    await one.stop()  # a clean stop releases the lease
    assert await two.drain_once() > 0
    # two dies (no stop): three waits out its lease.
    assert await three.drain_once() == 0
    clock.advance(lease)
    assert await three.drain_once() > 0
    await drain_all(three, db, clock)
    assert len(emu.calls("sendMessage")) == 61
    assert all(row.status == "sent" for row in (await rows(db)).values())


async def test_a_late_call_is_made_up_for_within_the_burst(
    emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock
) -> None:
    """With a burst of 3 at 25/s, a sender that fell 3 calls behind (a slow commit, a busy loop) sends 3 at once, then
    1/rate apart again: the average is kept, and no second holds more than rate + 3 calls (under Telegram's 30)."""
    chats = list(range(7301, 7311))
    users = await add_users(db, emu, chats, clock)
    await queue(db, clock, [(users[c], "note", {"n": c}) for c in chats])
    sender = OutboxSender(bot, db, clock, Renderer(), global_rate=25, global_burst=3, per_chat_rate=1, per_chat_burst=3)
    clock.advance(seconds=1)  # idle, the bucket fills up to its burst
    started = clock.now()
    assert await sender.drain_once() == 10
    sent = sorted(r.sent_at for r in (await rows(db)).values())
    assert sent[2] - started < timedelta(milliseconds=5)  # the first 3 at once
    assert all(b - a >= timedelta(milliseconds=39) for a, b in pairwise(sent[2:]))  # then 1/rate apart
    assert sent[-1] - started >= timedelta(seconds=7 / 25)


async def test_a_busy_chat_does_not_hold_up_the_bulk_lane(emu: BotAPIEmulator, db: Maker, bot: Bot, clock: ManualClock) -> None:
    """Twenty notifications to one official go out one a second; the broadcast's items fill the waits instead of
    waiting twenty seconds behind them."""
    users = await add_users(db, emu, range(7401, 7431), clock)
    await queue(db, clock, [(users[7401], "note", {"n": f"p{i}"}) for i in range(20)])
    await queue_bulk(db, clock, [(users[7402 + i], "note", {"n": f"b{i}"}) for i in range(28)])
    sender = make_sender(bot, db, clock, global_rate=25.0, per_chat_rate=1.0, per_chat_burst=1)
    started = clock.now()
    await drain_all(sender, db, clock)
    stored = list((await rows(db)).values())
    bulk_done = max(r.sent_at for r in stored if r.user_id != users[7401])
    personal = sorted(r.sent_at for r in stored if r.user_id == users[7401])
    assert bulk_done - started < timedelta(seconds=3)  # not after the 20 s of the busy chat
    assert all(b - a >= timedelta(seconds=1) for a, b in pairwise(personal))  # one a second in that chat
    assert personal[-1] - started < timedelta(seconds=21)


async def test_flood_control_met_by_one_instance_holds_every_instance(
    emu: BotAPIEmulator, db: Maker, clock: ManualClock, engines: list[AsyncEngine], db_path: Path, bots: list[Bot]
) -> None:
    """Telegram's flood limit is per bot: after instance one meets a 429 with retry_after 60, instance two sends
    nothing either (personal or bulk) until it is over, and one keeps the bulk lease meanwhile."""
    users = await add_users(db, emu, range(7501, 7521), clock)
    await queue_bulk(db, clock, [(users[7501 + i], "note", {"n": f"b{i}"}) for i in range(20)])
    lease = timedelta(seconds=10)
    one = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock, bulk_lease=lease, global_rate=20.0)
    two = make_sender(new_bot(emu, bots), new_maker(engines, db_path), clock, bulk_lease=lease, global_rate=20.0)
    emu.inject("sendMessage", "429", count=1, retry_after=60)
    await one.drain_once()
    assert len(emu.calls("sendMessage", ok=True)) == 0
    await queue(db, clock, [(users[7501], "note", {"n": "personal"})])
    for _ in range(5):  # 50 s of the 60 s wait
        clock.advance(seconds=10)
        assert await one.drain_once() == 0
        assert await two.drain_once() == 0
    assert len(emu.calls("sendMessage", ok=True)) == 0
    clock.advance(seconds=11)
    await drain_all(one, db, clock)
    assert len(emu.calls("sendMessage", ok=True)) == 21


class TickingClock(ManualClock):
    """A clock that moves a microsecond at every reading, as a real one does between two statements."""

    def now(self) -> datetime:
        return self.advance(microseconds=1)


async def test_a_chats_messages_go_in_the_order_they_were_queued_while_it_waits(
    emu: BotAPIEmulator, db: Maker, bot: Bot
) -> None:
    """An answer and the request to rate it, queued in one transaction for a chat that was just written to: the
    answer first. (Found in the sandbox: each row's wait was read a moment later than the one before, so the later
    row looked sooner and overtook the earlier one.)"""
    clock = TickingClock()
    users = await add_users(db, emu, [7001], clock)
    sender = OutboxSender(bot, db, clock, Renderer(), global_rate=1000, per_chat_rate=1, per_chat_burst=1)
    await queue(db, clock, [(users[7001], "note", {"n": 0})])
    assert await sender.drain_once() == 1  # the chat's bucket is now empty
    await queue(db, clock, [(users[7001], "note", {"n": n}) for n in (1, 2, 3)])
    for _ in range(6):
        await sender.drain_once()
    assert [text.split(" ")[0] for text in texts(emu, 7001)] == ["0", "1", "2", "3"]
