"""RatingService without Telegram: the rules of rating an answer, changing a score, sending an appeal back, and the
"is it fixed?" follow-up, with the rows each call writes or leaves alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import ManualClock
from bot.domain import FollowupAnswer
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.errors import NotFound
from bot.services.ratings import RatingRefused
from storage.models import Appeal, AppealMessage, Followup, Rating, Reminder, StatusHistory
from tests.factories import World, appeal, make_world, rows, snapshot


@pytest.fixture
async def world(services: Services, clock: ManualClock) -> World:
    return await make_world(services, clock)


async def answered(world: World, **changes: object) -> Appeal:
    row = await world.answer_review(**changes)
    await world.services.coordination.review(world["coordinator"], row.id, True)
    return await appeal(world.services, row.id)


async def again(world: World, row: Appeal) -> None:
    s = world.services
    await s.coordination.route(world["coordinator"], row.id)
    await s.agency.take(world["official"], row.id)
    await s.agency.answer(world["official"], row.id, "Ещё раз: всё сделано")
    await s.coordination.review(world["coordinator"], row.id, True)


async def unchanged(world: World) -> dict[str, object]:
    s = world.services
    return {
        **await snapshot(s),
        "ratings": [(r.id, r.score, r.comment, r.updated_at) for r in await rows(s, Rating)],
        "followups": [(f.id, f.answer) for f in await rows(s, Followup)],
    }


async def pending(world: World, appeal_id: int) -> dict[str, int]:
    found = await rows(world.services, Reminder, Reminder.appeal_id == appeal_id, Reminder.sent_at.is_(None))
    return {r.kind: r.seq for r in found}


@pytest.mark.parametrize("value", [0, 6, -1, "x", "", None, "3.5"])
async def test_a_score_outside_1_to_5_is_refused_and_changes_nothing(world: World, value: object) -> None:
    row = await answered(world)
    before = await unchanged(world)
    with pytest.raises(RatingRefused) as refused:
        await world.services.ratings.rate(world["owner"], row.id, value)  # type: ignore[arg-type]
    assert refused.value.detail == "score"
    assert await unchanged(world) == before


async def test_only_the_owner_rates_and_only_an_answered_appeal(world: World) -> None:
    s = world.services
    row = await answered(world)
    working = await world.in_progress()
    before = await unchanged(world)
    for person in ("other", "official", "coordinator", "admin"):
        with pytest.raises(NotFound):
            await s.ratings.rate(world[person], row.id, 5)
    with pytest.raises(RatingRefused, match="not_answered"):
        await s.ratings.rate(world["owner"], working.id, 5)
    with pytest.raises(NotFound):
        await s.ratings.rate(world["owner"], 999_999, 5)
    assert await unchanged(world) == before


async def test_the_approval_plans_a_reminder_and_a_closing_per_answer(world: World, clock: ManualClock) -> None:
    s = world.services
    row = await answered(world)
    assert await pending(world, row.id) == {"rate_reminder": 0, "rate_close": 0}
    await s.ratings.rate(world["owner"], row.id, 1)
    assert await pending(world, row.id) == {"rate_close": 0}  # rated: no reminder; closes if no decision comes
    await s.ratings.reopen(world["owner"], row.id, "Ничего не изменилось")
    assert await pending(world, row.id) == {}
    await again(world, row)
    assert await pending(world, row.id) == {"rate_reminder": 1, "rate_close": 1}  # the second answer's


async def test_a_low_score_without_a_decision_closes_with_the_score_kept(world: World, clock: ManualClock) -> None:
    s = world.services
    row = await answered(world)
    await s.ratings.rate(world["owner"], row.id, 2)
    clock.advance(days=8)
    await s.reminders.tick()
    assert (await appeal(s, row.id)).status == "closed"
    last = (await rows(s, StatusHistory, StatusHistory.appeal_id == row.id))[-1]
    assert last.event == "closed"  # not "closed without a rating": there is one
    assert [r.score for r in await rows(s, Rating)] == [2]


async def test_changing_a_score(world: World, clock: ManualClock) -> None:
    s, owner = world.services, world["owner"]
    row = await answered(world)
    low = await s.ratings.rate(owner, row.id, 2)
    assert (low.closed, low.ask_reopen, low.changed) == (False, True, False)
    same = await s.ratings.rate(owner, row.id, 2)
    assert same.same and not same.changed
    clock.advance(hours=1)
    high = await s.ratings.rate(owner, row.id, 4)  # raised: closes the appeal
    assert (high.closed, high.ask_reopen, high.changed) == (True, False, True)
    assert (await appeal(s, row.id)).status == "closed"
    assert "followup" in await pending(world, row.id)
    lowered = await s.ratings.rate(owner, row.id, 1)  # lowered: still closed, offered to send it back
    assert (lowered.closed, lowered.ask_reopen) == (True, True)
    assert (await appeal(s, row.id)).status == "closed"
    assert "followup" not in await pending(world, row.id)
    assert [(r.score, r.updated_at) for r in await rows(s, Rating)] == [(1, clock.now())]
    clock.advance(hours=24)  # 25 hours after the first rating
    before = await unchanged(world)
    with pytest.raises(RatingRefused, match="already_rated"):
        await s.ratings.rate(owner, row.id, 5)
    with pytest.raises(RatingRefused, match="already_rated"):
        await s.ratings.comment(owner, row.id, "Передумал")
    assert await unchanged(world) == before
    # Sending it back from "closed" is still possible within the limits.
    assert await s.ratings.reopen(owner, row.id, "Снова течёт") == row.number
    assert (await appeal(s, row.id)).status == "reopened"


async def test_reopening_within_the_days_and_the_count(world: World, clock: ManualClock) -> None:
    s, owner = world.services, world["owner"]
    row = await answered(world)
    await s.ratings.rate(owner, row.id, 1)
    answered_at = (await appeal(s, row.id)).answered_at
    assert answered_at is not None
    clock.set(answered_at + timedelta(days=30, seconds=1))
    before = await unchanged(world)
    with pytest.raises(RatingRefused, match="reopen_days"):
        await s.ratings.reopen(owner, row.id, "Поздно")
    assert await unchanged(world) == before
    clock.set(answered_at + timedelta(days=30))  # the last moment still counts
    await s.ratings.reopen(owner, row.id, "Успел")
    await again(world, row)
    await s.ratings.rate(owner, row.id, 2)
    await s.ratings.reopen(owner, row.id, "Второй раз")
    await again(world, row)
    await s.ratings.rate(owner, row.id, 2)
    before = await unchanged(world)
    with pytest.raises(RatingRefused, match="reopen_count"):
        await s.ratings.may_reopen(owner, row.id)
    with pytest.raises(RatingRefused, match="reopen_count"):
        await s.ratings.reopen(owner, row.id, "Третий раз")
    assert await unchanged(world) == before
    assert (await appeal(s, row.id)).reopen_count == 2


async def test_reopening_wants_words_within_the_limits_and_a_low_score(world: World) -> None:
    s, owner = world.services, world["owner"]
    row = await answered(world)
    with pytest.raises(RatingRefused, match="not_rated"):
        await s.ratings.reopen(owner, row.id, "Без оценки")
    await s.ratings.rate(owner, row.id, 1)
    before = await unchanged(world)
    for text in ("", "   ", "x" * 5000):
        with pytest.raises(RatingRefused, match="text_length"):
            await s.ratings.reopen(owner, row.id, text)
    with pytest.raises(RatingRefused, match="text_length"):
        await s.ratings.comment(owner, row.id, "y" * 5000)
    with pytest.raises(NotFound):
        await s.ratings.reopen(world["other"], row.id, "Чужое")
    assert await unchanged(world) == before
    files = [DraftAttachment("photo", "f-1", "u-1"), DraftAttachment("photo", "f-2", "u-2")]
    await s.ratings.reopen(owner, row.id, "Вот фото", files)
    [note] = await rows(s, AppealMessage, AppealMessage.kind == "reopen")
    assert note.text == "Вот фото"
    a = await appeal(s, row.id)
    assert (a.status, a.reopen_count) == ("reopened", 1)


async def test_a_high_score_never_sends_back(world: World) -> None:
    s, owner = world.services, world["owner"]
    row = await answered(world)
    await s.ratings.rate(owner, row.id, 4)
    with pytest.raises(RatingRefused, match="already_rated"):
        await s.ratings.may_reopen(owner, row.id)


async def test_the_followup_is_planned_once_for_physical_problems_only(world: World, clock: ManualClock) -> None:
    s, owner = world.services, world["owner"]
    quality = next(
        c.id for b in s.directory.blocks() for c in s.directory.categories(b.id) if c.code == "housing_water_quality"
    )
    physical = await answered(world)
    other = await answered(world, category_id=quality)
    await s.ratings.rate(owner, physical.id, 4)
    await s.ratings.rate(owner, physical.id, 5)  # changed: still one follow-up
    await s.ratings.rate(owner, other.id, 5)
    followups = await rows(s, Reminder, Reminder.kind == "followup")
    assert [(r.appeal_id, r.seq) for r in followups] == [(physical.id, 0)]
    clock.advance(days=15)
    await s.reminders.tick()
    await s.reminders.tick()
    [asked] = await rows(s, Followup)
    assert (asked.appeal_id, asked.answer) == (physical.id, None)
    for answer in ("no", "maybe", ""):
        with pytest.raises(RatingRefused, match="answer"):
            await s.ratings.answer_followup(owner, physical.id, answer)
    with pytest.raises(NotFound):
        await s.ratings.answer_followup(world["other"], physical.id, FollowupAnswer.yes)
    assert await s.ratings.answer_followup(owner, physical.id, FollowupAnswer.unknown) == physical.number
    with pytest.raises(RatingRefused, match="not_asked"):
        await s.ratings.answer_followup(owner, physical.id, FollowupAnswer.yes)
    assert [f.answer for f in await rows(s, Followup)] == ["unknown"]


async def test_the_card_view_and_the_prefill_of_a_new_appeal(world: World, clock: ManualClock) -> None:
    s, owner = world.services, world["owner"]
    row = await answered(world)
    view = await s.ratings.view(owner, row.id)
    assert (view.score, view.can_rate) == (None, True)
    await s.ratings.rate(owner, row.id, 3)
    view = await s.ratings.view(owner, row.id)
    assert (view.score, view.can_rate) == (3, True)
    clock.advance(hours=25)
    view = await s.ratings.view(owner, row.id)
    assert (view.score, view.can_rate) == (3, False)
    with pytest.raises(NotFound):
        await s.ratings.view(world["other"], row.id)
    prefill = await s.ratings.refile(owner, row.id)
    category = s.directory.category(row.category_id)
    assert category is not None
    assert (prefill.block_id, prefill.category_id, prefill.district_id, prefill.address, prefill.kind) == (
        category.parent_id,
        row.category_id,
        row.district_id,
        row.address,
        row.kind,
    )
    with pytest.raises(NotFound):
        await s.ratings.refile(world["other"], row.id)


async def test_the_same_low_score_again_asks_to_send_back_while_allowed_and_changes_nothing(
    world: World, clock: ManualClock
) -> None:
    s = world.services
    row = await answered(world)
    owner = world["owner"]
    await s.ratings.rate(owner, row.id, 2)
    await s.ratings.keep(owner, row.id)
    clock.advance(days=3)  # past edit_hours: the score is final, the question is not
    before = await unchanged(world)
    again_ = await s.ratings.rate(owner, row.id, 2)
    assert (again_.same, again_.ask_reopen, again_.closed) == (True, True, True)
    assert await unchanged(world) == before
    view = await s.ratings.view(owner, row.id)
    assert (view.score, view.can_rate, view.can_reopen) == (2, False, True)
    with pytest.raises(RatingRefused) as refused:
        await s.ratings.rate(owner, row.id, 1)  # another score: final
    assert refused.value.detail == "already_rated"
    clock.advance(days=28)  # 31 days after the answer
    with pytest.raises(RatingRefused) as refused:
        await s.ratings.rate(owner, row.id, 2)
    assert refused.value.detail == "already_rated"
    assert not (await s.ratings.view(owner, row.id)).can_reopen


async def test_a_comment_may_follow_any_score_within_edit_hours(world: World, clock: ManualClock) -> None:
    s = world.services
    row = await answered(world)
    owner = world["owner"]
    with pytest.raises(RatingRefused) as refused:
        await s.ratings.may_comment(owner, row.id)
    assert refused.value.detail == "not_rated"
    await s.ratings.rate(owner, row.id, 5)
    assert await s.ratings.may_comment(owner, row.id) == row.number
    with pytest.raises(NotFound):
        await s.ratings.may_comment(world["other"], row.id)
    await s.ratings.comment(owner, row.id, "Спасибо")
    [rating] = await rows(s, Rating)
    assert (rating.score, rating.comment, rating.updated_at) == (5, "Спасибо", rating.created_at)
    clock.advance(hours=25)
    with pytest.raises(RatingRefused) as refused:
        await s.ratings.may_comment(owner, row.id)
    assert refused.value.detail == "already_rated"
