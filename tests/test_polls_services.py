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


def test_small_cells_and_small_districts_are_merged() -> None:
    rows = merge_small(
        {1: {10: 6, 11: 2}, 2: {10: 3}, None: {11: 1}, 3: {10: 5, 11: 5}},
        {1: 8, 2: 3, None: 1, 3: 10},
    )
    by = {r.district_id: r for r in rows}
    assert by[3].counts == {10: 5, 11: 5} and by[3].merged == 0
    assert by[1].counts == {10: 6} and by[1].merged == 2  # 2 answers are not shown apart
    assert by[None].respondents == 4 and by[None].counts == {} and by[None].merged == 4  # district 2 and no district
    assert 2 not in by
    assert all(c >= SMALL_CELL for r in rows for c in r.counts.values())


async def test_only_admins_and_editors_create_and_analysts_only_read(services: Services, clock: ManualClock) -> None:
    world = await factories.make_world(services, clock)
    for name in ("coordinator", "official", "supervisor", "analyst", "owner"):
        with pytest.raises(Forbidden):
            await services.polls.create(world[name], draft(clock))
    poll_id = await services.polls.create(world["editor"], draft(clock))
    assert (await services.polls.results(world["analyst"], poll_id)).respondents == 0
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
