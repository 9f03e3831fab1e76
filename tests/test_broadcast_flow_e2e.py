"""A broadcast the whole way, end to end: the editor composes it in the dialog, the scheduler's job starts it, the
residents get it in their language, the author pauses and resumes it from the progress message (which shows the
figures), and at the end gets the report, whose «Open the broadcast» opens its card."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from bot.callbacks import BroadcastAction, BroadcastCb
from bot.domain import BroadcastStatus, OutboxState
from storage.models import Broadcast, Outbox, User
from tests.conftest import Harness
from tests.test_broadcasts_e2e import ADMIN, admin_of, compose, only_broadcast, progress_messages
from tests.test_polls_e2e import person, step


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


async def run_job(harness: Harness) -> None:
    assert harness.app is not None and harness.app.scheduler is not None
    await harness.app.scheduler.get_job("broadcasts_start").func()  # starts what is due
    await harness.settle(timeout=30)
    await harness.app.scheduler.get_job("broadcasts").func()  # ends what is finished, edits the progress
    await harness.settle(timeout=30)


async def test_compose_send_pause_resume_report_and_card(harness: Harness) -> None:
    ru = [await person(harness, 3001 + i, "ru", "grozny") for i in range(3)]
    en = await person(harness, 3010, "en", "argun")
    admin = admin_of(harness)
    assert harness.app is not None
    async with harness.app.sessionmaker() as session:  # the author reads English
        await session.execute(update(User).where(User.tg_id == ADMIN).values(locale="en"))
        await session.commit()
    await compose(harness, admin, "<b>Воды не будет</b> до 18:00", others={"English": "<b>No water</b> until 18:00"})
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    [progress] = progress_messages(admin)

    # Paused before anything went out: the job starts it (recipients listed), but nothing is sent while paused.
    async with harness.app.sessionmaker() as session:
        await session.execute(update(Broadcast).where(Broadcast.id == row.id).values(status=BroadcastStatus.paused))
        await session.commit()
    await run_job(harness)
    assert not any(m.text and "Воды не будет" in m.text for r in ru for m in r.messages)
    assert "paused" in progress.text and "Left: 4." in progress.text
    await admin.click("▶️ Resume", message_id=progress.message_id)
    await harness.settle()
    assert "Broadcast № 1 goes on" in admin.callback_answers[-1]["text"]
    await harness.settle(timeout=30)
    await run_job(harness)

    for resident in ru:
        assert [m.text for m in resident.messages if m.text and "Воды" in m.text] == ["Воды не будет до 18:00"]
    assert en.messages[-1].text == "No water until 18:00"
    items = await harness.rows(Outbox, Outbox.broadcast_id == row.id)
    assert sorted(i.status for i in items) == [OutboxState.sent] * 4
    assert "finished" in progress.text and "Sent: 4 of 4." in progress.text and not progress.inline_keyboard
    report = admin.messages[-1]
    assert report.text.startswith(f"📣 Broadcast № {row.id} is finished") and "Delivered: 4." in report.text

    # A control forged on another message (here the report) is answered, and that message is left as it was.
    buttons = report.inline_keyboard
    await admin.press_callback(report.message_id, BroadcastCb(a=BroadcastAction.pause, id=row.id).pack())
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == f"Broadcast № {row.id} is done now; nothing was changed."
    assert admin.message(report.message_id).inline_keyboard == buttons

    # The report's «Open the broadcast»: the card, with the figures.
    await admin.click("Open the broadcast", message_id=report.message_id)
    await harness.settle()
    card = admin.last_message.text
    assert card.startswith(f"Broadcast № {row.id} (done)"), admin.dump()
    assert "Recipients: 4 counted at confirmation, 4 listed." in card
    assert "Delivered: 4 · blocked the bot: 0 · other errors: 0 · cancelled: 0 · waiting: 0" in card


async def test_the_report_opens_the_card_on_top_of_the_dialog_in_progress(harness: Harness) -> None:
    """«Open the broadcast» under a report, pressed while the author composes another broadcast: the card comes on
    top, and closing it returns to the composition where it was (texts kept)."""
    ru = await person(harness, 3001, "ru", "grozny")
    admin = admin_of(harness)
    assert harness.app is not None
    async with harness.app.sessionmaker() as session:  # the author reads English
        await session.execute(update(User).where(User.tg_id == ADMIN).values(locale="en"))
        await session.commit()
    await compose(harness, admin, "<b>Воды не будет</b> до 18:00")
    await step(harness, admin, "click", "🚀 Send now")
    row = await only_broadcast(harness)
    await run_job(harness)  # started: the item goes out
    await run_job(harness)  # finished: the report
    assert [m.text for m in ru.messages if m.text and "Воды" in m.text] == ["Воды не будет до 18:00"]
    report = admin.messages[-1]
    assert report.text.startswith(f"📣 Broadcast № {row.id} is finished"), admin.dump()

    # Another broadcast, half composed.
    await step(harness, admin, "text", "/broadcast")
    await step(harness, admin, "text", "Свет отключат в 12:00")
    assert "Texts: Русский ✅" in admin.last_message.text
    await admin.click("Open the broadcast", message_id=report.message_id)
    await harness.settle()
    card = admin.last_message
    assert card.text.startswith(f"Broadcast № {row.id} (done)"), admin.dump()
    await step(harness, admin, "click", "✖ Close")
    screen = admin.last_message
    assert "Texts: Русский ✅" in screen.text, admin.dump()
    # The composition goes on from there.
    await step(harness, admin, "click", "➡️ Next")
    assert "Attach a photo (up to 5 MB)" in admin.last_message.text, admin.dump()
