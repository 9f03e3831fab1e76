"""The resident judges the answer (issue 12), end to end: the bot polls the emulator, the resident presses the
buttons and writes as a person would; staff's side (routing, answering, approving) is driven through the services,
and time travels with the ManualClock, the scheduler's sweep run by hand where the scheduler would run it.

What is checked is what people receive (messages, buttons, popups) and the rows the bot keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.callbacks import FixCb, RateAction, RateCb
from bot.domain import FollowupAnswer
from emulator import EmulatedUser
from storage.models import Appeal, AppealMessage, Attachment, Followup, Rating, Reminder, StatusHistory
from tests.conftest import Harness
from tests.factories import TG, World, appeal, make_world

MSK = ZoneInfo("Europe/Moscow")
FIVE = "5 — the problem is solved"
FOUR = "4 — helped"
THREE = "3 — helped in part"
TWO = "2 — rather did not help"
ONE = "1 — did not help at all"
LABELS = [FIVE, FOUR, THREE, TWO, ONE]
YES_BACK = "🔁 Yes, send it back"
NO_CLOSE = "No, close the appeal"
SEND_BACK = "📤 Send back"
NOT_FOUND = "Appeal not found."
STALE = "This button is no longer active."


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK).astimezone(UTC)


def minute(moment: datetime | None) -> datetime | None:
    """To the minute: the outbox's rate limiter moves the manual clock by milliseconds while messages go out."""
    return moment.replace(second=0, microsecond=0) if moment is not None else None


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [TG["admin"]]}}


async def world(harness: Harness) -> World:
    """Everyone of factories.TG speaking English; the owner and the supervisor have written to the bot."""
    assert harness.app is not None
    services = harness.app.services
    harness.clock.set(at(11, 2, 12))
    built = await make_world(services, harness.clock)
    for name in ("coordinator", "official", "supervisor", "owner", "other"):
        built.people[name] = await services.users.set_locale(built[name], "en")
        await harness.emu.user(TG[name], language_code="en").send_text("/start")
    await harness.settle()
    return built


def person(harness: Harness, name: str) -> EmulatedUser:
    return harness.emu.user(TG[name])


async def answered(harness: Harness, people: World, text: str = "The water is back since 4 November", **changes: object) -> Appeal:
    """An appeal answered by the official and approved by the coordinator: the owner got the answer."""
    row = await people.answer_review(text, **changes)
    harness.clock.advance(hours=1)
    await people.services.coordination.review(people["coordinator"], row.id, True)
    await harness.settle()
    return await appeal(people.services, row.id)


async def again(harness: Harness, people: World, row: Appeal, text: str = "The pipe is replaced") -> None:
    """A re-opened appeal routed, taken, answered and approved once more."""
    s = people.services
    await s.coordination.route(people["coordinator"], row.id)
    await s.agency.take(people["official"], row.id)
    await s.agency.answer(people["official"], row.id, text)
    harness.clock.advance(hours=1)
    await s.coordination.review(people["coordinator"], row.id, True)
    await harness.settle()


async def sweep_at(harness: Harness, moment: datetime) -> None:
    assert harness.app is not None and harness.app.scheduler is not None
    harness.clock.set(moment)
    job = harness.app.scheduler.get_job("sweep")
    assert job is not None
    await job.func()
    await harness.settle()


async def press(harness: Harness, user: EmulatedUser, label: str, message_id: int | None = None) -> str | None:
    """Press a button; the popup's text (None when there is none)."""
    answers = len(user.callback_answers)
    await user.click(label, message_id=message_id)
    await harness.settle()
    assert len(user.callback_answers) == answers + 1, "every press is answered once"
    return user.callback_answers[-1].get("text")


async def forge(harness: Harness, user: EmulatedUser, data: str, message_id: int | None = None) -> dict[str, Any]:
    """A press with made-up (or kept) callback data, on the user's newest message by default; the callback answer."""
    assert user.last_message is not None
    answers = len(user.callback_answers)
    await user.press_callback(message_id or user.last_message.message_id, data)
    await harness.settle()
    assert len(user.callback_answers) == answers + 1
    return user.callback_answers[-1]


def request_of(user: EmulatedUser, number: str) -> int:
    """The id of the newest rating request of appeal `number` in the user's chat."""
    return next(
        m.message_id for m in reversed(user.messages) if number in (m.text or "") and FIVE in m.buttons
    )


async def ratings(harness: Harness, appeal_id: int) -> list[tuple[int, int, str | None]]:
    return [(r.note_id, r.score, r.comment) for r in await harness.rows(Rating, Rating.appeal_id == appeal_id)]


async def pending_kinds(harness: Harness, appeal_id: int) -> dict[str, datetime]:
    found = await harness.rows(Reminder, Reminder.appeal_id == appeal_id, Reminder.sent_at.is_(None))
    return {r.kind: minute(r.due_at) for r in found}


async def events(harness: Harness, appeal_id: int) -> list[str]:
    return [h.event for h in sorted(await harness.rows(StatusHistory, StatusHistory.appeal_id == appeal_id), key=lambda h: h.id)]


async def state(harness: Harness) -> dict[str, Any]:
    """Every row a press could change."""
    return {
        "appeals": sorted((a.id, a.status, a.reopen_count) for a in await harness.rows(Appeal)),
        "ratings": sorted((r.id, r.score, r.comment, r.updated_at) for r in await harness.rows(Rating)),
        "followups": sorted((f.id, f.answer, f.comment) for f in await harness.rows(Followup)),
        "history": len(await harness.rows(StatusHistory)),
        "notes": len(await harness.rows(AppealMessage)),
        "reminders": sorted((r.id, r.kind, r.sent_at) for r in await harness.rows(Reminder)),
    }


# --- the request and the branches -------------------------------------------------------------------------


async def test_the_owner_rates_the_answer_and_a_5_closes_the_appeal(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    original = await people.file()
    follower = await people.file("other")
    await s.coordination.mark_duplicate(people["coordinator"], follower.id, original.number)
    await s.coordination.route(people["coordinator"], original.id)
    await s.agency.take(people["official"], original.id)
    await s.agency.answer(people["official"], original.id, "The water is back since 4 November")
    await s.coordination.review(people["coordinator"], original.id, True)
    await harness.settle()

    owner, other = person(harness, "owner"), person(harness, "other")
    answer = next(m for m in owner.messages if "Answer to your appeal" in (m.text or ""))
    request = owner.last_message
    assert request.message_id > answer.message_id  # right after the answer
    assert f"How helpful was the answer to your appeal № {original.number}" in request.text
    assert request.buttons == LABELS
    # The follower of the duplicate gets the answer, not the buttons: the owner judges.
    assert any("Answer to your appeal" in (m.text or "") for m in other.messages)
    assert not any(FIVE in m.buttons for m in other.messages)

    popup = await press(harness, owner, FIVE)
    assert popup == "Thank you! Your rating: 5 of 5."
    assert f"Appeal № {original.number} is closed" in owner.last_message.text
    row = await appeal(s, original.id)
    assert row.status == "closed"
    [rating] = await harness.rows(Rating)
    [note] = await harness.rows(AppealMessage, AppealMessage.kind == "answer")
    assert (rating.appeal_id, rating.note_id, rating.score, rating.user_id) == (row.id, note.id, 5, people["owner"].id)
    assert (rating.agency_id, rating.official_id) == (people.agency, people["official"].id)
    assert (await events(harness, row.id))[-1] == "closed"
    # Rated: no reminder, no closing without a rating; a physical problem: "is it fixed?" in 14 days, at 09:00.
    assert await pending_kinds(harness, row.id) == {"followup": at(11, 16, 12)}


async def test_a_3_closes_and_asks_what_could_be_better_a_sticker_and_5000_characters_are_refused(
    harness: Harness,
) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, THREE)
    question = owner.last_message
    assert "What could have been better?" in question.text and question.buttons == ["⏭ Skip"]
    assert (await appeal(people.services, row.id)).status == "closed"
    before = await state(harness)

    await owner.send_sticker()
    await harness.settle()
    assert owner.last_message.text == "Please write the comment as text, or press «Skip»."
    await owner.send_text("x" * 5000)
    await harness.settle()
    assert owner.last_message.text == "The comment is too long: 5000 characters, at most 1000. Please shorten it."
    assert await state(harness) == before  # nothing kept of either

    await owner.send_text("Faster, & <please>")
    await harness.settle()
    assert owner.last_message.text == "Thank you, your comment is passed on."
    [(_note, score, comment)] = await ratings(harness, row.id)
    assert (score, comment) == (3, "Faster, & <please>")
    # The question's «Skip» went with it: no dead button is left behind.
    assert next(m for m in owner.messages if m.message_id == question.message_id).buttons == []


async def test_a_3_comment_can_be_skipped(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, THREE)
    await press(harness, owner, "⏭ Skip")
    assert owner.last_message.text == "Thank you!"
    await owner.send_text("this is not a comment any more")
    await harness.settle()
    assert [(s, c) for _n, s, c in await ratings(harness, row.id)] == [(3, None)]


async def test_a_low_rating_and_no_closes_the_appeal_with_the_score_kept(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, ONE)
    assert "Send it back for another review?" in owner.last_message.text
    assert owner.last_message.buttons == [YES_BACK, NO_CLOSE]
    assert (await appeal(people.services, row.id)).status == "answered"  # waits for the answer
    await press(harness, owner, NO_CLOSE)
    assert f"Appeal № {row.number} is closed; your rating is kept" in owner.last_message.text
    assert (await appeal(people.services, row.id)).status == "closed"
    assert [s for _n, s, _c in await ratings(harness, row.id)] == [1]
    assert await pending_kinds(harness, row.id) == {}  # no reminders, and no follow-up for a 1


async def test_a_low_rating_sends_the_appeal_back_and_its_new_answer_is_rated_again(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    row = await answered(harness, people)
    owner, supervisor = person(harness, "owner"), person(harness, "supervisor")
    await press(harness, owner, TWO)
    await press(harness, owner, YES_BACK)
    assert "describe what is still wrong" in owner.last_message.text
    before = await state(harness)

    await owner.send_sticker()
    await harness.settle()
    assert owner.last_message.text == "Please describe what is wrong as text; you may add photos."
    await owner.send_text("y" * 5000)
    await harness.settle()
    assert owner.last_message.text == "The text is too long: 5000 characters, at most 4000. Please shorten it."
    assert await state(harness) == before

    await owner.send_text("Water runs for an hour a day <only>")
    await harness.settle()
    await owner.send_photo()
    await harness.settle()
    assert owner.last_message.text == "📎 Photos attached: 1 of 10."
    seen = len(supervisor.messages)
    harness.clock.advance(days=2)  # sent back two days after the answer
    await press(harness, owner, SEND_BACK)
    assert f"Appeal № {row.number} is sent back for another review" in owner.last_message.text

    reopened = await appeal(s, row.id)
    assert (reopened.status, reopened.number, reopened.reopen_count) == ("reopened", row.number, 1)
    assert (await events(harness, row.id))[-1] == "reopened"
    [note] = await harness.rows(AppealMessage, AppealMessage.kind == "reopen")
    assert (note.text, note.author_id) == ("Water runs for an hour a day <only>", people["owner"].id)
    [photo] = await harness.rows(Attachment, Attachment.message_id == note.id)
    assert photo.kind == "photo"
    [(_n, score, comment)] = await ratings(harness, row.id)
    assert (score, comment) == (2, "Water runs for an hour a day <only>")
    told = [m for m in supervisor.messages[seen:] if row.number in (m.text or "")]
    assert len(told) == 1 and "rated the answer" in told[0].text and "2 of 5" in told[0].text
    assert "Water runs for an hour a day <only>" in told[0].text
    assert supervisor.last_message.kind == "photo"  # the resident's photo follows
    queue = await s.views.queue(people["coordinator"])
    assert row.id in [i.id for i in queue.items]  # back with the coordinators
    assert await pending_kinds(harness, row.id) == {}
    # The old answer cannot be judged again: the appeal waits for a new one.
    assert await press(harness, owner, FIVE, request_of(owner, row.number)) == "You have already rated this answer."
    card = await card_of(harness, owner, row.number)
    assert "Your rating of the previous answer: 2 of 5" in card.text and "⭐ Rate the answer" not in card.buttons

    # Routed again days later, it gets a term of its own from the day it came back, not the old one.
    came_back = harness.clock.now()
    harness.clock.advance(days=3)
    await again(harness, people, row)
    routed = await appeal(s, row.id)
    # The agency reads at once that it is back, and why, in the resident's words.
    back = [m.text or "" for m in person(harness, "official").messages if "back for another review" in (m.text or "")]
    assert len(back) == 1 and row.number in back[0] and "Water runs for an hour a day <only>" in back[0]
    policy = s.coordination.deadlines
    assert routed.deadline_at == policy.initial(came_back, routed.kind, routed.category_id)
    assert routed.deadline_at != reopened.deadline_at and not routed.extension_used
    request = owner.last_message
    assert FIVE in request.buttons and row.number in request.text
    assert set(await pending_kinds(harness, row.id)) == {"rate_reminder", "rate_close"}
    # The first answer's request is still in the chat: its buttons do not rate the new answer.
    old_request = next(m.message_id for m in owner.messages if row.number in (m.text or "") and FIVE in m.buttons)
    assert old_request != request.message_id
    unchanged = await state(harness)
    assert await press(harness, owner, ONE, old_request) == (
        "These buttons are for an earlier answer. The appeal has a newer one: rate it from its message or from "
        "«📋 My appeals»."
    )
    assert await state(harness) == unchanged
    await press(harness, owner, FIVE)
    assert (await appeal(s, row.id)).status == "closed"
    first, second = await ratings(harness, row.id)
    assert first[1:] == (2, "Water runs for an hour a day <only>") and second[1:] == (5, None)
    assert first[0] != second[0]  # one rating per answer
    notes = await harness.rows(AppealMessage, AppealMessage.kind == "answer", AppealMessage.status == "approved")
    assert sorted(n.id for n in notes) == sorted([first[0], second[0]])


async def test_reopening_is_refused_after_the_days_and_a_new_appeal_starts_prefilled(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, ONE)
    harness.clock.advance(days=31)
    before = await state(harness)
    await press(harness, owner, YES_BACK)
    text = owner.last_message.text
    assert "within 30 days of the answer, and that time has passed" in text
    assert "You can file a new appeal about the problem" in text
    assert owner.last_message.buttons == ["📝 File a new appeal"]
    assert await state(harness) == before

    await press(harness, owner, "📝 File a new appeal")
    assert "Describe the problem" in owner.last_message.text
    await owner.send_text("The water is gone again since Monday")
    await harness.settle()
    preview = owner.last_message.text
    assert "Check your appeal" in preview
    assert "No water supply" in preview and "Grozny" in preview and "ул. Мира, 1" in preview
    await owner.click("✅ Confirm")
    await harness.settle()
    assert "Your appeal is registered" in owner.last_message.text
    new = (await harness.rows(Appeal, Appeal.id != row.id))[-1]
    assert (new.category_id, new.district_id, new.address, new.kind) == (
        row.category_id,
        row.district_id,
        row.address,
        row.kind,
    )
    assert new.text == "The water is gone again since Monday" and new.number != row.number


async def test_reopening_is_refused_after_max_reopens(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    row = await answered(harness, people)
    owner = people["owner"]
    for turn in range(2):  # ratings.max_reopens = 2: the first two go back
        await s.ratings.rate(owner, row.id, 1)
        await s.ratings.reopen(owner, row.id, f"Still broken ({turn})")
        await again(harness, people, row)
    assert (await appeal(s, row.id)).reopen_count == 2
    user = person(harness, "owner")
    await press(harness, user, ONE)
    before = await state(harness)
    await press(harness, user, YES_BACK)
    assert "already been sent back 2 times, the most there can be" in user.last_message.text
    assert user.last_message.buttons == ["📝 File a new appeal"]
    assert await state(harness) == before
    assert (await appeal(s, row.id)).status == "answered"


# --- the reminder and the closing without a rating ------------------------------------------------------


async def test_one_reminder_in_the_morning_then_closed_without_a_rating(harness: Harness) -> None:
    people = await world(harness)
    harness.clock.set(at(11, 2, 22))  # approved late in the evening
    row = await answered(harness, people)
    owner = person(harness, "owner")
    assert minute(row.answered_at) == at(11, 2, 23)
    assert await pending_kinds(harness, row.id) == {
        "rate_reminder": at(11, 6, 9),  # 3 days later falls at 23:00: held until the morning
        "rate_close": at(11, 10, 9),
    }
    seen = len(owner.messages)
    await sweep_at(harness, at(11, 5, 23, 30))  # quiet hours: nothing
    assert len(owner.messages) == seen
    await sweep_at(harness, at(11, 6, 9, 1))
    [reminder] = owner.messages[seen:]
    assert "was answered a few days ago. Did the answer help?" in reminder.text and reminder.buttons == LABELS
    await sweep_at(harness, at(11, 7, 9))
    await sweep_at(harness, at(11, 8, 12))
    assert len(owner.messages) == seen + 1  # one reminder only
    assert (await appeal(people.services, row.id)).status == "answered"

    await sweep_at(harness, at(11, 10, 9, 1))
    closed = await appeal(people.services, row.id)
    assert closed.status == "closed"
    assert await harness.rows(Rating) == []  # no made-up score
    history = sorted(await harness.rows(StatusHistory, StatusHistory.appeal_id == row.id), key=lambda h: h.id)
    assert (history[-1].event, history[-1].to_status, history[-1].actor_id) == ("closed_unrated", "closed", None)
    notice = owner.last_message
    assert "is closed without a rating. You can still rate the answer" in notice.text and notice.buttons == LABELS
    # The resident's history says so.
    await owner.send_text("/my")
    await harness.settle()
    await owner.click(next(b for b in owner.last_message.buttons if row.number in b))
    await harness.settle()
    assert "Closed without a rating: the answer was not rated within 7 days" in owner.last_message.text
    # Rated late, the appeal stays closed and the score is kept.
    await press(harness, owner, FOUR)
    assert [s for _n, s, _c in await ratings(harness, row.id)] == [4]
    assert (await appeal(people.services, row.id)).status == "closed"


async def test_a_rating_given_before_the_reminder_stops_it(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, FOUR)
    seen = len(owner.messages)
    await sweep_at(harness, at(11, 9, 12))
    assert len(owner.messages) == seen
    assert await pending_kinds(harness, row.id) == {"followup": at(11, 16, 13)}


# --- a second press, and forged presses ---------------------------------------------------------------


async def test_a_score_changes_within_edit_hours_and_is_final_after(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    request = request_of(owner, row.number)
    await press(harness, owner, FOUR, request)
    assert await press(harness, owner, FOUR, request) == "Your rating is already 4 of 5."
    harness.clock.advance(hours=2)
    await press(harness, owner, FIVE, request)
    assert "Your rating is changed to 5 of 5." in owner.last_message.text
    [rating] = await harness.rows(Rating)
    assert (rating.score, minute(rating.updated_at)) == (5, minute(harness.clock.now()))
    harness.clock.advance(hours=23)  # 25 hours after the rating
    before = await state(harness)
    assert await press(harness, owner, ONE, request) == "You have already rated this answer."
    assert await state(harness) == before


async def test_forged_and_misplaced_rating_presses_change_nothing(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    row = await answered(harness, people)
    working = await people.in_progress()
    other, owner = person(harness, "other"), person(harness, "owner")
    before = await state(harness)

    # Someone else's appeal: it looks like a missing one.
    answer = await forge(harness, other, RateCb(action=RateAction.score, id=row.id, v=5).pack())
    assert (answer.get("text"), answer.get("show_alert")) == (NOT_FOUND, True)
    for action in RateAction:
        answer = await forge(harness, other, RateCb(action=action, id=row.id, v=1).pack())
        assert answer.get("text") in (NOT_FOUND, STALE), action
    answer = await forge(harness, other, FixCb(id=row.id, answer=FollowupAnswer.yes).pack())
    assert answer.get("text") == NOT_FOUND
    # Not answered yet.
    answer = await forge(harness, owner, RateCb(action=RateAction.score, id=working.id, v=5).pack())
    assert answer.get("text") == "This appeal has no answer to rate yet."
    # Scores out of range, and not a number at all.
    for value in (0, 6):
        answer = await forge(harness, owner, RateCb(action=RateAction.score, id=row.id, v=value).pack())
        assert answer.get("text") == "There is no such rating. Choose from 1 to 5.", value
    # A negative number is outside the callback data's range (bot.callbacks.Num): refused as a stale button.
    for data in (f"rt:s:{row.id}:-1:0", f"rt:s:{row.id}:x", "rt:s:x:5", f"rt:zz:{row.id}:5", f"fx:{row.id}:maybe"):
        answer = await forge(harness, owner, data)
        assert answer.get("text") == STALE, data
    # A decision or a comment without a rating, a follow-up never asked.
    answer = await forge(harness, owner, RateCb(action=RateAction.keep, id=row.id).pack())
    assert answer.get("text") == "Please rate the answer first."
    answer = await forge(harness, owner, RateCb(action=RateAction.reopen, id=row.id).pack())
    assert answer.get("text") == "Please rate the answer first."
    answer = await forge(harness, owner, FixCb(id=row.id, answer=FollowupAnswer.no).pack())
    assert answer.get("text") == "This question is no longer open."
    answer = await forge(harness, owner, RateCb(action=RateAction.send, id=row.id).pack())
    assert answer.get("text") == STALE
    assert await state(harness) == before
    assert (await appeal(s, row.id)).status == "answered"


# --- "Is the problem actually fixed?" -------------------------------------------------------------------


async def test_followup_no_sends_a_physical_problem_back(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, FOUR)  # 13:00 on 2 November
    seen = len(owner.messages)
    await sweep_at(harness, at(11, 16, 12, 59))
    assert len(owner.messages) == seen  # not yet
    await sweep_at(harness, at(11, 16, 13, 1))
    question = owner.last_message
    assert "Is the problem actually fixed?" in question.text and row.number in question.text
    assert question.buttons == ["✅ Yes", "❌ No", "🤷 Don't know"]
    [asked] = await harness.rows(Followup)
    assert (asked.appeal_id, asked.answer, minute(asked.asked_at)) == (row.id, None, at(11, 16, 13, 1))

    await press(harness, owner, "❌ No")
    assert "describe what is still wrong" in owner.last_message.text
    await owner.send_text("The pipe leaks again")
    await harness.settle()
    await press(harness, owner, SEND_BACK)
    reopened = await appeal(people.services, row.id)
    assert (reopened.status, reopened.reopen_count) == ("reopened", 1)
    [asked] = await harness.rows(Followup)
    assert (asked.answer, asked.comment, minute(asked.answered_at)) == ("no", "The pipe leaks again", minute(harness.clock.now()))
    # Still one follow-up per appeal: answered, it is not open any more.
    assert await press(harness, owner, "✅ Yes", question.message_id) == "This question is no longer open."
    await sweep_at(harness, at(12, 30, 12))
    assert len(await harness.rows(Followup)) == 1


async def test_followup_yes_is_kept_and_asked_once(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, THREE)
    await press(harness, owner, "⏭ Skip")
    await sweep_at(harness, at(11, 16, 13, 1))
    question = owner.last_message.message_id
    await press(harness, owner, "✅ Yes")
    assert owner.last_message.text == "Thank you, your answer is saved."
    [asked] = await harness.rows(Followup)
    assert (asked.answer, minute(asked.answered_at)) == ("yes", minute(harness.clock.now()))
    assert (await appeal(people.services, row.id)).status == "closed"
    data = FixCb(id=row.id, answer=FollowupAnswer.unknown).pack()
    assert (await forge(harness, owner, data, question)).get("text") == "This question is no longer open."
    await sweep_at(harness, at(12, 30, 12))
    assert [f.answer for f in await harness.rows(Followup)] == ["yes"]


async def test_no_followup_for_other_problems_low_ratings_rejected_and_duplicate_appeals(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    quality = next(
        c.id for b in s.directory.blocks() for c in s.directory.categories(b.id) if c.code == "housing_water_quality"
    )
    not_physical = await answered(harness, people, category_id=quality)
    low = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, FIVE, request_of(owner, not_physical.number))
    await press(harness, owner, TWO, request_of(owner, low.number))
    await press(harness, owner, NO_CLOSE)
    rejected = await people.file()
    await s.coordination.reject(people["coordinator"], rejected.id, "spam")
    duplicate, original = await people.file(), await people.file()
    await s.coordination.mark_duplicate(people["coordinator"], duplicate.id, original.number)
    for closed in (rejected, duplicate):
        answer = await forge(harness, owner, RateCb(action=RateAction.score, id=closed.id, v=5).pack())
        assert answer.get("text") == "This appeal has no answer to rate yet."
    await sweep_at(harness, at(12, 20, 12))
    assert await harness.rows(Followup) == []
    assert not any("Is the problem actually fixed?" in (m.text or "") for m in owner.messages)


# --- the resident's card ----------------------------------------------------------------------------------


async def test_the_card_offers_to_rate_and_shows_the_rating(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")

    async def card() -> Any:
        await owner.send_text("/my")
        await harness.settle()
        await owner.click(next(b for b in owner.last_message.buttons if row.number in b))
        await harness.settle()
        return owner.last_message

    shown = await card()
    assert "⭐ Rate the answer" in shown.buttons and "Your rating" not in shown.text
    await press(harness, owner, "⭐ Rate the answer")
    assert owner.last_message.buttons == LABELS
    await press(harness, owner, FOUR)
    shown = await card()
    assert "Your rating: 4 of 5" in shown.text and "⭐ Rate the answer" not in shown.buttons


async def test_cancel_while_writing_why_changes_nothing_and_the_question_stays(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, ONE)
    question = owner.last_message.message_id
    await press(harness, owner, YES_BACK)
    await owner.send_text("Half of it")
    await harness.settle()
    before = await state(harness)
    await owner.send_text("/cancel")
    await harness.settle()
    assert owner.last_message.text == "Cancelled. Nothing was saved."
    assert await state(harness) == before
    assert not any(SEND_BACK in m.buttons for m in owner.messages)  # the prompt's button went with it
    await press(harness, owner, YES_BACK, question)  # the question is still there
    assert "describe what is still wrong" in owner.last_message.text
    assert (await appeal(people.services, row.id)).status == "answered"


# --- a lost "Send it back?", an optional comment after any score, the followers told ----------------------

SEND_IT_BACK = "🔁 Send it back"
ADD_COMMENT = "💬 Add a comment"


async def card_of(harness: Harness, user: EmulatedUser, number: str) -> Any:
    """The resident's card of appeal `number`, opened from «My appeals»."""
    await user.send_text("/my")
    await harness.settle()
    await user.click(next(b for b in user.last_message.buttons if number in b))
    await harness.settle()
    return user.last_message


async def test_the_same_low_score_pressed_again_asks_send_it_back_again(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    request = request_of(owner, row.number)
    await press(harness, owner, ONE, request)
    first = owner.last_message.message_id
    before = await state(harness)
    await press(harness, owner, ONE, request)  # the question was lost: the same score brings it back
    assert owner.last_message.message_id != first
    assert "Send it back for another review?" in owner.last_message.text
    assert owner.last_message.buttons == [YES_BACK, NO_CLOSE]
    assert await state(harness) == before  # nothing changed
    # Closed with the low score kept, a day later (past edit_hours): still the question, and it works.
    await press(harness, owner, NO_CLOSE)
    harness.clock.advance(days=2)
    await press(harness, owner, ONE, request)
    assert "Send it back for another review?" in owner.last_message.text
    await press(harness, owner, YES_BACK)
    await owner.send_text("Still no water")
    await harness.settle()
    await press(harness, owner, SEND_BACK)
    assert (await appeal(people.services, row.id)).status == "reopened"


async def test_the_same_low_score_past_the_days_asks_nothing(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    request = request_of(owner, row.number)
    await press(harness, owner, TWO, request)
    await press(harness, owner, NO_CLOSE)
    harness.clock.advance(days=31)
    seen = len(owner.messages)
    before = await state(harness)
    assert await press(harness, owner, TWO, request) == "You have already rated this answer."
    assert len(owner.messages) == seen and await state(harness) == before


async def test_the_card_offers_send_it_back_while_a_low_rated_answer_can_go_back(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, TWO)
    await press(harness, owner, NO_CLOSE)
    shown = await card_of(harness, owner, row.number)
    assert "Your rating: 2 of 5" in shown.text
    assert SEND_IT_BACK in shown.buttons and "⭐ Rate the answer" not in shown.buttons
    await press(harness, owner, SEND_IT_BACK)
    assert "describe what is still wrong" in owner.last_message.text
    await owner.send_text("Nothing changed <at all>")
    await harness.settle()
    await press(harness, owner, SEND_BACK)
    assert ((await appeal(s, row.id)).status, (await appeal(s, row.id)).reopen_count) == ("reopened", 1)
    shown = await card_of(harness, owner, row.number)
    assert SEND_IT_BACK not in shown.buttons  # waits for a new answer

    # The second answer rated 1: offered again (1 of 2 re-openings used) until the days pass.
    await again(harness, people, row)
    await press(harness, owner, ONE)
    await press(harness, owner, NO_CLOSE)
    assert SEND_IT_BACK in (await card_of(harness, owner, row.number)).buttons
    harness.clock.advance(days=31)
    shown = await card_of(harness, owner, row.number)
    assert SEND_IT_BACK not in shown.buttons and "Your rating: 1 of 5" in shown.text
    assert "send" not in shown.text.lower()  # the card says nothing about it


async def test_the_card_says_nothing_of_sending_back_past_max_reopens_or_for_a_good_score(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    row = await answered(harness, people)
    owner = person(harness, "owner")
    for turn in range(2):  # ratings.max_reopens = 2
        await s.ratings.rate(people["owner"], row.id, 1)
        await s.ratings.reopen(people["owner"], row.id, f"Still broken ({turn})")
        await again(harness, people, row)
    await press(harness, owner, ONE)
    await press(harness, owner, YES_BACK)  # past the limit: the new-appeal offer
    shown = await card_of(harness, owner, row.number)
    assert "Your rating: 1 of 5" in shown.text and SEND_IT_BACK not in shown.buttons
    good = await answered(harness, people)
    await press(harness, owner, FOUR, request_of(owner, good.number))
    assert SEND_IT_BACK not in (await card_of(harness, owner, good.number)).buttons


async def test_followup_no_past_the_limits_is_recorded_and_offers_a_new_appeal(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, FIVE)
    await sweep_at(harness, at(11, 16, 13, 1))
    question = owner.last_message.message_id
    harness.clock.set(at(12, 3, 12))  # 31 days after the answer
    await press(harness, owner, "❌ No", question)
    assert "within 30 days of the answer, and that time has passed" in owner.last_message.text
    assert owner.last_message.buttons == ["📝 File a new appeal"]
    [asked] = await harness.rows(Followup)
    assert (asked.answer, minute(asked.answered_at)) == ("no", at(12, 3, 12))
    assert (await appeal(people.services, row.id)).status == "closed"
    # The staff's card reads the answer.
    card = await people.services.views.card(people["coordinator"], row.id)
    assert card.followup is not None and card.followup.answer == "no"
    # Answered: the question is closed, the offer of a new appeal stays.
    assert await press(harness, owner, "✅ Yes", question) == "This question is no longer open."
    await press(harness, owner, "📝 File a new appeal")
    assert "Describe the problem" in owner.last_message.text


async def test_a_4_or_5_offers_an_optional_comment(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, FOUR)
    closed = owner.last_message
    assert f"Appeal № {row.number} is closed" in closed.text and closed.buttons == [ADD_COMMENT]
    # Not a forced step: a text now is not taken for a comment.
    await owner.send_text("hello")
    await harness.settle()
    assert [c for _n, _s, c in await ratings(harness, row.id)] == [None]

    await press(harness, owner, ADD_COMMENT, closed.message_id)
    assert "write your comment in one message" in owner.last_message.text
    assert owner.last_message.buttons == ["⏭ Skip"]
    before = await state(harness)
    await owner.send_sticker()
    await harness.settle()
    assert owner.last_message.text == "Please write the comment as text, or press «Skip»."
    await owner.send_text("z" * 5000)
    await harness.settle()
    assert owner.last_message.text == "The comment is too long: 5000 characters, at most 1000. Please shorten it."
    assert await state(harness) == before
    await owner.send_text("Quick & <polite>")
    await harness.settle()
    assert owner.last_message.text == "Thank you, your comment is passed on."
    assert [(s, c) for _n, s, c in await ratings(harness, row.id)] == [(4, "Quick & <polite>")]
    # After edit_hours the rating is final: so is its comment.
    harness.clock.advance(hours=25)
    assert await press(harness, owner, ADD_COMMENT, closed.message_id) == "You have already rated this answer."


async def test_no_close_after_a_low_score_offers_an_optional_comment(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, ONE)
    await press(harness, owner, NO_CLOSE)
    kept = owner.last_message
    assert "closed; your rating is kept" in kept.text and kept.buttons == [ADD_COMMENT]
    await press(harness, owner, ADD_COMMENT)
    await press(harness, owner, "⏭ Skip")
    assert owner.last_message.text == "Thank you!"
    assert [c for _n, _s, c in await ratings(harness, row.id)] == [None]
    await press(harness, owner, ADD_COMMENT, kept.message_id)  # changed their mind: the offer is still there
    await owner.send_text("The answer was rude")
    await harness.settle()
    assert [(s, c) for _n, s, c in await ratings(harness, row.id)] == [(1, "The answer was rude")]


async def test_those_whose_duplicates_follow_are_told_of_closing_and_reopening(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    original = await people.file()
    follower = await people.file("other")
    await s.coordination.mark_duplicate(people["coordinator"], follower.id, original.number)
    await s.coordination.route(people["coordinator"], original.id)
    await s.agency.take(people["official"], original.id)
    await s.agency.answer(people["official"], original.id, "Done")
    await s.coordination.review(people["coordinator"], original.id, True)
    await harness.settle()
    owner, other = person(harness, "owner"), person(harness, "other")

    def told(user: EmulatedUser, status: str) -> list[str]:
        return [m.text for m in user.messages if m.text == f"Your appeal № {original.number}: {status}."]

    # A low score sent back: the follower learns it is reopened; the owner had the direct reply only.
    await press(harness, owner, TWO)
    await press(harness, owner, YES_BACK)
    await owner.send_text("Nothing was done")
    await harness.settle()
    await press(harness, owner, SEND_BACK)
    assert len(told(other, "Reopened")) == 1 and told(owner, "Reopened") == []
    # Answered again and rated 5: closed, told once.
    await again(harness, people, await appeal(s, original.id))
    await press(harness, owner, FIVE)
    assert len(told(other, "Closed")) == 1 and told(owner, "Closed") == []


async def test_followers_are_told_of_a_no_close_and_of_the_sweeps_closing(harness: Harness) -> None:
    people = await world(harness)
    s = people.services
    kept, unrated = await people.file(), await people.file()
    for row, who in ((kept, "other"), (unrated, "other")):
        duplicate = await people.file(who)
        await s.coordination.mark_duplicate(people["coordinator"], duplicate.id, row.number)
        await s.coordination.route(people["coordinator"], row.id)
        await s.agency.take(people["official"], row.id)
        await s.agency.answer(people["official"], row.id, "Done")
        await s.coordination.review(people["coordinator"], row.id, True)
    await harness.settle()
    owner, other = person(harness, "owner"), person(harness, "other")
    await press(harness, owner, ONE, request_of(owner, kept.number))
    await press(harness, owner, NO_CLOSE)
    assert [m.text for m in other.messages if m.text == f"Your appeal № {kept.number}: Closed."] != []
    await sweep_at(harness, at(11, 10, 12))  # 7 days: closed without a rating
    assert (await appeal(s, unrated.id)).status == "closed"
    assert len([m for m in other.messages if m.text == f"Your appeal № {unrated.number}: Closed."]) == 1
    assert not any(m.text == f"Your appeal № {unrated.number}: Closed." for m in owner.messages)


async def test_followup_no_written_within_the_days_and_sent_past_them_is_kept_with_its_words(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner = person(harness, "owner")
    await press(harness, owner, FIVE)
    await sweep_at(harness, at(11, 16, 13, 1))
    harness.clock.set(at(12, 2, 12))  # day 30 after the answer: still allowed
    await press(harness, owner, "❌ No")
    await owner.send_text("The lamp is dark again")
    await harness.settle()
    assert [f.answer for f in await harness.rows(Followup)] == [None]  # not sent yet
    harness.clock.set(at(12, 3, 12))  # sent a day later: past the days
    await press(harness, owner, SEND_BACK)
    assert "within 30 days of the answer, and that time has passed" in owner.last_message.text
    [asked] = await harness.rows(Followup)
    assert (asked.answer, asked.comment, minute(asked.answered_at)) == ("no", "The lamp is dark again", at(12, 3, 12))
    assert (await appeal(people.services, row.id)).status == "closed"


async def test_a_photo_with_a_caption_sends_the_appeal_back_with_those_words(harness: Harness) -> None:
    people = await world(harness)
    row = await answered(harness, people)
    owner, supervisor = person(harness, "owner"), person(harness, "supervisor")
    await press(harness, owner, TWO)
    await press(harness, owner, YES_BACK)
    await owner.send_photo(caption="The tap is still dry")
    await harness.settle()
    await press(harness, owner, SEND_BACK)
    assert f"Appeal № {row.number} is sent back for another review" in owner.last_message.text
    [note] = await harness.rows(AppealMessage, AppealMessage.kind == "reopen")
    assert note.text == "The tap is still dry"
    assert any("The tap is still dry" in (m.text or "") for m in supervisor.messages)
