"""The resident's journey end to end: the real bot polling the emulator, a person acting through it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from storage.models import Appeal, Attachment, Consent, FsmRecord, StatusHistory, User
from tests.conftest import Harness


async def english_resident(harness: Harness, tg_id: int = 1001, **kwargs: object):
    user = harness.emu.user(tg_id, first_name="Test", language_code="en", **kwargs)
    await user.send_text("/start")
    await harness.settle()
    await user.click("✅ English")
    await harness.settle()
    await user.click("✅ I agree")
    await harness.settle()
    return user


async def begin_appeal(harness: Harness, user, block: str) -> None:
    """/new, a topic, its first subcategory: the dialog waits for the description."""
    await user.send_text("/new")
    await harness.settle()
    await user.click(block)
    await harness.settle()
    await user.click(user.last_message.inline_keyboard[0][0][0])
    await harness.settle()


async def fill_until_preview(harness: Harness, user, text: str = "No water in our building for three days") -> None:
    """The shortest complete path: a сообщение with a typed address and no files."""
    await user.send_text("📝 File an appeal")
    await harness.settle()
    await user.click("Housing, utilities and waste")
    await harness.settle()
    category = user.last_message.inline_keyboard[0][0][0]
    await user.click(category)
    await harness.settle()
    await describe_until_preview(harness, user, text)


async def describe_until_preview(harness: Harness, user, text: str) -> None:
    """From the description step: the text, no files, a typed address in Grozny, a сообщение."""
    await user.send_text(text)
    await harness.settle()
    await user.click("⏭ Skip")
    await harness.settle()
    await place_until_preview(harness, user)


async def place_until_preview(harness: Harness, user) -> None:
    """From the place step: a typed address in Grozny, a сообщение."""
    await user.send_text("Grozny, Mira street 12")
    await harness.settle()
    await user.click("Grozny")
    await harness.settle()
    await user.click("⚡ Message (10 days)")
    await harness.settle()


@pytest.mark.parametrize("bot_mode", ["polling", "webhook"])
async def test_full_journey_in_english(harness: Harness) -> None:
    user = harness.emu.user(1001, first_name="Test", language_code="en")
    await user.send_text("/start")
    await harness.settle()
    # The language is preselected from Telegram's language_code.
    assert "✅ English" in user.last_message.buttons
    await user.click("✅ English")
    await harness.settle()
    consent = user.last_message
    assert "Consent to the processing of personal data" in consent.text and "2026-12-03" in consent.text
    await user.click("✅ I agree")
    await harness.settle()
    assert user.reply_keyboard is not None
    assert ["📝 File an appeal"] in user.reply_keyboard

    await user.send_text("📝 File an appeal")
    await harness.settle()
    assert "Choose the topic" in user.last_message.text
    assert len(user.last_message.buttons) == 7 + 1  # the blocks and Cancel
    await user.click("Housing, utilities and waste")
    await harness.settle()
    assert "Choose the subcategory" in user.last_message.text
    category_label = user.last_message.inline_keyboard[0][0][0]
    await user.click(category_label)
    await harness.settle()
    assert "Describe the problem" in user.last_message.text
    await user.send_text('Water leaks <b>everywhere</b> & "nobody" comes')
    await harness.settle()
    assert "Attach photos" in user.last_message.text

    before = len(user.messages)
    await user.send_album(["photo", "photo", "video"])
    await harness.settle()
    album_replies = user.messages[before:]
    assert len(album_replies) == 1  # one answer for the whole album, not one per item
    assert "Files attached: 3 of 10" in album_replies[0].text
    await user.send_document(file_name="act.pdf", mime_type="application/pdf")
    await harness.settle()
    assert "Files attached: 4 of 10" in user.last_message.text
    await user.click("✅ Done (4)")
    await harness.settle()

    assert "Where is the problem" in user.last_message.text
    await user.press_reply_button("📍 Send my location", latitude=43.3178, longitude=45.6949)
    await harness.settle()
    assert "Choose the municipal district" in user.last_message.text
    await user.click("Grozny")
    await harness.settle()
    await user.click("📜 Appeal under 59-FZ (30 days)")
    await harness.settle()
    assert "surname, first name" in user.last_message.text
    await user.send_text("Ivanov Ivan Ivanovich")
    await harness.settle()
    await user.press_reply_button("📱 Share my phone number")
    await harness.settle()

    preview = user.last_message
    assert "Check your appeal" in preview.text
    # The description is shown as typed: the HTML was escaped, not interpreted.
    assert 'Water leaks <b>everywhere</b> & "nobody" comes' in preview.text
    assert "Attachments: 4" in preview.text
    assert "Ivanov Ivan Ivanovich" in preview.text
    assert "43.31780, 45.69490" in preview.text
    await user.click("✅ Confirm")
    await harness.settle()

    done = user.last_message
    assert "Your appeal is registered" in done.text
    assert "2026-000001" in done.text and "On moderation" in done.text

    [appeal] = await harness.rows(Appeal)
    assert appeal.number == "2026-000001" and appeal.status == "moderation" and appeal.kind == "appeal"
    assert appeal.text == 'Water leaks <b>everywhere</b> & "nobody" comes'
    assert (appeal.latitude, appeal.longitude) == (43.3178, 45.6949)
    assert appeal.applicant_name == "Ivanov Ivan Ivanovich" and appeal.applicant_contact
    files = await harness.rows(Attachment, Attachment.appeal_id == appeal.id)
    assert [f.kind for f in sorted(files, key=lambda f: f.position)] == ["photo", "photo", "video", "document"]
    assert all(f.file_id for f in files)
    history = await harness.rows(StatusHistory, StatusHistory.appeal_id == appeal.id)
    assert [(h.from_status, h.to_status) for h in history] == [(None, "moderation")]

    # My appeals → the card with its history.
    await user.send_text("📋 My appeals")
    await harness.settle()
    listing = user.last_message
    assert "1 in all" in listing.text
    assert any("2026-000001" in b for b in listing.buttons)
    await user.click(next(b for b in listing.buttons if "2026-000001" in b))
    await harness.settle()
    card = user.last_message
    assert "Appeal № 2026-000001" in card.text
    assert "Status: On moderation" in card.text
    assert "History:" in card.text and "Filed and sent to moderation" in card.text.split("History:")[1]
    assert "Grozny" in card.text
    await user.click("📎 Show files (4)")
    await harness.settle()
    assert any(m.media_group_id for m in user.messages[-4:])


async def test_russian_is_the_default_and_chechen_is_offered(harness: Harness) -> None:
    user = harness.emu.user(2002, first_name="Тест", language_code="de")
    await user.send_text("/start")
    await harness.settle()
    assert user.last_message.buttons[0] == "✅ Русский"
    assert "Нохчийн" in user.last_message.buttons
    await user.click("Нохчийн")
    await harness.settle()
    [row] = await harness.rows(User, User.tg_id == 2002)
    assert row.locale == "ce"
    assert "152" in user.last_message.text  # the consent, in Chechen
    await user.send_text("/language")
    await harness.settle()
    await user.click("Русский")
    await harness.settle()
    assert "Согласие на обработку персональных данных" in user.last_message.text


async def test_declined_consent_allows_help_and_privacy_but_not_filing(harness: Harness) -> None:
    user = harness.emu.user(3003, language_code="en")
    await user.send_text("/start")
    await harness.settle()
    await user.click("✅ English")
    await harness.settle()
    await user.click("❌ I do not agree")
    await harness.settle()
    assert "Without the consent" in user.last_message.text
    [consent] = await harness.rows(Consent)
    assert consent.accepted is False and consent.version == "2026-12-03"
    await user.send_text("/privacy")
    await harness.settle()
    assert "What is stored" in user.last_message.text
    await user.send_text("/help")
    await harness.settle()
    assert "How the bot of the Regional Management Center (RMC) works" in user.last_message.text
    await user.send_text("📝 File an appeal")
    await harness.settle()
    assert "accept the consent" in user.last_message.text
    # Changing one's mind from there works.
    await user.click("Read the consent")
    await harness.settle()
    await user.click("✅ I agree")
    await harness.settle()
    await user.send_text("/new")
    await harness.settle()
    assert "Choose the topic" in user.last_message.text


async def test_bad_input_at_every_step_is_answered_and_loses_nothing(harness: Harness) -> None:
    user = await english_resident(harness)
    await user.send_text("📝 File an appeal")
    await harness.settle()
    await user.send_text("roads please")  # typing where a button is expected
    await harness.settle()
    # The question comes again below the person's message, with what was wrong above it.
    assert "Please choose one of the buttons" in user.last_message.text
    assert "Choose the topic" in user.last_message.text
    assert "Roads" in user.last_message.buttons
    await user.click("Roads")
    await harness.settle()
    await user.click(user.last_message.inline_keyboard[0][0][0])
    await harness.settle()

    await user.send_sticker()
    await harness.settle()
    assert "describe the problem in text" in user.last_message.text
    await user.send_voice()
    await harness.settle()
    assert "describe the problem in text" in user.last_message.text
    await user.send_text("pothole")
    await harness.settle()
    assert "too short: 7 characters, at least 10" in user.last_message.text
    await user.send_text("x" * 4001)
    await harness.settle()
    assert "too long: 4001 characters, at most 4000" in user.last_message.text
    await user.send_text("/nonsense")
    await harness.settle()
    assert "Unknown command" in user.last_message.text
    long_text = "A deep pothole on the main road. " * 121  # 3993 characters: allowed, near the limit
    await user.send_text(long_text.strip())
    await harness.settle()
    assert "Attach photos" in user.last_message.text

    await user.send_voice()
    await harness.settle()
    assert "cannot be attached" in user.last_message.text
    await user.send_sticker()
    await harness.settle()
    assert "cannot be attached" in user.last_message.text
    await user.send_album(["photo"] * 10)
    await harness.settle()
    assert "Files attached: 10 of 10" in user.last_message.text
    await user.send_photo()
    await harness.settle()
    assert "This file was not added: at most 10 files" in user.last_message.text
    await user.click("✅ Done (10)")
    await harness.settle()

    await user.send_photo()
    await harness.settle()
    assert "type the address as text" in user.last_message.text
    await user.send_text("abc")
    await harness.settle()
    assert "5 to 500 characters" in user.last_message.text
    await user.send_text("Argun, Shosseynaya 1")
    await harness.settle()
    await user.click("Argun")
    await harness.settle()
    await user.click("📜 Appeal under 59-FZ (30 days)")
    await harness.settle()
    await user.send_text("12345")
    await harness.settle()
    assert "full name in letters" in user.last_message.text
    await user.send_text("Petrova Aminat")
    await harness.settle()
    await user.send_contact("+79990001122", user_id=999)  # someone else's contact
    await harness.settle()
    assert "your own phone number" in user.last_message.text
    await user.send_text("call me maybe")
    await harness.settle()
    assert "does not look like a phone number" in user.last_message.text
    await user.send_text("petrova@example.ru")
    await harness.settle()
    preview = user.last_message
    assert "Check your appeal" in preview.text
    assert len(preview.text) < 4096  # the long description is clipped on the card, not lost
    await user.click("✅ Confirm")
    await harness.settle()
    [appeal] = await harness.rows(Appeal)
    assert appeal.text == long_text.strip()
    assert len(await harness.rows(Attachment)) == 10
    assert appeal.applicant_contact == "petrova@example.ru"


async def test_back_and_edit_from_the_preview(harness: Harness) -> None:
    user = await english_resident(harness)
    await fill_until_preview(harness, user)
    assert "Check your appeal" in user.last_message.text
    await user.click("✏️ Edit")
    await harness.settle()
    await user.click("District")
    await harness.settle()
    await user.click("Argun")
    await harness.settle()
    assert "Check your appeal" in user.last_message.text
    assert "District: Argun" in user.last_message.text
    # Back from the preview goes to the kind, and on back to the district.
    await user.click("✏️ Edit")
    await harness.settle()
    await user.click("Description")
    await harness.settle()
    await user.click("⬅️ Back")
    await harness.settle()
    assert "What do you want to change" in user.last_message.text
    await user.click("⬅️ Back")
    await harness.settle()
    assert "Check your appeal" in user.last_message.text
    await user.click("✅ Confirm")
    await harness.settle()
    [appeal] = await harness.rows(Appeal)
    assert appeal.address == "Grozny, Mira street 12"


async def test_back_walks_the_dialog_backwards(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    await user.click("⬅️ Back")
    await harness.settle()
    assert "Choose the subcategory" in user.last_message.text
    await user.click("⬅️ Back")
    await harness.settle()
    assert "Choose the topic" in user.last_message.text
    await user.click("Public transport")
    await harness.settle()
    await user.click(user.last_message.inline_keyboard[0][0][0])
    await harness.settle()
    await user.send_text("The bus number 5 never comes in the morning")
    await harness.settle()
    await user.click("⏭ Skip")
    await harness.settle()
    await user.press_reply_button("⬅️ Back")
    await harness.settle()
    assert "Attach photos" in user.last_message.text
    assert user.reply_keyboard is None


async def test_cancel_anywhere_and_when_nothing_to_cancel(harness: Harness) -> None:
    user = await english_resident(harness)
    await user.send_text("/cancel")
    await harness.settle()
    assert "nothing to cancel" in user.last_message.text
    await user.send_text("/new")
    await harness.settle()
    await user.click("Healthcare")
    await harness.settle()
    await user.send_text("/cancel")
    await harness.settle()
    assert "Cancelled. Nothing was saved." in user.last_message.text
    assert await harness.rows(Appeal) == []


async def test_a_button_of_a_finished_dialog_is_refused(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Housing, utilities and waste")
    # The description question of the first dialog, with its Back button as it was then.
    old_prompt = user.last_message
    assert "Describe the problem" in old_prompt.text and old_prompt.buttons == ["⬅️ Back"]
    old_back = old_prompt.button_data("⬅️ Back")
    await describe_until_preview(harness, user, "No water in our building for three days")
    await user.click("✅ Confirm")
    await harness.settle()
    # A second dialog is at its description step; the first dialog's button must not act on it.
    await begin_appeal(harness, user, "Roads")
    second = user.last_message
    sent = len(user.messages)
    with caplog.at_level(logging.INFO, logger="tsur.updates"):
        await user.press_callback(old_prompt.message_id, old_back)
        await harness.settle()
    assert user.callback_answers[-1]["text"] == "This button is no longer active."
    # Logged and counted as a stale press, not as a failure of the bot (QA: it read outcome=error).
    [line] = [r.getMessage() for r in caplog.records if r.name == "tsur.updates" and "callback_query" in r.getMessage()]
    assert line.endswith("outcome=stale"), line
    assert harness.app is not None
    stale = {"type": "callback_query", "outcome": "stale"}
    assert harness.app.metrics.registry.get_sample_value("tsur_updates_total", stale) == 1
    assert len(user.messages) == sent
    assert user.last_message.text == second.text and user.last_message.buttons == second.buttons
    # The second dialog goes on undisturbed.
    await user.send_text("The asphalt is gone on our street")
    await harness.settle()
    assert "Attach photos" in user.last_message.text


async def test_double_confirm_and_a_redelivered_update_make_one_appeal(harness: Harness) -> None:
    user = await english_resident(harness)
    await fill_until_preview(harness, user)
    preview = user.last_message
    confirm = preview.button_data("✅ Confirm")
    await user.press_callback(preview.message_id, confirm)
    await user.press_callback(preview.message_id, confirm)
    await harness.settle()
    assert "already registered: № 2026-000001" in user.callback_answers[-1]["text"]
    # Telegram delivers the Confirm press again (as after a crash before the offset was confirmed).
    update = harness.emu.last_update(user.id)
    assert update is not None and update["callback_query"]["data"] == confirm
    harness.emu.redeliver(update)
    await harness.settle()
    assert len(await harness.rows(Appeal)) == 1
    assert len(await harness.rows(StatusHistory)) == 1
    assert len([m for m in user.messages if "Your appeal is registered" in m.text]) == 1


async def test_forged_callback_for_another_residents_appeal_shows_nothing(harness: Harness) -> None:
    alice = await english_resident(harness, 1)
    await fill_until_preview(harness, alice)
    await alice.click("✅ Confirm")
    await harness.settle()
    [appeal] = await harness.rows(Appeal)

    mallory = await english_resident(harness, 2)
    await mallory.send_text("/my")
    await harness.settle()
    listing = mallory.last_message
    assert "no appeals yet" in listing.text
    sent = len(mallory.messages)
    for forged in (
        f"my:o:{appeal.id}:0",
        f"my:m:{appeal.id}:0",
        "my:o:999999:0",
        "f:ok:deadbeefdeadbeef:0:",
        "garbage",
    ):
        await mallory.press_callback(listing.message_id, forged)
        await harness.settle()
    assert len(mallory.messages) == sent
    answers = [a["text"] for a in mallory.callback_answers[-5:]]
    assert answers[:3] == ["Appeal not found."] * 3
    assert all(appeal.number not in (a or "") for a in answers)


async def test_restart_in_the_middle_of_filing_loses_nothing(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Energy")
    await user.send_text("No electricity on our street since yesterday")
    await harness.settle()
    await user.send_photo()
    await harness.settle()

    await harness.restart()
    assert len(await harness.rows(FsmRecord)) >= 1  # the dialog lives in the database

    await user.send_photo()
    await harness.settle()
    assert "Files attached: 2 of 10" in user.last_message.text
    await user.click("✅ Done (2)")
    await harness.settle()
    await user.send_text("Gudermes, Lenina 5")
    await harness.settle()
    await user.click(next(b for b in user.last_message.buttons if "Gudermes" in b))
    await harness.settle()
    await user.click("⚡ Message (10 days)")
    await harness.settle()
    await user.click("✅ Confirm")
    await harness.settle()
    [appeal] = await harness.rows(Appeal)
    assert appeal.text == "No electricity on our street since yesterday"
    assert len(await harness.rows(Attachment)) == 2


async def test_my_appeals_is_paginated_newest_first(harness: Harness) -> None:
    user = await english_resident(harness)
    for i in range(7):
        await fill_until_preview(harness, user, text=f"Problem number {i} described here")
        await user.click("✅ Confirm")
        await harness.settle()
        harness.clock.advance(minutes=5)
    await user.send_text("/my")
    await harness.settle()
    page = user.last_message
    assert "7 in all. Page 1 of 2" in page.text
    numbers = [b.split(" · ")[0] for b in page.buttons if b.startswith("№")]
    assert numbers == ["№ 2026-000007", "№ 2026-000006", "№ 2026-000005", "№ 2026-000004", "№ 2026-000003"]
    await user.click("▶️")
    await harness.settle()
    assert "Page 2 of 2" in user.last_message.text
    assert user.last_message.message_id == page.message_id  # the list was edited in place
    assert [b.split(" · ")[0] for b in user.last_message.buttons if b.startswith("№")] == [
        "№ 2026-000002",
        "№ 2026-000001",
    ]


async def test_unknown_commands_and_free_text_get_an_answer(harness: Harness) -> None:
    user = await english_resident(harness)
    await user.send_text("/frobnicate")
    await harness.settle()
    assert "Unknown command" in user.last_message.text
    await user.send_text("hello?")
    await harness.settle()
    assert "did not understand" in user.last_message.text
    await user.send_sticker()
    await harness.settle()
    assert "did not understand" in user.last_message.text


async def test_one_log_line_per_update_without_personal_data(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tsur.updates")
    user = harness.emu.user(4004, first_name="Secretname", language_code="en")
    await user.send_text("/start")
    await harness.settle()
    await user.click("✅ English")
    await harness.settle()
    await user.send_text("my phone is +79991234567")
    await harness.settle()
    lines = [r.getMessage() for r in caplog.records if r.name == "tsur.updates"]
    assert len(lines) == 3
    assert "kind=message" in lines[0] and "handler=handlers.common.start.start" in lines[0]
    assert "kind=callback_query" in lines[1] and "duration_ms=" in lines[1] and "outcome=handled" in lines[1]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "+79991234567" not in text and "Secretname" not in text


async def test_an_internal_error_gets_a_localized_answer(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    user = await english_resident(harness)
    assert harness.app is not None

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(harness.app.services.appeals, "list_mine", broken)
    await user.send_text("/my")
    await harness.settle()
    assert "Something went wrong" in user.last_message.text


async def test_appeal_rows_are_never_shown_to_someone_else_in_the_list(harness: Harness) -> None:
    alice = await english_resident(harness, 11)
    await fill_until_preview(harness, alice)
    await alice.click("✅ Confirm")
    await harness.settle()
    bob = await english_resident(harness, 12)
    await bob.send_text("📋 My appeals")
    await harness.settle()
    assert "no appeals yet" in bob.last_message.text
    async with await harness.session() as session:
        owner = (await session.execute(select(Appeal.user_id))).scalar_one()
        alice_row = (await session.execute(select(User).where(User.tg_id == 11))).scalar_one()
    assert owner == alice_row.id


async def test_applicant_rules_live_in_the_service(services) -> None:
    """The dialog checks the name, contact and address as they are typed with the service's own rules, and
    filing checks them again: a draft that skipped the dialog is refused just the same."""
    from bot.services.errors import InvalidInput
    from tests.factories import draft, resident

    appeals = services.appeals
    limits = services.appeals.settings.limits
    assert appeals.validate_name("  Petrova   Aminat ") == "Petrova Aminat"
    assert appeals.validate_contact(" +7 928 000-00-00 ") == "+7 928 000-00-00"
    assert appeals.validate_contact("name@example.ru") == "name@example.ru"
    assert appeals.validate_address(" Argun, Shosseynaya 1 ") == "Argun, Shosseynaya 1"
    for bad in ("12345", "Ivan", "Ivan " + "x" * limits.name_max):
        with pytest.raises(InvalidInput):
            appeals.validate_name(bad)
    for bad in ("call me maybe", "+7 9", "a@b", "1" * (limits.contact_max + 1)):
        with pytest.raises(InvalidInput):
            appeals.validate_contact(bad)
    for bad in ("abc", "x" * (limits.address_max + 1)):
        with pytest.raises(InvalidInput):
            appeals.validate_address(bad)
    actor = await resident(services)
    forged = draft(services, kind="appeal", applicant_name="12345", applicant_contact="petrova@example.ru")
    with pytest.raises(InvalidInput):
        await appeals.file(actor, forged)
    forged = draft(services, kind="appeal", applicant_name="Petrova Aminat", applicant_contact="call me")
    with pytest.raises(InvalidInput):
        await appeals.file(actor, forged)


async def test_restart_at_a_reply_keyboard_step_and_on_the_preview(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    await user.send_text("A deep pothole near the school gate")
    await harness.settle()
    await user.click("⏭ Skip")
    await harness.settle()
    assert "Where is the problem" in user.last_message.text
    await harness.restart()
    keys = [r.key for r in await harness.rows(FsmRecord)]
    assert any(":aiogd:context:" in k for k in keys)  # the dialog's step and draft are rows, not memory
    await user.press_reply_button("⬅️ Back")
    await harness.settle()
    assert "Attach photos" in user.last_message.text and user.reply_keyboard is None
    await user.click("⏭ Skip")
    await harness.settle()
    await user.send_text("Argun, Shosseynaya 1")
    await harness.settle()
    await user.click("Argun")
    await harness.settle()
    await user.click("⚡ Message (10 days)")
    await harness.settle()
    assert "Check your appeal" in user.last_message.text
    await harness.restart()
    await user.click("✅ Confirm")
    await harness.settle()
    assert "Your appeal is registered" in user.last_message.text
    [appeal] = await harness.rows(Appeal)
    assert appeal.address == "Argun, Shosseynaya 1" and appeal.text == "A deep pothole near the school gate"


async def test_changing_the_language_mid_filing_shows_the_same_step_in_the_new_language(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Housing, utilities and waste")
    await user.send_text("/language")
    await harness.settle()
    await user.click("Русский")
    await harness.settle()
    assert "Опишите проблему" in user.last_message.text  # the description step, now in Russian
    await user.send_text("Нет воды в нашем доме уже три дня")
    await harness.settle()
    assert "Приложите фото" in user.last_message.text  # the dialog went on: the next step, in Russian


async def test_start_mid_filing_leaves_the_dialog(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Housing, utilities and waste")
    await user.send_text("/start")
    await harness.settle()
    assert "Welcome back" in user.last_message.text
    await user.send_text("No water in our building for three days")
    await harness.settle()
    assert "I did not understand that" in user.last_message.text  # not taken as the description of a dialog
    assert await harness.rows(Appeal) == []


async def test_done_pressed_before_an_albums_summary_shows_the_next_step_once(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Housing, utilities and waste")
    await user.send_text("No water in our building for three days")
    await harness.settle()
    await user.send_photo()
    await harness.settle()
    await user.send_album(["photo"] * 3)
    await user.click("✅ Done (1)")  # before the album's summary: it would show the place step again
    await harness.settle()
    place_steps = [m for m in user.messages if "Where is the problem" in (m.text or "") and not m.deleted]
    assert len(place_steps) == 1
    await user.send_text("Grozny, Mira street 12")
    await harness.settle()
    assert "Choose the municipal district" in user.last_message.text


async def test_a_photo_sent_with_the_description_as_its_caption_loses_nothing(harness: Harness) -> None:
    """People send the photo with the description as its caption: the caption is the description, the photo the
    first file; a photo with no caption is kept for the files step while the description is asked for."""
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    await user.send_photo(caption="A deep pothole on the main road near school 5")
    await harness.settle()
    assert user.last_message.text.startswith("📎 Files attached: 1 of 10."), user.last_message.text

    await user.send_text("/cancel")
    await harness.settle()
    await begin_appeal(harness, user, "Roads")
    await user.send_photo()
    await harness.settle()
    assert "The file is kept: you will see it at the next step. Now describe the problem in text." in (
        user.last_message.text
    )
    await user.send_photo(caption="short")  # a caption too short to be the description: said so, the file kept
    await harness.settle()
    assert "too short: 5 characters, at least 10" in user.last_message.text
    await user.send_text("A deep pothole on the main road near school 5")
    await harness.settle()
    assert user.last_message.text.startswith("📎 Files attached: 2 of 10."), user.last_message.text
    # Filed: the typed description, both photos.
    await user.click("✅ Done (2)")
    await harness.settle()
    await place_until_preview(harness, user)
    await user.click("✅ Confirm")
    await harness.settle()
    [appeal] = await harness.rows(Appeal)
    assert appeal.text == "A deep pothole on the main road near school 5"
    assert len(await harness.rows(Attachment, Attachment.appeal_id == appeal.id)) == 2
