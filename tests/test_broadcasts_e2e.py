"""Broadcasts, the author's side, end to end through the emulator: an admin or editor composes a broadcast in the
dialog (texts per language, a file, a URL button, the audience, urgency), sees the preview exactly as residents will,
stores it to go now or at a time, and controls it from its progress message; the list and the cards. Bad input and
people without the role are refused. (Delivery itself is bot/services/broadcast_delivery.py and the outbox's.)"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from aiogram_dialog.utils import CB_SEP, remove_intent_id
from sqlalchemy import insert, update

from bot.callbacks import BroadcastAction, BroadcastCb, NewsAction, NewsCb
from bot.domain import BroadcastStatus, Lane, OutboxState
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import AuditEntry, Broadcast, NewsBlockOff, NewsDistrict, NewsPrefs, Outbox, User
from tests.conftest import Harness
from tests.test_polls_e2e import block_name, person, road_category, step
from tests.test_staff_e2e import district_id, join

ADMIN = 9000
TEXT = "<b>Внимание!</b> 3 декабря с 10:00 до 18:00 в Гудермесе не будет воды."
UNSUBSCRIBE_EN = "🔕 Unsubscribe from such news"


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


def admin_of(harness: Harness) -> EmulatedUser:
    return harness.emu.user(ADMIN, language_code="en")


async def compose(
    harness: Harness,
    author: EmulatedUser,
    text: str = TEXT,
    *,
    others: dict[str, str] | None = None,
    photo: bytes | None = None,
    too_big_photo: bytes | None = None,
    button: tuple[str, str] | None = None,
    filters: tuple[tuple[str, str], ...] = (),
    urgent: bool = False,
) -> None:
    """Through the dialog up to the preview, as an author does it."""
    await step(harness, author, "text", "/broadcast")
    await step(harness, author, "text", text)
    assert "Texts: Русский ✅" in author.last_message.text, author.dump()
    for name, other in (others or {}).items():
        await step(harness, author, "click", f"➕ Add a text in {name}")
        await step(harness, author, "text", other)
    await step(harness, author, "click", "➡️ Next")
    if too_big_photo is not None:
        await author.send_photo(content=too_big_photo)
        await harness.settle()
        assert (
            "The photo is over 5 MB: it goes to every recipient, so it must be light. Please send a smaller one."
            in author.last_message.text
        ), author.dump()
        assert "Attach a photo (up to 5 MB) or a document (up to 20 MB)?" in author.last_message.text  # still there
    if photo is not None:
        await author.send_photo(content=photo)
        await harness.settle()
    else:
        await step(harness, author, "click", "➡️ No file")
    if button is not None:
        await step(harness, author, "text", button[0])
        await step(harness, author, "text", button[1])
    else:
        await step(harness, author, "click", "➡️ No button")
    assert "Who gets it?" in author.last_message.text, author.dump()
    for screen, value in filters:
        await step(harness, author, "click", screen)
        await step(harness, author, "click", value)
        if screen == "🏘 Districts":
            await step(harness, author, "click", next(b for b in author.last_message.buttons if b.startswith("✅ Done")))
    await step(harness, author, "click", "➡️ Next")
    await step(harness, author, "click", "⚡ Yes, urgent" if urgent else "No, a normal one")
    assert "Preview" in author.last_message.text, author.dump()


def previews(author: EmulatedUser) -> list[BotMessage]:
    """The preview items sent to the author (their last button is «Unsubscribe»)."""
    return [m for m in author.messages if m.inline_keyboard and m.inline_keyboard[-1][0][1] == NewsCb(
        a=NewsAction.unsubscribe, b=0).pack()]


def progress_messages(author: EmulatedUser) -> list[BotMessage]:
    return [m for m in author.messages if (m.text or "").startswith("📣 Broadcast №")]


async def only_broadcast(harness: Harness) -> Broadcast:
    [row] = await harness.rows(Broadcast)
    return row


async def residents(harness: Harness) -> dict[str, EmulatedUser]:
    return {
        "ru_grozny": await person(harness, 2001, "ru", "grozny"),
        "en_argun": await person(harness, 2002, "en", "argun"),
        "ce_none": await person(harness, 2003, "ce"),
    }


# --- the whole way ------------------------------------------------------------------------------------------


async def test_compose_preview_and_confirm_store_one_broadcast(harness: Harness) -> None:
    await residents(harness)
    admin = admin_of(harness)
    # A photo over 5 MB is refused (it goes to every recipient) and the dialog waits for another file; 1 MB passes.
    too_big = b"\x89PNG" + b"\x00" * (5 * 1024 * 1024)
    photo = b"\x89PNG" + b"\x00" * (1024 * 1024)
    await compose(
        harness, admin, others={"English": "<b>Attention!</b> No water in Gudermes on 3 December, 10:00–18:00."},
        photo=photo, too_big_photo=too_big, button=("Details", "https://gudermes.example.ru/water"),
    )
    # The preview is the item exactly as a Russian-speaking resident gets it: the photo with the text as its caption
    # (tags rendered), the URL button and «Unsubscribe» in Russian; then the English one (every text goes through
    # Telegram once before anything can be stored).
    preview, english_first = previews(admin)
    assert english_first.text.startswith("Attention! No water in Gudermes")
    assert preview.kind == "photo"
    assert preview.text == "Внимание! 3 декабря с 10:00 до 18:00 в Гудермесе не будет воды."
    assert preview.entities[0]["type"] == "bold"
    assert preview.inline_keyboard[0] == [("Details", "https://gudermes.example.ru/water")]
    assert preview.inline_keyboard[1][0][0] == "🔕 Отписаться от таких новостей"
    screen = admin.last_message.text
    assert "Recipients: 3" in screen and "File: a photo" in screen and "Urgent: no" in screen
    assert "Texts: Русский, English" in screen
    # The English version, with its own «Unsubscribe».
    await step(harness, admin, "click", "👁 Preview in English")
    english = previews(admin)[-1]
    assert len(previews(admin)) == 3 and english.text.startswith("Attention! No water in Gudermes")
    assert english.inline_keyboard[1][0][0] == UNSUBSCRIBE_EN
    assert not await harness.rows(Broadcast)  # nothing stored before the confirmation

    dialog_message = admin.last_message
    now_data = next(data for row in dialog_message.inline_keyboard for text, data in row if text == "🚀 Send now")
    await step(harness, admin, "click", "🚀 Send now")
    assert admin.callback_answers[-1]["text"] == "Stored: the broadcast starts within a few seconds."
    row = await only_broadcast(harness)
    author = await harness.app.services.users.identify(ADMIN)  # type: ignore[union-attr]
    assert (row.status, row.urgent, row.planned, row.created_by) == ("scheduled", False, 3, author.id)
    assert row.start_at == harness.clock.now() and row.created_at == harness.clock.now()
    assert row.texts == {
        "ru": TEXT, "en": "<b>Attention!</b> No water in Gudermes on 3 December, 10:00–18:00.",
    }
    assert (row.media_kind, row.media_file_id) == ("photo", preview.file_id)
    assert (row.button_text, row.button_url) == ("Details", "https://gudermes.example.ru/water")
    assert row.audience == {"districts": [], "block_id": None, "language": None}
    assert len(row.draft_key) == 36
    # The progress message, stored for the delivery side to edit, with «Cancel» while it has not started.
    [progress] = progress_messages(admin)
    assert progress.text == f"📣 Broadcast № {row.id}: starting… Recipients: 3."
    assert progress.buttons == ["✖️ Cancel"]
    assert (row.progress_chat_id, row.progress_message_id) == (admin.chat_id, progress.message_id)
    assert f"Broadcast № {row.id} is stored." in dialog_message.text
    assert "🚀 Send now" not in dialog_message.buttons and "📋 Broadcasts" in dialog_message.buttons

    # A second press of the confirmation (a double tap, or a forged repeat): nothing new.
    await admin.press_callback(dialog_message.message_id, now_data)
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == f"Broadcast № {row.id} is already stored; nothing new was created."
    assert len(await harness.rows(Broadcast)) == 1
    assert len(progress_messages(admin)) == 1


async def test_a_scheduled_broadcast_is_cancelled_before_it_starts(harness: Harness) -> None:
    await residents(harness)
    admin = admin_of(harness)
    tz = harness.settings.tz
    await compose(harness, admin, "Дорога на Шали закрыта <i>завтра</i>.")
    await step(harness, admin, "click", "🕒 Schedule…")
    await step(harness, admin, "text", "32.13.2026 10:00")  # no such date: asked again
    assert "Please type a future date and time as DD.MM.YYYY HH:MM" in admin.last_message.text
    past = (harness.clock.now() - timedelta(hours=1)).astimezone(tz)
    await step(harness, admin, "text", f"{past:%d.%m.%Y %H:%M}")
    assert "Please type a future date and time as DD.MM.YYYY HH:MM" in admin.last_message.text
    assert not await harness.rows(Broadcast)
    at = (harness.clock.now() + timedelta(days=1)).astimezone(tz).replace(hour=11, minute=30)
    await step(harness, admin, "text", f"{at:%d.%m.%Y %H:%M}")
    row = await only_broadcast(harness)
    assert (row.status, row.start_at, row.planned) == ("scheduled", at, 3)
    [progress] = progress_messages(admin)
    assert progress.text == f"📣 Broadcast № {row.id}: scheduled for {at:%d.%m.%Y %H:%M}. Recipients now: 3."
    assert any(f"Broadcast № {row.id} is stored." in (m.text or "") for m in admin.messages)

    # «Cancel» asks first, in a message of its own (the progress message is edited every few seconds and would wipe
    # the question); «No» leaves it as it was.
    await step(harness, admin, "click", "✖️ Cancel")
    question = admin.last_message
    assert question.text == f"Cancel broadcast № {row.id}? What has not been sent yet will not be sent."
    assert question.buttons == ["✅ Yes, cancel it", "↩️ No, keep it"]
    await step(harness, admin, "click", "↩️ No, keep it")
    assert admin.message(question.message_id).text == f"Broadcast № {row.id} goes on as it was."
    assert admin.message(question.message_id).buttons == []
    assert admin.message(progress.message_id).buttons == ["✖️ Cancel"]
    assert (await only_broadcast(harness)).status == "scheduled"
    await step(harness, admin, "click", "✖️ Cancel")
    question = admin.last_message
    yes = question.inline_keyboard[0][0][1]
    await step(harness, admin, "click", "✅ Yes, cancel it")
    assert admin.callback_answers[-1]["text"] == f"Broadcast № {row.id} is cancelled."
    row = await only_broadcast(harness)
    assert (row.status, row.finished_at, row.started_at) == ("cancelled", harness.clock.now(), None)
    assert admin.message(question.message_id).text == f"Broadcast № {row.id} is cancelled."
    progress = admin.message(progress.message_id)
    assert progress.text == f"📣 Broadcast № {row.id}: ✖️ cancelled\nCancelled before it started: nothing was sent."
    assert progress.buttons == []
    # Nothing was sent, and no report (nothing started).
    assert await harness.rows(Outbox, Outbox.template.startswith("broadcast")) == []
    # A stale press of «Yes» (a second tap): said, nothing changes.
    await admin.press_callback(question.message_id, yes)
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == f"Broadcast № {row.id} is cancelled now; nothing was changed."
    assert (await only_broadcast(harness)).finished_at == row.finished_at


async def start(harness: Harness, broadcast_id: int) -> None:
    """What the delivery side does when a broadcast's time comes (not this part's code): it is running."""
    async with await harness.session() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(status=BroadcastStatus.running, started_at=harness.clock.now())
        )
        await session.commit()


async def test_pause_resume_and_cancel_a_running_broadcast(harness: Harness) -> None:
    await residents(harness)
    admin = admin_of(harness)
    editor = await join(harness, 3100, "editor")
    await compose(harness, admin)
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    [progress] = progress_messages(admin)
    await start(harness, row.id)

    async def press(user: EmulatedUser, action: BroadcastAction) -> str:
        await user.press_callback(progress.message_id if user is admin else 1, BroadcastCb(a=action, id=row.id).pack())
        await harness.settle()
        return str(user.callback_answers[-1]["text"])

    assert await press(admin, BroadcastAction.pause) == f"Broadcast № {row.id} is paused."
    assert (await only_broadcast(harness)).status == "paused"
    assert admin.message(progress.message_id).buttons == ["▶️ Resume", "✖️ Cancel"]
    # Stale presses change nothing and say why: pausing a paused one.
    assert await press(admin, BroadcastAction.pause) == f"Broadcast № {row.id} is paused now; nothing was changed."
    assert await press(admin, BroadcastAction.resume) == f"Broadcast № {row.id} goes on."
    assert (await only_broadcast(harness)).status == "running"
    assert admin.message(progress.message_id).buttons == ["⏸ Pause", "✖️ Cancel"]
    assert await press(admin, BroadcastAction.resume) == f"Broadcast № {row.id} is sending now; nothing was changed."
    # Any editor may control it (the ЦУР works in shifts), not only its author.
    assert await press(editor, BroadcastAction.pause) == f"Broadcast № {row.id} is paused."
    assert (await only_broadcast(harness)).status == "paused"

    # Two items still waiting, one delivered: cancelling cancels the waiting ones and queues the author's report.
    users = {u.tg_id: u.id for u in await harness.rows(User)}
    async with await harness.session() as session:
        for tg_id, state in ((2001, OutboxState.sent), (2002, OutboxState.pending), (2003, OutboxState.pending)):
            await session.execute(insert(Outbox).values(
                user_id=users[tg_id], template="broadcast", params={"broadcast_id": row.id}, status=state,
                created_at=harness.clock.now(), next_attempt_at=harness.clock.now() + timedelta(days=1), attempts=0,
                lane=int(Lane.bulk), broadcast_id=row.id, dedupe_key=f"broadcast:{row.id}:{users[tg_id]}",
            ))
        await session.commit()
    await step(harness, admin, "click", "✖️ Cancel")
    await step(harness, admin, "click", "✅ Yes, cancel it")
    row = await only_broadcast(harness)
    assert row.status == "cancelled"
    items = await harness.rows(Outbox, Outbox.broadcast_id == row.id)
    assert sorted(i.status for i in items) == ["cancelled", "cancelled", "sent"]
    [report] = await harness.rows(Outbox, Outbox.template == "broadcast_report")
    assert report.user_id == row.created_by
    assert admin.message(progress.message_id).buttons == []
    assert await press(admin, BroadcastAction.resume) == f"Broadcast № {row.id} is cancelled now; nothing was changed."
    audit = [a.action for a in await harness.rows(AuditEntry)]
    assert audit.count("broadcast_pause") == 2 and "broadcast_resume" in audit and "broadcast_cancel" in audit


async def test_quiet_hours_refuse_a_normal_broadcast_and_let_an_urgent_one_through(harness: Harness) -> None:
    await residents(harness)
    admin = admin_of(harness)
    tz = harness.settings.tz
    night = datetime.combine(harness.clock.now().astimezone(tz).date(), time(23, 30), tzinfo=tz)
    morning = datetime.combine(night.date() + timedelta(days=1), time(9, 0), tzinfo=tz)
    harness.clock.set(night)

    # «Send now» at night: refused with the reason, offering the end of the quiet hours or urgency.
    await compose(harness, admin, "Плановое отключение света.")
    await step(harness, admin, "click", "🚀 Send now")
    said = (
        f"Quiet hours (21:00–09:00): residents are not disturbed now. Schedule it for {morning:%d.%m.%Y %H:%M}, "
        "or mark it urgent if it cannot wait."
    )
    assert admin.callback_answers[-1] == {**admin.callback_answers[-1], "text": said, "show_alert": True}
    assert said in admin.last_message.text
    assert not await harness.rows(Broadcast)
    assert f"🕘 Send at {morning:%d.%m.%Y %H:%M}" in admin.last_message.buttons
    assert "⚡ Send now as urgent" in admin.last_message.buttons
    await step(harness, admin, "click", f"🕘 Send at {morning:%d.%m.%Y %H:%M}")
    row = await only_broadcast(harness)
    assert (row.status, row.start_at, row.urgent) == ("scheduled", morning, False)

    # A chosen time inside the quiet hours: refused, the same step waits for another time.
    await compose(harness, admin, "Плановое отключение газа.")
    await step(harness, admin, "click", "🕒 Schedule…")
    at_night = morning + timedelta(days=1, hours=-7)  # 02:00
    await step(harness, admin, "text", f"{at_night:%d.%m.%Y %H:%M}")
    assert (
        f"{at_night:%d.%m.%Y %H:%M} is within the quiet hours (21:00–09:00), when residents are not disturbed. "
        "Please choose another time." in admin.last_message.text
    )
    assert len(await harness.rows(Broadcast)) == 1
    later = morning + timedelta(days=1, hours=1)
    await step(harness, admin, "text", f"{later:%d.%m.%Y %H:%M}")
    assert [b.start_at for b in await harness.rows(Broadcast)] == [morning, later]

    # Refused «now», then «send now as urgent»: stored at once, urgent.
    await compose(harness, admin, "Прорыв водопровода!")
    await step(harness, admin, "click", "🚀 Send now")
    await step(harness, admin, "click", "⚡ Send now as urgent")
    third = (await harness.rows(Broadcast))[-1]
    assert (third.urgent, third.start_at) == (True, night)
    # Urgent from the start: «send now» and a time at night are both taken.
    await compose(harness, admin, "Штормовое предупреждение!", urgent=True)
    await step(harness, admin, "click", "🚀 Send now")
    fourth = (await harness.rows(Broadcast))[-1]
    assert (fourth.urgent, fourth.start_at, fourth.status) == (True, night, "scheduled")
    await compose(harness, admin, "Штормовое предупреждение, ночь.", urgent=True)
    await step(harness, admin, "click", "🕒 Schedule…")
    await step(harness, admin, "text", f"{at_night:%d.%m.%Y %H:%M}")
    assert (await harness.rows(Broadcast))[-1].start_at == at_night
    assert len(await harness.rows(Broadcast)) == 5


async def test_every_audience_filter_shows_its_count(harness: Harness) -> None:
    roads = road_category(harness)
    await person(harness, 3001, "ru", "grozny")
    await person(harness, 3002, "en", "argun", roads)
    await person(harness, 3003, "ce")
    await person(harness, 3004, "en", "grozny", roads)
    chose_argun = await person(harness, 3005, "ru", "grozny")  # filed in Grozny, chose Argun's news
    stopped = await person(harness, 3006, "ru", "grozny")  # stopped news altogether
    no_roads = await person(harness, 3007, "en", "argun")  # turned off the roads topic
    ids = {u.tg_id: u.id for u in await harness.rows(User)}
    roads_block = next(b.id for b in harness.app.services.directory.blocks() if b.code == "roads")  # type: ignore[union-attr]
    now = harness.clock.now()
    async with await harness.session() as session:
        session.add(NewsPrefs(user_id=ids[chose_argun.id], stopped=False, districts_chosen=True, updated_at=now))
        session.add(NewsDistrict(user_id=ids[chose_argun.id], district_id=district_id(harness, "argun")))
        session.add(NewsPrefs(user_id=ids[stopped.id], stopped=True, districts_chosen=False, updated_at=now))
        session.add(NewsBlockOff(user_id=ids[no_roads.id], block_id=roads_block))
        await session.commit()
    admin = admin_of(harness)
    await step(harness, admin, "text", "/broadcast")
    await step(harness, admin, "text", "Ремонт дорог.")
    await step(harness, admin, "click", "➡️ Next")
    await step(harness, admin, "click", "➡️ No file")
    await step(harness, admin, "click", "➡️ No button")

    def count() -> str:
        text = admin.last_message.text
        return text[text.index("Recipients:"):]

    assert count() == "Recipients: 6"  # all but the one who stopped news
    await step(harness, admin, "click", "🏘 Districts")
    await step(harness, admin, "click", "Argun")
    await step(harness, admin, "click", "✅ Done (1 chosen)")
    assert count() == "Recipients: 3"  # argun_en, no_roads, and the one who chose Argun
    assert "Districts: Argun" in admin.last_message.text
    await step(harness, admin, "click", "🗂 Topic")
    await step(harness, admin, "click", block_name(harness, "roads"))
    assert count() == "Recipients: 2"  # no_roads turned the topic off
    await step(harness, admin, "click", "🌐 Language")
    await step(harness, admin, "click", "English")
    assert count() == "Recipients: 1"  # argun_en
    await step(harness, admin, "click", "🏘 Districts")
    await step(harness, admin, "click", "Grozny")
    await step(harness, admin, "click", "✅ Done (2 chosen)")
    assert count() == "Recipients: 2"  # + grozny_en
    await step(harness, admin, "click", "➡️ Next")
    await step(harness, admin, "click", "No, a normal one")
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    assert row.audience == {
        "districts": sorted([district_id(harness, "argun"), district_id(harness, "grozny")]),
        "block_id": roads_block,
        "language": "en",
    }
    assert row.planned == 2
    # Filters one by one from everyone: the language alone, and «everyone» again.
    await step(harness, admin, "text", "/broadcast")
    await step(harness, admin, "text", "Только по-русски.")
    await step(harness, admin, "click", "➡️ Next")
    await step(harness, admin, "click", "➡️ No file")
    await step(harness, admin, "click", "➡️ No button")
    await step(harness, admin, "click", "🌐 Language")
    await step(harness, admin, "click", "Русский")
    assert count() == "Recipients: 2"  # grozny_ru, chose_argun
    await step(harness, admin, "click", "🌐 Language")
    await step(harness, admin, "click", "Нохчийн")
    assert count() == "Recipients: 1"
    await step(harness, admin, "click", "♻️ Everyone who consented")
    assert count() == "Recipients: 6"


async def test_an_audience_of_nobody_is_refused(harness: Harness) -> None:
    await person(harness, 3201, "ru", "grozny")
    admin = admin_of(harness)
    await step(harness, admin, "text", "/broadcast")
    await step(harness, admin, "text", "Никому.")
    await step(harness, admin, "click", "➡️ Next")
    await step(harness, admin, "click", "➡️ No file")
    await step(harness, admin, "click", "➡️ No button")
    await step(harness, admin, "click", "🌐 Language")
    await step(harness, admin, "click", "English")
    assert "Recipients: 0" in admin.last_message.text
    await step(harness, admin, "click", "➡️ Next")
    assert admin.callback_answers[-1]["text"] == (
        "Nobody is in this audience: the broadcast would reach no one. Please change the filters."
    )
    assert "Who gets it?" in admin.last_message.text


# --- the list and the cards ---------------------------------------------------------------------------------


async def test_the_list_and_a_card_with_its_report(harness: Harness) -> None:
    await residents(harness)
    admin = admin_of(harness)
    long_text = "<b>Новая услуга</b> &lt;МФЦ&gt; " + "очень длинный текст " * 20
    await compose(harness, admin, long_text, filters=(("🏘 Districts", "Grozny"),))
    await step(harness, admin, "click", "🚀 Send now")
    await compose(harness, admin, "Второе сообщение.")
    await step(harness, admin, "click", "🕒 Schedule…")
    at = (harness.clock.now() + timedelta(days=2)).astimezone(harness.settings.tz).replace(hour=12, minute=0)
    await step(harness, admin, "text", f"{at:%d.%m.%Y %H:%M}")
    first, second = await harness.rows(Broadcast)
    await start(harness, first.id)
    users = {u.tg_id: u.id for u in await harness.rows(User)}
    async with await harness.session() as session:
        for n, (tg_id, state, lost) in enumerate((
            (2001, OutboxState.sent, 1), (2002, OutboxState.sent, 0), (2003, OutboxState.blocked, 0),
        )):
            await session.execute(insert(Outbox).values(
                user_id=users[tg_id], template="broadcast", params={"broadcast_id": first.id}, status=state,
                created_at=harness.clock.now(), next_attempt_at=harness.clock.now(), attempts=1, lost_leases=lost,
                lane=int(Lane.bulk), broadcast_id=first.id, dedupe_key=f"broadcast:{first.id}:{n}",
            ))
        await session.execute(update(Broadcast).where(Broadcast.id == first.id).values(recipients=3, listed=True))
        await session.commit()

    # From the staff menu: the newest first.
    await step(harness, admin, "text", "/staff")
    await step(harness, admin, "click", "📣 Broadcasts")
    screen = admin.last_message
    assert "Broadcasts: 2, the newest first." in screen.text
    rows = [b for b in screen.buttons if b.startswith("№ ")]
    assert rows[0].startswith(f"№ {second.id} · Второе сообщение.") and "scheduled" in rows[0]
    assert rows[1].startswith(f"№ {first.id} · Новая услуга <МФЦ>") and "sending" in rows[1]
    assert "<b>" not in rows[1]
    await step(harness, admin, "click", rows[1])
    card = admin.last_message.text
    assert f"Broadcast № {first.id} (sending)" in card
    shown = "Новая услуга <МФЦ> " + "очень длинный текст " * 20
    assert shown[:200].rstrip() + "…" in card and shown[:201] not in card  # the visible text, cut at 200
    assert "Districts: Grozny" in card and "Topic: any" in card and "Language: any" in card
    assert "Recipients: 1 counted at confirmation, 3 listed." in card
    assert "Delivered: 2 · blocked the bot: 1 · other errors: 0 · cancelled: 0 · waiting: 0" in card
    assert "Possibly received twice (a restart while sending): 1" in card
    assert "<МФЦ>" in card  # shown as text: the card escaped it
    # The card controls the broadcast too (for when its progress message is out of sight).
    assert admin.last_message.buttons[:2] == ["⏸ Pause", "✖️ Cancel"]
    await step(harness, admin, "click", "⏸ Pause")
    assert admin.callback_answers[-1]["text"] == f"Broadcast № {first.id} is paused."
    assert f"Broadcast № {first.id} (paused)" in admin.last_message.text
    assert admin.last_message.buttons[:2] == ["▶️ Resume", "✖️ Cancel"]
    await step(harness, admin, "click", "▶️ Resume")
    assert (await harness.rows(Broadcast, Broadcast.id == first.id))[0].status == "running"
    await step(harness, admin, "click", "⬅️ Back")
    await step(harness, admin, "click", next(b for b in admin.last_message.buttons if b.startswith(f"№ {second.id}")))
    card = admin.last_message.text
    assert f"Broadcast № {second.id} (scheduled)" in card and f"Starts: {at:%d.%m.%Y %H:%M}" in card
    assert "Delivered: 0" in card and "Possibly received twice" not in card
    assert "⏸ Pause" not in admin.last_message.buttons
    await step(harness, admin, "click", "✖️ Cancel")
    assert admin.last_message.text == f"Cancel broadcast № {second.id}? Press «Yes» to confirm."
    await step(harness, admin, "click", "↩️ No, keep it")
    assert (await harness.rows(Broadcast, Broadcast.id == second.id))[0].status == "scheduled"
    await step(harness, admin, "click", "✖️ Cancel")
    await step(harness, admin, "click", "✅ Yes, cancel it")
    assert admin.callback_answers[-1]["text"] == f"Broadcast № {second.id} is cancelled."
    assert f"Broadcast № {second.id} (cancelled)" in admin.last_message.text
    assert "✖️ Cancel" not in admin.last_message.buttons
    assert (await harness.rows(Broadcast, Broadcast.id == second.id))[0].status == "cancelled"
    # A forged id in the list's picker: refused, nothing shown.
    await step(harness, admin, "click", "⬅️ Back")
    screen = admin.last_message
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    await admin.press_callback(screen.message_id, f"{intent}{CB_SEP}broadcast:9999")
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "This option is no longer available."
    # /broadcasts opens the same list.
    await step(harness, admin, "text", "/broadcasts")
    assert "Broadcasts: 2, the newest first." in admin.last_message.text


# --- bad input and people without the role -----------------------------------------------------------------


async def refusals_audited(harness: Harness, tg_id: int) -> list[str]:
    actor = await harness.app.services.users.identify(tg_id)  # type: ignore[union-attr]
    entries = await harness.rows(AuditEntry, AuditEntry.actor_id == actor.id, AuditEntry.action == "refused")
    return [str(e.details.get("refused")) for e in entries]


async def test_people_without_the_role_are_refused_and_audited(harness: Harness) -> None:
    resident = await person(harness, 4001, "en", "grozny")
    admin = admin_of(harness)
    await compose(harness, admin)
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    [progress] = progress_messages(admin)
    await start(harness, row.id)
    agency = next(iter(a.name("en") for a in harness.app.services.directory.agencies()))  # type: ignore[union-attr]
    official = await join(harness, 4100, "official", agency)
    analyst = await join(harness, 4200, "analyst")
    coordinator = await join(harness, 4300, "RMC coordinator")

    for user in (resident, official, analyst, coordinator):
        await step(harness, user, "text", "/broadcast")
        assert user.last_message.text == "This is not available to you."
        await step(harness, user, "text", "/broadcasts")
        assert user.last_message.text == "This is not available to you."
        # A forged press of the progress message's buttons: refused, nothing moves.
        for action in (BroadcastAction.pause, BroadcastAction.cancel, BroadcastAction.cancel_yes):
            await user.press_callback(user.last_message.message_id, BroadcastCb(a=action, id=row.id).pack())
            await harness.settle()
            assert user.callback_answers[-1]["text"] == "This is not available to you."
        assert {"broadcast_compose", "broadcast_list", "broadcast_pause", "broadcast_cancel"} <= set(
            await refusals_audited(harness, user.id)
        )
    assert (await only_broadcast(harness)).status == "running"
    assert admin.message(progress.message_id).buttons == ["✖️ Cancel"]  # untouched
    # Staff without the role have no «📣 Broadcasts» in their menu; a forged dialog press is refused.
    await step(harness, analyst, "text", "/staff")
    assert "📣 Broadcasts" not in analyst.last_message.buttons and "📊 Polls" in analyst.last_message.buttons
    menu = analyst.last_message
    intent, _data = remove_intent_id(menu.inline_keyboard[0][0][1] or "")
    await analyst.press_callback(menu.message_id, f"{intent}{CB_SEP}broadcasts")
    await harness.settle()
    assert "Broadcasts:" not in analyst.last_message.text
    # A forged broadcast id in a control, even by an admin.
    await admin.press_callback(progress.message_id, BroadcastCb(a=BroadcastAction.pause, id=9999).pack())
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "This option is no longer available."


async def test_bad_texts_are_refused_with_what_and_where(harness: Harness) -> None:
    await residents(harness)
    admin = admin_of(harness)
    await step(harness, admin, "text", "/broadcast")
    prompt = admin.last_message.text
    assert "You may use <b>bold</b>, <i>italic</i>" in prompt  # shown as typed, not parsed

    cases = [
        ("Внимание!\n    <b>Отключение воды", "Unclosed tag <b> opened at line 2, column 5."),
        ("<b><i>Текст</b></i>", "The closing tag </b> at line 1, column 12 comes before </i> of the tag <i> opened at line 1, column 4: close the inner tag first."),
        ("Текст <font color=red>красный</font>", "The tag <font> at line 1, column 7 is not supported by Telegram."),
        ('<a href="javascript:alert(1)">ссылка</a>', "The attribute «href» of <a> at line 1, column 1 has a value Telegram does not accept."),
        ("<span>спойлер</span>", "The tag <span> at line 1, column 1 needs the attribute «class»."),
        ('<b onclick="x">жирный</b>', "The attribute «onclick» of <b> at line 1, column 1 is not allowed."),
        ("Вода &nbsp; и свет", "«&nbsp;» at line 1, column 6 is not an entity Telegram knows: write &amp; for the sign &."),
        ("Цена < 100", "The sign < at line 1, column 6 starts no tag: write &lt; for the sign, or complete the tag."),
        ("Текст</b>", "The closing tag </b> at line 1, column 6 has no opening tag."),
        ("<b> </b>", "The text is empty. Please type the text of the broadcast."),
        ("я" * 4097, "Too long: 4097 characters, at most 4096."),
    ]
    for typed, said in cases:
        await step(harness, admin, "text", typed)
        assert said in admin.last_message.text, (typed, admin.last_message.text)
        assert "Type the text in Russian" in admin.last_message.text  # the same step, asked again
    await admin.send_sticker()
    await harness.settle()
    assert "Please type the text, or /cancel." in admin.last_message.text
    # 4096 visible characters with tags around them: fits.
    await step(harness, admin, "text", "<b>" + "я" * 4096 + "</b>")
    assert "Texts: Русский ✅" in admin.last_message.text
    assert not await harness.rows(Broadcast)

    # With a file the text is a caption: 4096 characters are too many.
    await step(harness, admin, "click", "➡️ Next")
    await admin.send_photo()
    await harness.settle()
    assert (
        "With a file the text is its caption, at most 1024 characters: the text in Russian is longer. "
        "Please shorten it first, or send no file." in admin.last_message.text
    )
    await step(harness, admin, "click", "⬅️ Back")
    await step(harness, admin, "click", "⬅️ Back")
    await step(harness, admin, "text", "Короткий текст.")
    await step(harness, admin, "click", "➕ Add a text in English")
    await step(harness, admin, "text", "<i>English")
    assert "Unclosed tag <i> opened at line 1, column 1." in admin.last_message.text
    await step(harness, admin, "text", "e" * 2000)  # fine without a file...
    await step(harness, admin, "click", "➡️ Next")
    await admin.send_photo()
    await harness.settle()
    assert "the text in English is longer" in admin.last_message.text, admin.dump()  # ...too long for a caption
    await step(harness, admin, "click", "⬅️ Back")
    await step(harness, admin, "click", "✏️ Replace the text in English")
    await step(harness, admin, "text", "<b>English</b> text.")
    await step(harness, admin, "click", "➡️ Next")

    # Files: a video, a sticker, an album, a photo over 5 MB, a document over 20 MB are refused; text too.
    refused_kind = "Only one photo or one document can be attached (no video, sticker, voice or album)."
    await admin.send_video()
    await harness.settle()
    assert refused_kind in admin.last_message.text
    await admin.send_sticker()
    await harness.settle()
    assert refused_kind in admin.last_message.text
    await admin.send_album(["photo", "photo"])
    await harness.settle()
    assert refused_kind in admin.last_message.text
    await admin.send_photo(content=b"\x00" * (5 * 1024 * 1024 + 1))
    await harness.settle()
    assert "The photo is over 5 MB: it goes to every recipient" in admin.last_message.text
    await admin.send_document("plan.pdf", file_size=25 * 1024 * 1024)
    await harness.settle()
    assert "The document is over Telegram's limit of 20 MB." in admin.last_message.text
    await step(harness, admin, "text", "a photo")
    assert "Please send a photo or a document, or press «➡️ No file»." in admin.last_message.text
    await admin.send_document("plan.pdf", file_size=19 * 1024 * 1024)
    await harness.settle()
    assert "Add a link button" in admin.last_message.text

    # The button: a label too long, links that are not http(s) with a host.
    await step(harness, admin, "text", "x" * 65)
    assert "The button's label must be 1 to 64 characters." in admin.last_message.text
    await step(harness, admin, "text", "Карта")
    for url in ("ftp://example.org/map", "https://", "example.org", "https://exa mple.org", "https://" + "a" * 510 + ".ru"):
        await step(harness, admin, "text", url)
        assert "Please type a link that starts with https:// or http://" in admin.last_message.text, url
    await step(harness, admin, "text", "https://карта.гудермес.рф/план?a=1&b=2")

    # A forged district id in the audience picker: refused, nothing chosen.
    await step(harness, admin, "click", "🏘 Districts")
    screen = admin.last_message
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    await admin.press_callback(screen.message_id, f"{intent}{CB_SEP}district:99999")
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "This option is no longer available."
    assert "✅ Done (0 chosen)" in admin.last_message.buttons
    await step(harness, admin, "click", "⬅️ Back")
    await step(harness, admin, "click", "➡️ Next")
    await step(harness, admin, "click", "No, a normal one")
    preview, english = previews(admin)
    assert preview.kind == "document" and preview.text == "Короткий текст."
    assert english.kind == "document" and english.text == "English text."
    assert preview.inline_keyboard[0] == [("Карта", "https://карта.гудермес.рф/план?a=1&b=2")]
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    assert (row.media_kind, row.button_url) == ("document", "https://карта.гудермес.рф/план?a=1&b=2")
    assert row.texts == {"ru": "Короткий текст.", "en": "<b>English</b> text."}


async def test_a_text_telegram_refuses_at_the_preview_is_named_and_nothing_is_stored(harness: Harness) -> None:
    """Defence in depth: the preview step sends every language's preview; should Telegram refuse one (whatever the
    check let through), the author is told which text and Telegram's reason, and cannot store the broadcast."""
    await residents(harness)
    admin = admin_of(harness)
    await step(harness, admin, "text", "/broadcast")
    await step(harness, admin, "text", "<b>Внимание!</b> Воды не будет.")
    await step(harness, admin, "click", "➕ Add a text in English")
    await step(harness, admin, "text", "<b>Attention!</b> No water.")
    for label in ("➡️ Next", "➡️ No file", "➡️ No button", "➡️ Next"):
        await step(harness, admin, "click", label)
    # The Russian preview goes through; Telegram refuses the English one.
    harness.emu.inject("sendMessage", "delay", count=1, delay=0.0, chat_id=admin.chat_id)
    harness.emu.inject(
        "sendMessage", "error", count=1, chat_id=admin.chat_id,
        description="Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0",
    )
    await step(harness, admin, "click", "No, a normal one")
    [russian] = previews(admin)
    assert russian.text == "Внимание! Воды не будет."
    screen = admin.last_message
    assert (
        "Telegram refused the text in English: «Bad Request: can't parse entities: Unsupported start tag \"x\" at "
        "byte offset 0». Please correct it; nothing was stored." in screen.text
    ), admin.dump()
    assert "Is it urgent?" in screen.text and "🚀 Send now" not in screen.buttons  # still the step before
    assert not await harness.rows(Broadcast)
    assert not any("Something went wrong" in (m.text or "") for m in admin.messages)  # not the generic apology

    # Once Telegram takes both, the preview screen, and the broadcast can be stored.
    await step(harness, admin, "click", "No, a normal one")
    assert [m.text for m in previews(admin)[1:]] == ["Внимание! Воды не будет.", "Attention! No water."]
    assert "Recipients: 3" in admin.last_message.text
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    assert row.texts == {"ru": "<b>Внимание!</b> Воды не будет.", "en": "<b>Attention!</b> No water."}


async def test_a_progress_message_that_failed_is_posted_by_the_next_send_now(harness: Harness) -> None:
    """The broadcast was stored, but posting its progress message failed (Telegram answered an error): the next
    «Send now» finds it stored, and posts and attaches the progress message instead of only saying so."""
    await residents(harness)
    admin = admin_of(harness)
    await compose(harness, admin)
    screen = admin.last_message
    harness.emu.inject(
        "sendMessage", "error", count=1, chat_id=admin.chat_id, description="Bad Request: message is too long"
    )
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    assert row.progress_message_id is None and not progress_messages(admin)

    await admin.click("🚀 Send now", message_id=screen.message_id)
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "Stored: the broadcast starts within a few seconds.", admin.dump()
    [progress] = progress_messages(admin)
    assert progress.text == f"📣 Broadcast № {row.id}: starting… Recipients: 3."
    row = await only_broadcast(harness)
    assert (row.progress_chat_id, row.progress_message_id) == (admin.chat_id, progress.message_id)
    assert f"Broadcast № {row.id} is stored." in admin.message(screen.message_id).text
    assert len(await harness.rows(Broadcast)) == 1
