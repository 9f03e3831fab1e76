"""The poll service without Telegram: who may, publishing in batches under a lease, answers, the small-cell merge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.clock import ManualClock
from bot.services import Services
from bot.services.errors import Forbidden, InvalidInput
from bot.services.polls import SMALL_CELL, Audience, PollDraft, PollRefused, merge_small
from storage.models import Outbox, Poll, PollAnswer, PollRecipient
from tests import factories


def draft(clock: ManualClock, **changes: object) -> PollDraft:
    values: dict[str, object] = {
        "question": "Q?",
        "options": ("A", "B"),
        "multiple": False,
        "allow_other": False,
        "audience": Audience.all,
        "closes_at": clock.now() + timedelta(days=1),
    }
    values.update(changes)
    return PollDraft(**values)  # type: ignore[arg-type]


def test_a_district_is_listed_only_when_every_cell_is_0_or_at_least_5() -> None:
    rows = merge_small(
        {1: {10: 6, 11: 2}, 2: {10: 3}, None: {11: 5}, 3: {10: 5, 11: 5}, 4: {10: 7}},
        {1: 8, 2: 3, None: 5, 3: 10, 4: 7},
    )
    by = {r.district_id: r for r in rows}
    assert by[3].counts == {10: 5, 11: 5} and by[4].counts == {10: 7}
    # District 1 (a cell of 2), district 2 and the residents with no appeal: one row, its respondents only.
    assert set(by) == {3, 4, None}
    assert by[None].respondents == 16 and by[None].counts == {}
    assert all(c >= SMALL_CELL for r in rows for c in r.counts.values())
    # The merged group is left out when it has 1..4 respondents.
    rows = merge_small({1: {10: 6}, 2: {10: 1, 11: 2}}, {1: 6, 2: 3})
    assert [(r.district_id, r.respondents, r.counts) for r in rows] == [(1, 6, {10: 6})]


async def test_only_admins_and_editors_create_and_analysts_only_read(services: Services, clock: ManualClock) -> None:
    world = await factories.make_world(services, clock)
    for name in ("coordinator", "official", "supervisor", "analyst", "owner"):
        with pytest.raises(Forbidden):
            await services.polls.create(world[name], draft(clock))
    poll_id = await services.polls.create(world["editor"], draft(clock))
    assert (await services.polls.results(world["analyst"], poll_id)).hidden
    for name in ("coordinator", "owner"):
        with pytest.raises(Forbidden):
            await services.polls.results(world[name], poll_id)
    with pytest.raises(Forbidden):
        await services.polls.close(world["analyst"], poll_id)


async def test_a_draft_is_validated(services: Services, clock: ManualClock) -> None:
    world = await factories.make_world(services, clock)
    for bad in (
        draft(clock, options=("A",)),
        draft(clock, options=tuple("ABCDEFGHIJK")),
        draft(clock, question=""),
        draft(clock, closes_at=clock.now()),
        draft(clock, audience=Audience.districts),
        draft(clock, audience=Audience.language, language="de"),
    ):
        with pytest.raises(InvalidInput):
            await services.polls.create(world["admin"], bad)


async def test_publishing_goes_in_batches_resumes_after_a_crash_and_never_twice(
    services: Services, clock: ManualClock
) -> None:
    world = await factories.make_world(services, clock)
    for tg in range(5000, 5007):
        await factories.resident(services, tg)
    services.polls.batch = 3
    poll_id = await services.polls.create(world["admin"], draft(clock))
    # A publisher that died after its claim: the lease keeps others off until it expires, then one resumes.
    async with services.polls.sessionmaker() as session:
        await session.execute(
            update(Poll).where(Poll.id == poll_id).values(
                status="publishing", claim="dead", locked_until=clock.now() + timedelta(minutes=1)
            )
        )
        await session.commit()
    assert await services.polls.publish_due() == 0
    clock.advance(minutes=2)
    assert await services.polls.publish_due() == 9  # owner, other and the 7 new residents; no staff
    assert await services.polls.publish_due() == 0
    async with services.polls.sessionmaker() as session:
        recipients = (await session.execute(select(PollRecipient.user_id))).scalars().all()
    assert len(recipients) == len(set(recipients)) == 9
    assert len(await factories.rows(services, Outbox, Outbox.template == "poll")) == 9
    [poll] = await factories.rows(services, Poll)
    assert (poll.status, poll.recipients, poll.claim) == ("open", 9, None)


async def test_answers_are_checked(services: Services, clock: ManualClock) -> None:
    world = await factories.make_world(services, clock)
    poll_id = await services.polls.create(world["admin"], draft(clock, allow_other=True))
    await services.polls.publish(poll_id)
    ballot = await services.polls.ballot(world["owner"], poll_id)
    a, b = (o for o, _t in ballot.options)
    for call in (
        services.polls.choose(world["owner"], poll_id, 10_000),
        services.polls.choose(world["owner"], 10_000, a),
        services.polls.choose(world["admin"], poll_id, a),  # staff are not recipients
        services.polls.answer_other(world["owner"], poll_id, "x" * 501),
        services.polls.answer_other(world["owner"], poll_id, "  "),
        services.polls.submit(world["owner"], poll_id),
    ):
        with pytest.raises(PollRefused):
            await call
    assert await factories.rows(services, PollAnswer) == []
    assert (await services.polls.choose(world["owner"], poll_id, a)).chosen == {a}
    assert (await services.polls.choose(world["owner"], poll_id, b)).chosen == {b}
    await services.polls.close(world["editor"], poll_id)
    with pytest.raises(PollRefused) as refused:
        await services.polls.choose(world["owner"], poll_id, a)
    assert refused.value.detail == "closed"
    assert [r.option_id for r in await factories.rows(services, PollAnswer)] == [b]


@pytest.mark.parametrize("bars", [1, 2, 5, 11])
def test_the_chart_is_a_png_of_its_size(bars: int) -> None:
    import struct

    from bot.charts import bar_chart, chart_size

    png = bar_chart("Вопрос?", [(f"Вариант {n}", n, 100.0 * n / bars) for n in range(bars)], "footer")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == chart_size(bars)


def test_the_csv_reads_in_spreadsheets() -> None:
    from bot.charts import results_csv

    data = results_csv(["Раздел", "Ответ"], [["Все", 'Да, "конечно"']])
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig").splitlines() == ["Раздел,Ответ", 'Все,"Да, ""конечно"""']


def test_chart_labels_are_not_math_text() -> None:
    import struct

    from bot.charts import bar_chart, chart_size

    png = bar_chart("Is $x$ or $\\frac$ better?", [("$\\frac$", 3, 60.0), ("$x$", 2, 40.0)], "$\\frac$ footer")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == chart_size(2)


async def test_two_concurrent_answers_of_one_resident_leave_one_answer(services: Services, clock: ManualClock) -> None:
    """Two presses handled at once (two instances): both read "not answered" before either stores."""
    import asyncio

    from sqlalchemy import event

    world = await factories.make_world(services, clock)
    poll_id = await services.polls.create(world["admin"], draft(clock, options=("A", "B", "C")))
    await services.polls.publish(poll_id)
    a, b, c = (o for o, _t in (await services.polls.ballot(world["owner"], poll_id)).options)
    engine = services.polls.sessionmaker.kw["bind"].sync_engine
    writing: list[str] = []
    both_read = asyncio.Event()

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith(("INSERT INTO poll_answers", "DELETE FROM poll_answers", "UPDATE poll_recipients")):
            writing.append(statement)
            if len(writing) == 2:  # both presses have read their state and wait for the database
                both_read.set()

    event.listen(engine, "before_cursor_execute", seen)
    try:
        for first, second in ((a, b), (c, a)):  # not answered yet, then replacing an answer
            writing.clear()
            both_read.clear()
            # Another writer holds the database for a moment: both presses read their state, then wait to write.
            async with services.polls.sessionmaker() as blocker:
                await blocker.execute(update(Poll).where(Poll.id == poll_id).values(cursor=Poll.cursor))
                presses = asyncio.gather(
                    services.polls.choose(world["owner"], poll_id, first),
                    services.polls.choose(world["owner"], poll_id, second),
                )
                await both_read.wait()
                await blocker.commit()
            await presses
            answers = await factories.rows(services, PollAnswer, PollAnswer.user_id == world["owner"].id)
            assert len(answers) == 1 and answers[0].option_id in {first, second}
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    results = await services.polls.results(world["admin"], poll_id)
    assert results.hidden  # one respondent: nothing shown
