"""Withdrawing the consent end to end (issue 16): /privacy → «Withdraw consent» → the confirmation → the final
message, the rows erased, the staff told, /start asking the language and the consent again, and forged or replayed
confirmations refused with a popup."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.callbacks import ConsentAction, ConsentCb, PrivacyAction, PrivacyCb
from bot.domain import ANONYMOUS_TG_ID, AppealStatus
from bot.services.appeals import DraftAttachment
from bot.services.errors import InvalidInput
from emulator.user import EmulatedUser
from storage.models import Appeal, Attachment, AuditEntry, Consent, Outbox, User
from tests.conftest import Harness
from tests.factories import TG, World, make_world
from tests.test_staff_e2e import ADMIN

NAME, CONTACT = "Иванов Иван Иванович", "+7 928 000-00-00"
PERSONAL: dict[str, Any] = {
    "kind": "appeal",
    "applicant_name": NAME,
    "applicant_contact": CONTACT,
    "latitude": 43.3178,
    "longitude": 45.6949,
    "attachments": (DraftAttachment("photo", "file-1", "u-1"),),
}
KEEP = "Withdraw, keep my open appeals answered"
ALL = "Withdraw and withdraw my open appeals too"
ALREADY = "Your consent is already withdrawn. Send /start to use the bot again."
STAFF = "Staff work without a resident's consent: there is no consent to withdraw."
NO_CONSENT = "You have no consent to the processing of personal data in force: there is nothing to withdraw."


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


@pytest.fixture
async def world(harness: Harness) -> AsyncIterator[World]:
    """Everyone of tests.factories.TG, speaking English, on the bot's own services and clock."""
    assert harness.app is not None
    services = harness.app.services
    for tg_id in TG.values():
        harness.emu.user(tg_id, language_code="en").open_chat()
    built = await make_world(services, harness.clock)
    for name, person in built.people.items():
        built.people[name] = await services.users.set_locale(person, "en")
    yield built


async def two_appeals(harness: Harness, world: World) -> tuple[Appeal, Appeal]:
    """The resident's closed (rejected) appeal and an open one in an agency's work."""
    s = world.services
    closed = await world.file(**PERSONAL)
    await s.coordination.reject(world["coordinator"], closed.id, "unreadable")
    working = await world.in_progress(**PERSONAL)
    await harness.settle()
    return closed, working


async def open_privacy(harness: Harness, person: EmulatedUser) -> None:
    await person.send_text("/privacy")
    await harness.settle()


async def consents(harness: Harness, tg_id: int) -> list[tuple[bool, bool]]:
    [user] = await harness.rows(User, User.tg_id == tg_id)
    return [(c.accepted, c.withdrawn) for c in await harness.rows(Consent, Consent.user_id == user.id)]


def last_popup(person: EmulatedUser) -> tuple[str | None, bool]:
    answer = person.callback_answers[-1]
    return answer.get("text"), bool(answer.get("show_alert"))


async def test_a_resident_withdraws_keeping_the_open_appeal_and_starts_again_as_a_new_person(
    harness: Harness, world: World
) -> None:
    closed, working = await two_appeals(harness, world)
    resident = harness.emu.user(TG["owner"])
    await open_privacy(harness, resident)
    assert "Your personal data" in resident.last_message.text
    await resident.click("Withdraw consent")
    await harness.settle()
    confirmation = resident.last_message
    text = confirmation.text
    for said in ("You will not be able to file new appeals", "profile is erased", "closed appeals are anonymized",
                 "cannot be undone", "You have open appeals: 1", "still answered as the law (59-FZ) requires"):
        assert said in text, said
    assert confirmation.buttons == [KEEP, ALL, "Cancel"]

    await resident.click(KEEP, message_id=confirmation.message_id)
    await harness.settle()
    final = resident.last_message.text
    assert "Your consent to the processing of personal data is withdrawn, and your profile is erased." in final
    assert "Closed appeals anonymized: 1." in final
    assert "Open appeals still being answered: 1." in final
    assert "/start" in final
    assert resident.message(confirmation.message_id).buttons == []
    assert resident.reply_keyboard is None

    # The rows: the withdrawal recorded, the profile erased, the closed appeal anonymized, the open one kept.
    assert await consents(harness, TG["owner"]) == [(True, False), (False, True)]
    [user] = await harness.rows(User, User.tg_id == TG["owner"])
    assert user.locale is None
    [anonymous] = await harness.rows(User, User.tg_id == ANONYMOUS_TG_ID)
    [gone] = await harness.rows(Appeal, Appeal.id == closed.id)
    assert (gone.user_id, gone.applicant_name, gone.applicant_contact, gone.latitude) == (anonymous.id, None, None, None)
    assert (gone.text, gone.status) == (closed.text, AppealStatus.rejected)
    assert await harness.rows(Attachment, Attachment.appeal_id == closed.id) == []
    [kept] = await harness.rows(Appeal, Appeal.id == working.id)
    assert (kept.user_id, kept.status, kept.applicant_name) == (user.id, AppealStatus.in_progress, None)
    assert kept.erasure_requested_at is not None
    [audit] = await harness.rows(AuditEntry, AuditEntry.action == "consent_withdrawn")
    assert NAME not in str(audit.details) and CONTACT not in str(audit.details)

    # The same confirmation pressed again: refused with a popup, nothing changes.
    messages = len(resident.messages)
    await resident.press_callback(confirmation.message_id, PrivacyCb(action=PrivacyAction.keep).pack())
    await harness.settle()
    assert last_popup(resident) == (ALREADY, True)
    await resident.press_callback(confirmation.message_id, PrivacyCb(action=PrivacyAction.all).pack())
    await harness.settle()
    assert last_popup(resident) == (ALREADY, True)
    assert len(resident.messages) == messages
    assert await consents(harness, TG["owner"]) == [(True, False), (False, True)]
    assert [a.status for a in await harness.rows(Appeal, Appeal.id == working.id)] == [AppealStatus.in_progress]
    # /privacy offers nothing to withdraw any more, and says where the person stands.
    await open_privacy(harness, resident)
    assert resident.last_message.buttons == []
    assert resident.last_message.text.endswith(
        "Your consent is not in force now. To file appeals, send /start and give it."
    )

    # /start: a new person, asked the language, then the consent.
    await resident.send_text("/start")
    await harness.settle()
    assert "Choose your language" in resident.last_message.text
    await resident.click("✅ English")
    await harness.settle()
    assert "Do you agree?" in resident.last_message.text
    await resident.click("✅ I agree")
    await harness.settle()
    # Their appeals: only the open one still being answered; the anonymized one is no longer theirs.
    await resident.send_text("/my")
    await harness.settle()
    listed = " ".join(resident.last_message.buttons) + resident.last_message.text
    assert working.number in listed and closed.number not in listed


async def test_withdrawing_the_open_appeals_too_closes_them_and_tells_the_staff(harness: Harness, world: World) -> None:
    _closed, working = await two_appeals(harness, world)
    resident = harness.emu.user(TG["owner"])
    coordinator, official = harness.emu.user(TG["coordinator"]), harness.emu.user(TG["official"])
    await open_privacy(harness, resident)
    await resident.click("Withdraw consent")
    await harness.settle()
    await resident.click(ALL)
    await harness.settle()
    final = resident.last_message.text
    assert "Closed appeals anonymized: 1." in final and "Open appeals withdrawn and anonymized: 1." in final
    [row] = await harness.rows(Appeal, Appeal.id == working.id)
    assert (row.status, row.anonymized_at is not None, row.applicant_name) == (AppealStatus.closed, True, None)
    told = (
        f"↩️ The applicant withdrew the consent to the processing of personal data and appeal № {working.number} "
        "with it: the appeal is closed and its personal data are erased."
    )
    for person in (coordinator, official):
        assert any(m.text == told for m in person.messages), person
    # Staff still open the card: the text and the history, no name, contact or files.
    notice = next(m for m in coordinator.messages if m.text == told)
    await coordinator.click("Open", message_id=notice.message_id)
    await harness.settle()
    card = coordinator.last_message.text
    assert row.text in card and "Closed: withdrawn by the applicant" in card
    assert NAME not in card and CONTACT not in card


async def test_forged_confirmations_from_staff_or_someone_without_consent_are_refused(
    harness: Harness, world: World
) -> None:
    await two_appeals(harness, world)
    coordinator = harness.emu.user(TG["coordinator"])
    await open_privacy(harness, coordinator)
    assert coordinator.last_message.buttons == []  # staff have no consent to withdraw
    screen = coordinator.last_message.message_id
    for action in PrivacyAction:
        await coordinator.press_callback(screen, PrivacyCb(action=action).pack())
        await harness.settle()
        assert last_popup(coordinator) == (STAFF, True), action

    # Someone who only chose a language: no consent to withdraw.
    stranger = harness.emu.user(4242, language_code="en")
    await stranger.send_text("/start")
    await harness.settle()
    await stranger.click("✅ English")
    await harness.settle()
    before = await consents(harness, 4242)
    for action in PrivacyAction:
        await stranger.press_callback(stranger.last_message.message_id, PrivacyCb(action=action).pack())
        await harness.settle()
        assert last_popup(stranger) == (NO_CONSENT, True), action
    assert await consents(harness, 4242) == before

    # Cancel leaves the consent in force.
    resident = harness.emu.user(TG["owner"])
    await open_privacy(harness, resident)
    await resident.click("Withdraw consent")
    await harness.settle()
    await resident.click("Cancel")
    await harness.settle()
    assert resident.last_message.text == "Nothing has changed: your consent stays in force."
    assert await consents(harness, TG["owner"]) == [(True, False)]
    assert len(await harness.rows(Appeal, Appeal.anonymized_at.is_not(None))) == 0


async def test_the_running_bot_anonymizes_old_closed_appeals_once_a_day_at_night(harness: Harness, world: World) -> None:
    assert harness.app is not None and harness.app.scheduler is not None
    closed, working = await two_appeals(harness, world)
    job = harness.app.scheduler.get_job("retention")
    assert job is not None
    trigger = job.trigger
    assert isinstance(trigger, CronTrigger) and str(trigger.timezone) == "Europe/Moscow"
    now = harness.clock.now().astimezone(trigger.timezone)
    fire = trigger.get_next_fire_time(None, now)
    assert fire is not None and (fire.hour, fire.minute) == (3, 0) and fire - now <= timedelta(days=1)
    await job.func()
    assert [a.anonymized_at for a in await harness.rows(Appeal)] == [None, None]
    harness.clock.advance(days=harness.settings.privacy.retention_days + 1)
    await job.func()
    await harness.settle()
    [old] = await harness.rows(Appeal, Appeal.id == closed.id)
    assert (old.anonymized_at, old.applicant_name, old.text) == (harness.clock.now(), None, closed.text)
    [still] = await harness.rows(Appeal, Appeal.id == working.id)
    assert (still.anonymized_at, still.applicant_name) == (None, NAME)
    # The resident keeps the consent; the old appeal is simply no longer listed as theirs.
    resident = harness.emu.user(TG["owner"])
    await resident.send_text("/my")
    await harness.settle()
    listed = " ".join(resident.last_message.buttons) + resident.last_message.text
    assert working.number in listed and closed.number not in listed


async def test_after_a_withdrawal_no_notification_holds_the_residents_data_and_the_access_log_names_nobody(
    harness: Harness, world: World
) -> None:
    s = world.services
    words, address = "Дом 5, спросите Иванова", "Грозный, ул. Мира, 1"
    # The official got the card (text, address, place) and the resident's reply with a photo; a coordinator looked.
    asked = await world.clarification(**PERSONAL, address=address)
    await s.replies.reply_clarification(world["owner"], asked.id, words, (DraftAttachment("photo", "file-9", "u-9"),))
    await harness.settle()
    official = harness.emu.user(TG["official"])
    assert any(words in (m.text or "") for m in official.messages)
    await s.views.show_card(world["coordinator"], asked.id)
    secrets = (NAME, CONTACT, address, "43.3178", "45.6949", "file-1", "file-9", words)
    assert any(secret in json.dumps(o.params, ensure_ascii=False) for o in await harness.rows(Outbox) for secret in secrets)

    resident = harness.emu.user(TG["owner"])
    await open_privacy(harness, resident)
    await resident.click("Withdraw consent")
    await harness.settle()
    await resident.click(ALL)
    await harness.settle()

    # Staff are told, and nothing in the outbox holds the person's name, contact, place, files or words any more.
    assert any(f"appeal № {asked.number} with it" in (m.text or "") for m in official.messages)
    for row in await harness.rows(Outbox):
        dumped = json.dumps(row.params, ensure_ascii=False)
        assert [secret for secret in secrets if secret in dumped] == [], (row.template, dumped)
    assert {o.template for o in await harness.rows(Outbox)} >= {"withdrawn"}
    # The admin cannot get from the person to the anonymized appeal through the access log.
    admin = harness.emu.user(ADMIN, language_code="en")
    nobody = "Nobody with this Telegram id is known to the bot."
    anonymized = "This appeal is anonymized (its resident withdrew the consent, or its retention term passed)"
    for typed, said in (("0", nobody), (asked.number, anonymized), (f"№ {asked.number}", anonymized)):
        await admin.send_text("/accesslog")
        await harness.settle()
        await admin.click("👤 By person")
        await harness.settle()
        await admin.send_text(typed)
        await harness.settle()
        assert said in admin.last_message.text, typed
    await admin.send_text("/accesslog")
    await harness.settle()
    await admin.click("👤 By person")
    await harness.settle()
    await admin.send_text(str(TG["owner"]))
    await harness.settle()
    listing = admin.last_message.text
    assert f"Access log of the person with Telegram id {TG['owner']}" in listing
    assert asked.number not in listing and "card" not in listing, listing
    # The official still opens the card; the resident's reply is said to be removed, not an empty line.
    await official.click("Open")
    await harness.settle()
    card = official.last_message.text or ""
    assert card.startswith(f"Appeal № {asked.number}") and words not in card, card
    assert "removed when the appeal was anonymized" in card, card


async def test_a_resident_with_only_messages_open_is_not_told_of_59_fz(harness: Harness, world: World) -> None:
    """QA: a сообщение (the ПОС track) is not an обращение under 59-ФЗ; the confirmation must not cite the law for it."""
    await world.in_progress()  # a сообщение, the factories' default kind
    resident = harness.emu.user(TG["owner"])
    await open_privacy(harness, resident)
    await resident.click("Withdraw consent")
    await harness.settle()
    text = resident.last_message.text
    assert "You have open appeals: 1. They are still answered, and anonymized once closed" in text
    assert "59" not in text
    assert resident.last_message.buttons == [KEEP, ALL, "Cancel"]


async def test_my_appeals_after_a_withdrawal_says_how_to_file_again(harness: Harness, world: World) -> None:
    """QA: after the withdrawal the menu is gone, and /my still told to press «📝 File an appeal»."""
    resident = harness.emu.user(TG["owner"])
    await open_privacy(harness, resident)
    await resident.click("Withdraw consent")
    await harness.settle()
    await resident.click("Withdraw my consent")
    await harness.settle()
    assert resident.reply_keyboard is None
    await resident.send_text("/my")
    await harness.settle()
    assert resident.last_message.text == (
        "You have no appeals. To file one, send /start and give your consent to the processing of personal data."
    )
    await resident.send_text("/start")  # the profile was erased: the language first, then the consent
    await harness.settle()
    await resident.click("✅ English")
    await harness.settle()
    assert "consent" in resident.last_message.text.lower() and resident.last_message.buttons


async def test_the_nightly_job_deletes_notifications_sent_long_ago_and_keeps_the_recent(
    harness: Harness, world: World
) -> None:
    """The outbox is a delivery queue, not an archive: its settled rows (with words in some of them) go after
    privacy.outbox_keep_days; the recent ones stay."""
    assert harness.app is not None and harness.app.scheduler is not None
    job = harness.app.scheduler.get_job("retention")
    assert job is not None
    await two_appeals(harness, world)
    old = await harness.rows(Outbox)
    assert old and {o.status for o in old} == {"sent"}
    keep = harness.settings.privacy.outbox_keep_days
    assert keep == 90
    harness.clock.advance(days=keep - 1)
    recent = await world.clarification(text="Где именно?")
    await harness.settle()
    fresh = [o for o in await harness.rows(Outbox) if o.id > old[-1].id]
    assert fresh and {o.status for o in fresh} == {"sent"}
    await job.func()
    assert len(await harness.rows(Outbox)) == len(old) + len(fresh)  # nothing is 90 days old yet
    harness.clock.advance(days=2)
    await job.func()
    assert [o.id for o in await harness.rows(Outbox)] == [o.id for o in fresh]
    # The appeals themselves, and what the resident reads of them, are untouched.
    resident = harness.emu.user(TG["owner"])
    await resident.send_text("/my")
    await harness.settle()
    assert recent.number in " ".join(resident.last_message.buttons) + resident.last_message.text


async def test_an_old_consent_button_never_takes_a_consent_in_force_back(harness: Harness, world: World) -> None:
    """«Read the consent» from an old message, and «I do not agree» on it, from someone who has agreed since: the
    consent stays in force (a withdrawal is /privacy's, with its consequences), and they are told where to go."""
    resident = harness.emu.user(TG["owner"])
    await open_privacy(harness, resident)
    screen, shown = resident.last_message.message_id, len(resident.messages)
    await resident.press_callback(screen, ConsentCb(action=ConsentAction.show).pack())
    await harness.settle()
    assert last_popup(resident) == (
        "Your consent is already recorded. /privacy shows it and how to withdraw it.",
        False,
    )
    await resident.press_callback(screen, ConsentCb(action=ConsentAction.decline).pack())
    await harness.settle()
    assert last_popup(resident) == ("This button is no longer active.", True)
    assert len(resident.messages) == shown  # no consent asked again, nothing sent
    assert await consents(harness, TG["owner"]) == [(True, False)]

    # The service refuses the "no" whatever the screen: it would be a withdrawal without its consequences.
    actor = await world.services.users.identify(TG["owner"])
    with pytest.raises(InvalidInput):
        await world.services.users.answer_consent(actor, False)
    assert await consents(harness, TG["owner"]) == [(True, False)]
