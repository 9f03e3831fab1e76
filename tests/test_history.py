"""The status history as residents and staff read it (issue 10, defects 2 and 3, and the re-submitted answer).

End to end: every move of bot.domain.TRANSITIONS is driven on an appeal (by its use case where there is one, by
the state machine itself where none exists yet), then the resident opens the card through the bot and it must
hold the move's sentence and no word staff wrote for staff; the staff card holds both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.callbacks import StaffAction, StaffCb
from bot.domain import TRANSITIONS, AppealStatus
from storage.models import Appeal, StatusHistory
from tests.conftest import Harness
from tests.databases import fresh_db
from tests.factories import TG, World, appeal, make_world, rows
from tests.test_staff_e2e import ADMIN, staffed_appeal

S = AppealStatus
# Words staff write for staff: none may ever reach a resident.
STAFF_ONLY = "STAFF-ONLY"
RETURN_COMMENT = f"{STAFF_ONLY} the official must name the contractor"
REDIRECT_REASON = f"{STAFF_ONLY} the road belongs to the republic"
MACHINE_COMMENT = f"{STAFF_ONLY} a note on the move"
UNAPPROVED_ANSWER = "Draft answer nobody approved yet"
QUESTION = "Which entrance has no water?"


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


@pytest.fixture
async def world(harness: Harness) -> AsyncIterator[World]:
    """Everyone of tests.factories.TG, speaking English, on the bot's own services and clock."""
    assert harness.app is not None
    services = harness.app.services
    for tg_id in TG.values():
        harness.emu.user(tg_id, language_code="en").open_chat()  # so that notifications reach them
    built = await make_world(services, harness.clock)
    for name, person in built.people.items():
        built.people[name] = await services.users.set_locale(person, "en")
    yield built


async def force(world: World, appeal_id: int, to: S, comment: str | None = None) -> None:
    """A move no use case makes yet (closing an answered appeal, reopening): through the state machine itself."""
    services = world.services
    async with services.appeals.sessionmaker() as session:
        row = await session.get(Appeal, appeal_id)
        assert row is not None
        await services.lifecycle.transition(session, row, to, world["coordinator"], world.clock.now(), comment=comment)
        await session.commit()


async def reach(world: World, source: S) -> Appeal:
    """A new appeal in status `source`, brought there the way people do."""
    s, coord = world.services, world["coordinator"]
    if source == S.moderation:
        return await world.file()
    if source == S.assigned:
        return await world.assigned()
    if source == S.in_progress:
        return await world.in_progress()
    if source == S.clarification:
        return await world.clarification(QUESTION)
    if source == S.answer_review:
        return await world.answer_review(UNAPPROVED_ANSWER)
    if source == S.answered:
        row = await world.answer_review("The water is back since Monday")
        await s.coordination.review(coord, row.id, approve=True)
        return row
    row = await world.file()
    if source == S.closed:
        original = await world.file("other")
        await s.coordination.mark_duplicate(coord, row.id, original.number)
    else:
        await s.coordination.reject(coord, row.id, "unreadable")
    if source == S.reopened:
        await force(world, row.id, S.reopened, MACHINE_COMMENT)
    return row


async def drive(world: World, row: Appeal, source: S, target: S) -> str:
    """Make the move source → target by its use case (or the state machine); the English words the resident's
    card must then show for it ("" for a move the resident does not read)."""
    s, coord, official = world.services, world["coordinator"], world["official"]
    if target == S.assigned and source in (S.moderation, S.reopened):
        await s.coordination.route(coord, row.id)
        return "Sent to "
    if target == S.assigned:  # a redirect the agency asked for, with its reason
        await s.agency.request_redirect(official, row.id, world.agency_b, REDIRECT_REASON)
        [request] = await s.views.pending_requests(coord)
        await s.coordination.decide(coord, request.id, approve=True)
        return "Redirected to "
    if target == S.rejected:
        await s.coordination.reject(coord, row.id, "unreadable")
        return "Left without consideration: the text cannot be read"
    if target == S.closed and source != S.answered:
        original = await world.file("other")
        await s.coordination.mark_duplicate(coord, row.id, original.number)
        return f"Closed as a duplicate of № {original.number}"
    if target == S.in_progress and source == S.assigned:
        await s.agency.take(official, row.id)
        return "Taken in work"
    if target == S.clarification:
        await s.agency.ask_clarification(official, row.id, QUESTION)
        return "A clarification was requested"
    if target == S.in_progress and source == S.clarification:
        await s.replies.reply_clarification(world["owner"], row.id, "Entrance 3")
        return "The clarification was received"
    if target == S.answer_review:
        await s.agency.answer(official, row.id, UNAPPROVED_ANSWER)
        return "The answer is prepared and is being checked by the Regional Management Center"
    if target == S.answered:
        await s.coordination.review(coord, row.id, approve=True)
        return "The answer is given"
    if target == S.in_progress and source == S.answer_review:
        await s.coordination.review(coord, row.id, approve=False, comment=RETURN_COMMENT)
        return ""
    await force(world, row.id, target, MACHINE_COMMENT)
    return {S.closed: "Closed", S.reopened: "Reopened for a new consideration"}[target]


async def resident_card(harness: Harness, number: str, tg_id: int = TG["owner"]) -> str:
    """The card of appeal `number` as its resident opens it: /my, then its button."""
    resident = harness.emu.user(tg_id, language_code="en")
    await resident.send_text("/my")
    await harness.settle()
    await resident.click(next(b for b in resident.last_message.buttons if number in b))
    await harness.settle()
    return resident.last_message.text


async def staff_card(harness: Harness, appeal_id: int, tg_id: int = TG["coordinator"]) -> str:
    """The staff card as a coordinator opens it from a notification's «Open» (here: on their /staff menu)."""
    person = harness.emu.user(tg_id, language_code="en")
    await person.send_text("/staff")
    await harness.settle()
    message = person.last_message
    await person.press_callback(message.message_id, StaffCb(action=StaffAction.open, id=appeal_id).pack())
    await harness.settle()
    return person.message(message.message_id).text


MOVES = sorted((source, target) for source, targets in TRANSITIONS.items() for target in targets)


@pytest.mark.parametrize(("source", "target"), MOVES, ids=[f"{s}-{t}" for s, t in MOVES])
async def test_every_move_shows_the_resident_a_sentence_and_no_staff_words(
    harness: Harness, world: World, source: S, target: S
) -> None:
    row = await reach(world, source)
    said = await drive(world, row, source, target)
    await harness.settle()
    assert (await appeal(world.services, row.id)).status == target

    card = await resident_card(harness, row.number)
    history = card.split("History:")[1]
    assert STAFF_ONLY not in card
    # An answer reaches the resident only once approved.
    assert (UNAPPROVED_ANSWER in card) == (target == S.answered)
    if said:
        assert said in history.splitlines()[-1], history
    else:  # the return for rework is between the ЦУР and the agency
        assert "returned" not in history and "rework" not in history
    # No raw code of a status, a reason or an event is left on the card.
    for code in ("unreadable", "duplicate:", "extension:", "answer_review", "in_progress", "Rejected:"):
        assert code not in card
    # Every notification the resident received says nothing staff wrote for staff either.
    resident = harness.emu.user(TG["owner"])
    assert resident.messages and not any(STAFF_ONLY in (m.text or "") for m in resident.messages)
    if target != S.answered:
        assert not any(UNAPPROVED_ANSWER in (m.text or "") for m in resident.messages)

    # Staff read the same sentences, and the staff-only entries and comments as well.
    staff = await staff_card(harness, row.id)
    staff_history = staff.split("History:")[-1]
    if said:
        assert said in staff_history
    written = [h.comment for h in await rows(world.services, StatusHistory, StatusHistory.appeal_id == row.id)]
    for comment in filter(None, written):
        assert comment[:40] in staff_history
    if not said:
        assert "The answer was returned to the agency for rework 🔒" in staff_history


async def test_codes_become_sentences_on_the_residents_card(harness: Harness, world: World) -> None:
    """ "Rejected: unreadable", "Closed: duplicate:2026-000001", "In progress: extension:20" no more."""
    s, coord, official = world.services, world["coordinator"], world["official"]
    original = await world.file()
    duplicate = await world.file()
    await s.coordination.mark_duplicate(coord, duplicate.id, original.number)
    rejected = await world.file()
    await s.coordination.reject(coord, rejected.id, "unreadable")
    extended = await world.in_progress()
    await s.agency.request_extension(official, extended.id, 20, f"{STAFF_ONLY} the expert comes in January")
    [request] = await s.views.pending_requests(coord)
    world.clock.advance(days=1)
    await s.coordination.decide(coord, request.id, approve=True)
    await harness.settle()
    deadline = (await appeal(s, extended.id)).deadline_at
    assert deadline is not None
    due = deadline.astimezone(harness.settings.tz).strftime("%d.%m.%Y")

    card = await resident_card(harness, duplicate.number)
    assert f"Closed as a duplicate of № {original.number}" in card.split("History:")[1]
    card = await resident_card(harness, rejected.number)
    assert "Left without consideration: the text cannot be read or has no discernible substance" in card
    card = await resident_card(harness, extended.number)
    history = card.split("History:")[1]
    assert f"The deadline was extended by 20 days to {due}" in history
    assert f"Answer due by: {due}" in card
    assert STAFF_ONLY not in card
    # The routing names the agency, in the resident's language.
    assert harness.app is not None
    agency = harness.app.services.directory.agency(world.agency)
    assert agency is not None and f"Sent to {agency.name('en')}" in history

    # Staff read the same sentence and the agency's reason for it.
    staff = await staff_card(harness, extended.id)
    assert f"The deadline was extended by 20 days to {due}" in staff
    assert f"{STAFF_ONLY} the expert comes in January" in staff

    # In Russian and Chechen the sentences are translated.
    await s.users.set_locale(world["owner"], "ru")
    card = await resident_card(harness, duplicate.number)
    assert f"Закрыто как дубликат обращения № {original.number}" in card
    await s.users.set_locale(world["owner"], "ce")
    card = await resident_card(harness, extended.number)
    assert due in card.split("\n\n")[-1] and "extended" not in card


async def test_a_resubmitted_answer_replaces_the_returned_one(harness: Harness) -> None:
    resident, coordinator, official, filed, _agency = await staffed_appeal(harness)

    async def answer(text: str, with_file: bool) -> None:
        if "✅ Final answer" not in official.last_message.buttons:
            await official.click("Open")  # the notification of the return
            await harness.settle()
        await official.click("✅ Final answer")
        await harness.settle()
        await official.send_text(text)
        await harness.settle()
        if with_file:
            await official.send_document(file_name="draft.pdf")
            await harness.settle()
        await official.click("📤 Send")
        await harness.settle()

    await answer("Water will be back tomorrow.", with_file=True)
    await coordinator.click("Open")
    await harness.settle()
    await coordinator.click("↩️ Return for rework")
    await harness.settle()
    await coordinator.send_text("Give the exact time and who is responsible.")
    await harness.settle()
    await answer("Water is back on 4 November by 10:00; the vodokanal is responsible.", with_file=True)

    # The coordinator's card: the new answer is the current one; the returned one is marked, with its comment.
    await coordinator.click("Open")
    await harness.settle()
    card = coordinator.last_message.text
    current = card.index("✅ Answer, waiting for the check")
    returned = card.index("↩️ Answer returned for rework")
    assert returned < card.index("Water will be back tomorrow.") < current
    assert "Water is back on 4 November" in card[current:]
    assert "Return comment: Give the exact time and who is responsible." in card[returned:current]
    assert card.count("Answer, waiting for the check") == 1 and card.count("Answer returned for rework") == 1
    # The official's card says the same.
    opened = official.last_message
    assert "Return comment: Give the exact time" in opened.text and "✅ Answer, waiting for the check" in opened.text

    # The resident reads neither answer nor the comment, and not the returned answer's file either.
    assert harness.app is not None
    mine = await resident_card(harness, filed.number, resident.id)
    for words in ("Water will be back", "Water is back", "exact time", "returned", "rework"):
        assert words not in mine
    assert "Show files" not in " ".join(resident.last_message.buttons)

    # Approved: the resident's card carries the approved answer only.
    await coordinator.click("✅ Approve the answer")
    await harness.settle()
    mine = await resident_card(harness, filed.number, resident.id)
    assert "Answer:\nWater is back on 4 November" in mine
    assert "Water will be back" not in mine and "exact time" not in mine
    lines = mine.split("History:")[1].strip().splitlines()
    assert lines[-1].endswith("The answer is given")
    # The return is the staff's: the resident reads "being checked" once, not once per submission.
    assert sum("being checked" in line for line in lines) == 1, lines
    # The approved answer's file is the resident's; the returned answer's file stays hidden.
    assert "📎 Show files (1)" in resident.last_message.buttons
    assert not any("Water will be back" in (m.text or "") for m in resident.messages)


# --- the migration of the rows written before ---------------------------------------------------------------


async def test_the_migration_turns_old_codes_into_events_and_back(tmp_path: Path) -> None:
    from alembic import command

    from storage.db import alembic_config, create_engine

    engine = create_engine(fresh_db(tmp_path / "old.db"))

    def migrate(revision: str, down: bool = False) -> Any:
        def run(connection: object) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(cfg, revision)

        return run

    old = [
        (None, "moderation", None),
        ("moderation", "rejected", "unreadable"),
        ("moderation", "closed", "duplicate:2026-000001"),
        ("assigned", "assigned", "extension:20"),
        ("in_progress", "assigned", "Not our road"),
        ("answer_review", "in_progress", "Name the contractor"),
        ("answer_review", "answered", None),
    ]
    async with engine.begin() as conn:
        await conn.run_sync(migrate("0005"))
    async with engine.begin() as conn:
        # The directories in SQL of revision 0005: today's models (storage.seed) know columns added later.
        await conn.execute(text("INSERT INTO blocks (id, code, names, position, is_active) VALUES (1, 'b', '{}', 0, TRUE)"))
        await conn.execute(
            text("INSERT INTO categories (id, code, block_id, names, position, is_active) VALUES (1, 'c', 1, '{}', 0, TRUE)")
        )
        await conn.execute(
            text(
                "INSERT INTO districts (id, code, kind, names, centers, position, is_active)"
                " VALUES (1, 'd', 'city', '{}', '{}', 0, TRUE)"
            )
        )
        await conn.execute(text("INSERT INTO users (id, tg_id, is_active, created_at) VALUES (1, 1, TRUE, '2026-11-01')"))
        await conn.execute(
            text(
                "INSERT INTO appeals (id, number, draft_id, user_id, category_id, district_id, kind, status, text,"
                " locale, created_at, updated_at, extension_used, paused_seconds) VALUES (1, '2026-000002', 'd', 1,"
                " (SELECT min(id) FROM categories), (SELECT min(id) FROM districts), 'message', 'answered', 'x', 'ru',"
                " '2026-11-01', '2026-11-01', TRUE, 0)"
            )
        )
        for source, target, comment in old:
            await conn.execute(
                text(
                    "INSERT INTO status_history (appeal_id, from_status, to_status, comment, at)"
                    " VALUES (1, :source, :target, :comment, '2026-11-02')"
                ),
                {"source": source, "target": target, "comment": comment},
            )
        await conn.run_sync(migrate("head"))
    async with engine.connect() as conn:
        query = select(StatusHistory.event, StatusHistory.visibility, StatusHistory.params, StatusHistory.comment)
        migrated = [tuple(r) for r in await conn.execute(query.order_by(StatusHistory.id))]
    assert migrated == [
        ("filed", "resident", {}, None),
        ("rejected", "resident", {"reason": "unreadable"}, None),
        ("duplicate", "resident", {"original": "2026-000001"}, None),
        ("extended", "resident", {"days": 20}, None),
        ("redirected", "resident", {}, "Not our road"),
        ("answer_returned", "staff", {}, "Name the contractor"),
        ("answered", "resident", {}, None),
    ]
    async with engine.connect() as conn:
        # 0009: the answer's time from the history, and the answered appeal will be asked for a rating and closed.
        answered_at = (await conn.execute(text("SELECT answered_at FROM appeals WHERE id = 1"))).scalar_one()
        planned = await conn.execute(text("SELECT kind, seq FROM reminders WHERE appeal_id = 1 ORDER BY kind"))
        # Answered more than 30 days before the upgrade: only the closing; within them the reminder too.
        recent = datetime.now(UTC) - datetime(2026, 11, 2, tzinfo=UTC) < timedelta(days=30)
        expected = [("rate_close", 0), ("rate_reminder", 0)] if recent else [("rate_close", 0)]
        assert (str(answered_at)[:10], [tuple(r) for r in planned]) == ("2026-11-02", expected)
    async with engine.begin() as conn:
        await conn.run_sync(migrate("0005", down=True))
    async with engine.connect() as conn:
        query = text("SELECT from_status, to_status, comment FROM status_history ORDER BY id")
        assert [tuple(r) for r in await conn.execute(query)] == old
    await engine.dispose()


async def test_a_pause_and_an_extension_render_with_the_new_deadline(harness: Harness, world: World) -> None:
    """The extension's sentence names the deadline it set, even after a later pause moved the deadline on."""
    s, coord, official = world.services, world["coordinator"], world["official"]
    row = await world.in_progress()
    await s.agency.request_extension(official, row.id, 5, "Waiting for the expert")
    [request] = await s.views.pending_requests(coord)
    await s.coordination.decide(coord, request.id, approve=True)
    extended_to = (await appeal(s, row.id)).deadline_at
    assert extended_to is not None
    await s.agency.ask_clarification(official, row.id, QUESTION)
    world.clock.advance(days=2, hours=1)
    await s.replies.reply_clarification(world["owner"], row.id, "Entrance 3")
    await harness.settle()
    now_due = (await appeal(s, row.id)).deadline_at
    assert now_due is not None and now_due - extended_to >= timedelta(days=2)
    card = await resident_card(harness, row.number)
    tz = harness.settings.tz
    assert f"extended by 5 days to {extended_to.astimezone(tz):%d.%m.%Y}" in card


# --- units --------------------------------------------------------------------------------------------------


def test_details_survive_the_json_column_and_drop_what_no_longer_fits() -> None:
    from datetime import UTC, datetime

    from bot.domain import HistoryDetails, RejectReason

    details = HistoryDetails(
        agency_id=3,
        reason=RejectReason.spam,
        original="2026-000001",
        days=20,
        deadline=datetime(2027, 1, 11, 20, 59, 59, tzinfo=UTC),
    )
    assert HistoryDetails.of(details.params()) == details
    assert HistoryDetails().params() == {} and HistoryDetails.of(None) == HistoryDetails()
    assert HistoryDetails.of({"reason": "rude", "days": 5}) == HistoryDetails(days=5)


async def test_every_event_has_a_sentence_of_its_own_in_every_language(services: Any) -> None:
    from datetime import UTC, datetime

    from bot.config import LOCALES
    from bot.domain import HistoryDetails, HistoryEvent
    from bot.i18n import create_i18n
    from bot.services.appeals import HistoryEntry
    from handlers.history import sentence

    settings = services.appeals.settings
    i18n = create_i18n(settings)
    tz = settings.tz
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    details = HistoryDetails(days=20, deadline=at, original="2026-000001", reason="unreadable")  # type: ignore[arg-type]
    said: dict[str, dict[HistoryEvent, str]] = {}
    with i18n.context():
        for lang in LOCALES:
            with i18n.use_locale(lang):
                said[lang] = {
                    event: sentence(HistoryEntry(event, S.closed, details, at), services.directory, lang, tz)
                    for event in HistoryEvent
                }
    for lang, sentences in said.items():
        # One sentence per event, none a code, each translated.
        assert len(set(sentences.values())) == len(HistoryEvent), lang
        for event, words in sentences.items():
            assert words and words != event.value and "_" not in words, (lang, event, words)
            assert lang == "en" or words != said["en"][event], (lang, event, words)


async def test_a_long_history_on_the_staff_card_says_how_many_earlier_entries_it_leaves_out(
    harness: Harness, world: World
) -> None:
    s = world.services
    row = await world.clarification()
    for question in ("Which entrance?", "Since when exactly?"):
        await s.replies.reply_clarification(world["owner"], row.id, "The second entrance, since Monday", ())
        await s.agency.ask_clarification(world["official"], row.id, question)
    entries = len(await rows(s, StatusHistory, StatusHistory.appeal_id == row.id))
    assert entries > 6
    history = (await staff_card(harness, row.id)).split("History:")[1].strip().splitlines()
    assert history[0] == f"… {entries - 6} earlier entries", history
    assert len(history) == 1 + 6
