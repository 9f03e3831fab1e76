"""The staff's read side of residents' ratings (issue 12), at the service level: the SQL aggregation of agencies'
averages, the day's low ratings, what a card shows to whom, and the digests' rows in the outbox."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from aiogram.utils.i18n import I18n
from sqlalchemy import select

from bot.clock import ManualClock
from bot.domain import LOW_RATING, DigestKind
from bot.i18n import create_i18n
from bot.notifications import make_renderer
from bot.services import Services
from bot.services.deadlines import LOW_RATING_COMMENT, LOW_RATINGS_LISTED, RATING_DAYS, ReminderService
from storage.models import Appeal, Digest, Outbox, Rating
from storage.repositories.rating_stats import RatingStatsRepo
from tests import factories
from tests.factories import World, make_world, rows

# A Monday; digest time (09:00 Moscow) is 06:00 UTC.
MONDAY = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
async def world(services: Services, clock: ManualClock) -> World:
    clock.set(MONDAY - timedelta(days=40))
    return await make_world(services, clock)


async def answered_by(world: World, official: str = "official") -> Appeal:
    """An answered appeal of the official's agency (the suggested one, or agency_b for official_b)."""
    if official == "official":
        return await factories.answered(world)
    s = world.services
    row = await world.file()
    await s.coordination.route(world["coordinator"], row.id, world.agency_b)
    await s.agency.take(world[official], row.id)
    await s.agency.answer(world[official], row.id, "Сделано")
    await s.coordination.review(world["coordinator"], row.id, approve=True)
    return await factories.appeal(s, row.id)


def independent_averages(ratings: list[Rating], since: datetime) -> dict[int, tuple[float, int]]:
    """The figures computed in Python from the rows, to check the database's GROUP BY against."""
    scores: dict[int, list[int]] = defaultdict(list)
    for r in ratings:
        if r.agency_id is not None and r.created_at >= since:
            scores[r.agency_id].append(r.score)
    return {a: (sum(s) / len(s), len(s)) for a, s in scores.items()}


async def test_agency_averages_are_grouped_by_the_database_worst_first(world: World, clock: ManualClock) -> None:
    s = world.services
    # Agency A: 5, 4, 1 in the window, and a 1 of 31 days ago that falls out of it; agency B: 2, 3.
    plan = [("official", 5, 1), ("official", 4, 2), ("official", 1, 29), ("official", 1, 31)]
    plan += [("official_b", 2, 3), ("official_b", 3, 10)]
    for who, score, days_ago in plan:
        appeal = await answered_by(world, who)
        await factories.rate(s, appeal.id, score, at=MONDAY - timedelta(days=days_ago))
    since = MONDAY - timedelta(days=RATING_DAYS)
    expected = independent_averages(await rows(s, Rating), since)
    assert expected == {world.agency: (10 / 3, 3), world.agency_b: (2.5, 2)}

    async with s.appeals.sessionmaker() as session:
        found = await RatingStatsRepo(session).agency_averages(since)
        only_a = await RatingStatsRepo(session).agency_averages(since, world.agency)
        later = await RatingStatsRepo(session).agency_averages(MONDAY)
    # The worst average first.
    assert [a for a, _avg, _n in found] == [world.agency_b, world.agency]
    assert {a: (pytest.approx(avg), n) for a, avg, n in found} == expected
    assert only_a == [(world.agency, pytest.approx(10 / 3), 3)]
    assert later == []


async def test_low_ratings_of_a_day_are_those_of_one_and_two_in_the_window(world: World) -> None:
    s = world.services
    start, end = MONDAY - timedelta(days=1), MONDAY
    given = [(1, start), (2, start + timedelta(hours=5)), (3, start + timedelta(hours=6)), (1, end), (2, start - timedelta(seconds=1))]
    appeals = []
    for score, at in given:
        appeal = await answered_by(world)
        await factories.rate(s, appeal.id, score, comment=f"c{score}", at=at)
        appeals.append(appeal)
    async with s.appeals.sessionmaker() as session:
        stats = RatingStatsRepo(session)
        low = await stats.low_between(start, end, LOW_RATING, 10)
        first = await stats.low_between(start, end, LOW_RATING, 1)
        total = await stats.count_low_between(start, end, LOW_RATING)
    assert [tuple(r) for r in low] == [
        (appeals[0].id, appeals[0].number, world.agency, 1, "c1"),
        (appeals[1].id, appeals[1].number, world.agency, 2, "c2"),
    ]
    assert len(first) == 1 and total == 2


async def test_the_card_shows_ratings_to_coordinators_and_the_agency_that_answered(world: World) -> None:
    s = world.services
    appeal = await factories.answered(world)
    await factories.rate(s, appeal.id, 2, comment="Вода так и не пошла", reopen=True)
    await factories.followup(s, appeal.id, "no", comment="Труба течёт")
    for who in ("coordinator", "admin", "official", "supervisor"):
        card = await s.views.card(world[who], appeal.id)
        assert [(r.score, r.comment) for r in card.ratings] == [(2, "Вода так и не пошла")], who
        assert card.followup is not None and card.followup.answer == "no"
        assert (card.reopen_count, card.max_reopens) == (1, s.views.settings.ratings.max_reopens)
    # Re-opened and routed to another agency: its people open the card, but not the first agency's judgement.
    await s.coordination.route(world["coordinator"], appeal.id, world.agency_b)
    card = await s.views.card(world["official_b"], appeal.id)
    assert card.ratings == [] and card.reopen_count == 1
    assert len((await s.views.card(world["coordinator"], appeal.id)).ratings) == 1


async def test_the_queue_puts_reopened_appeals_first(world: World, clock: ManualClock) -> None:
    s = world.services
    first_new = await world.file()
    answered = await factories.answered(world)
    clock.advance(hours=1)
    second_new = await world.file()
    await factories.rate(s, answered.id, 1, reopen=True)
    queue = await s.views.queue(world["coordinator"])
    assert [i.id for i in queue.items] == [answered.id, first_new.id, second_new.id]
    assert queue.counts["reopened"] == 1


async def test_digests_carry_the_agencies_ratings(world: World, clock: ManualClock) -> None:
    s = world.services
    for who, score in (("official", 5), ("official", 2), ("official_b", 1)):
        appeal = await answered_by(world, who)
        await factories.rate(s, appeal.id, score, at=MONDAY - timedelta(days=3))
    clock.set(MONDAY)
    before = await factories.last_id(s, Outbox)
    await s.reminders.daily_digest()
    sent = {(u, t): p for u, t, p in await factories.outbox(s, before)}
    people = world.people
    assert sent[(people["official"].id, "digest_official_rated")]["rating_average"] == 3.5
    assert sent[(people["official"].id, "digest_official_rated")]["rating_count"] == 2
    assert sent[(people["official_b"].id, "digest_official_rated")]["rating_average"] == 1.0
    assert sent[(people["supervisor"].id, "digest_agency_rating")] == {
        "rating_average": 3.5,
        "rating_count": 2,
        "rating_days": RATING_DAYS,
    }
    assert sent[(people["supervisor_b"].id, "digest_agency_rating")]["rating_count"] == 1
    assert sent[(people["coordinator"].id, "digest_coordinator_rated")]["ratings"] == [
        [world.agency_b, 1.0, 1],
        [world.agency, 3.5, 2],
    ]
    # Nobody else, and no list of low ratings: none was given yesterday.
    assert {u for u, _t in sent} == {people[p].id for p in ("official", "official_b", "supervisor", "supervisor_b", "coordinator")}


async def test_low_ratings_go_once_a_day_across_instances(world: World, clock: ManualClock) -> None:
    s = world.services
    yesterday = MONDAY - timedelta(hours=10)  # Sunday 23:00 Moscow
    bad = await factories.answered(world)
    await factories.rate(s, bad.id, 1, comment="<b>Ничего</b> не сделано", at=yesterday)
    clock.set(MONDAY)
    other = ReminderService(s.reminders.sessionmaker, clock, s.reminders.settings, s.reminders.calendar)
    assert await s.reminders.low_ratings() == 1
    assert await other.low_ratings() == 0
    assert await s.reminders.low_ratings() == 0
    [(user, template, params)] = [o for o in await factories.outbox(s) if o[1] == "low_ratings"]
    assert user == world["coordinator"].id and template == "low_ratings"
    assert params == {"day": "2026-11-01", "items": [[bad.id, bad.number, world.agency, 1, "<b>Ничего</b> не сделано"]], "more": 0}
    # The next day has none: the day is claimed and nothing is sent.
    clock.advance(days=1)
    assert await s.reminders.low_ratings() == 0
    async with s.appeals.sessionmaker() as session:
        claimed = (await session.execute(select(Digest.period).where(Digest.kind == DigestKind.low_ratings))).scalars()
        assert sorted(claimed) == ["2026-11-02", "2026-11-03"]
    assert len([o for o in await factories.outbox(s) if o[1] == "low_ratings"]) == 1


async def test_averages_read_as_each_language_writes_them(services: Services) -> None:
    i18n = create_i18n(services.appeals.settings)
    I18n.set_current(i18n)
    render = make_renderer(i18n, services.appeals.settings, services.directory)
    row = {"rating_average": 4.25, "rating_count": 4, "rating_days": 30}
    texts = {lang: (await render("digest_agency_rating", row, lang, 1)).text for lang in ("en", "ru", "ce")}
    assert "4.3 of 5 (4 ratings)" in texts["en"]
    assert "4,3 из 5 (оценок: 4)" in texts["ru"]
    assert "4,3 5-х" in texts["ce"]


async def test_a_long_day_of_low_ratings_lists_the_first_and_counts_the_rest(world: World, clock: ManualClock) -> None:
    s = world.services
    for i in range(LOW_RATINGS_LISTED + 2):
        appeal = await factories.answered(world)
        await factories.rate(s, appeal.id, 1 + i % 2, comment="z" * 300, at=MONDAY - timedelta(hours=12, minutes=i))
    clock.set(MONDAY)
    assert await s.reminders.low_ratings() == 1
    [params] = [p for _u, t, p in await factories.outbox(s) if t == "low_ratings"]
    assert len(params["items"]) == LOW_RATINGS_LISTED and params["more"] == 2
    assert all(item[4] == "z" * LOW_RATING_COMMENT + "…" for item in params["items"])


async def test_a_score_lowered_the_next_day_is_listed_on_the_day_it_became_low(world: World, clock: ManualClock) -> None:
    """Rated 5 on Saturday 23:00 (Moscow), lowered to 1 on Sunday 01:00 (within edit_hours): Monday's list of
    Sunday's low ratings has it (the day the score became low), Sunday's list of Saturday has not."""
    s = world.services
    row = await factories.answered(world)
    clock.set(MONDAY - timedelta(hours=34))  # Saturday 23:00 Moscow
    await s.ratings.rate(world["owner"], row.id, 5)
    clock.set(MONDAY - timedelta(hours=32))  # Sunday 01:00 Moscow
    await s.ratings.rate(world["owner"], row.id, 1)
    clock.set(MONDAY - timedelta(days=1))  # Sunday 09:00: Saturday's list
    assert await s.reminders.low_ratings() == 0
    clock.set(MONDAY)
    assert await s.reminders.low_ratings() == 1
    [params] = [p for _u, t, p in await factories.outbox(s) if t == "low_ratings"]
    assert params == {"day": "2026-11-01", "items": [[row.id, row.number, world.agency, 1, None]], "more": 0}
