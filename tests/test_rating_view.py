"""bot/rating_view.py (the ranking's texts, chart and sheet rows) on hand-made ratings, and the rating's checks in
bot/services/stats.py (a supervisor's rating held to their agency, breakdowns, periods) on the services."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from bot.charts import chart_size
from bot.config import IndexWeights
from bot.i18n import create_i18n
from bot.rating_view import breakdown_text, change_mark, rating_chart, rating_sheet, rating_text
from bot.services.directory import DirectoryService, Named
from bot.services.errors import Forbidden, Gone
from bot.services.stats import AgencyRating, IndexEntry, Period, PeriodRefused
from storage.models import AuditEntry, UserRole
from tests import factories
from tests.conftest import make_settings
from tests.test_polls_e2e import png_size

TZ = ZoneInfo("Europe/Moscow")
NAMES = {1: "Alpha <b>bold</b>", 2: "Beta", 3: "Gamma", 4: "Delta", 5: "Epsilon"}


class Directory:
    """The one method of DirectoryService the views use."""

    def agency(self, agency_id: int) -> Named | None:
        name = NAMES.get(agency_id)
        return Named(agency_id, f"a{agency_id}", {"en": name}) if name else None


DIRECTORY = cast(DirectoryService, Directory())


@pytest.fixture
def english(tmp_path: Any) -> Iterator[None]:
    i18n = create_i18n(make_settings(tmp_path / "x.db"))
    with i18n.context(), i18n.use_locale("en"):
        yield


def entry(agency_id: int, index: float | None, answered: int = 12, **values: Any) -> IndexEntry:
    parts = {"on_time": 0.5, "answer_time": 0.8, "rating": 0.75, "reopened": 0.9, "returned": None}
    figures: dict[str, Any] = {
        "on_time_share": 0.5,
        "answer_median": 6 * 86400 + 3 * 3600,
        "rating_avg": 4.0,
        "ratings": 7,
        "reopened_share": 0.1,
        "returned_share": None,
    }
    figures.update(values)
    return IndexEntry(agency_id=agency_id, index=index, answered=answered, parts=parts, **figures)


def rating() -> AgencyRating:
    period = Period(
        datetime(2026, 11, 1, tzinfo=TZ), datetime(2026, 12, 1, tzinfo=TZ), date(2026, 11, 1), date(2026, 11, 30)
    )
    ranked = [
        entry(1, 91.25, rank=1, previous_rank=3, previous_index=70.0),
        entry(2, 80.0, rank=2, previous_rank=1, previous_index=85.0),
        entry(3, 75.0, rank=3, previous_rank=3, previous_index=75.0),
        entry(4, 60.0, rank=4),
    ]
    return AgencyRating(period, ranked, [entry(5, 99.0, answered=4)], min_appeals=10)


def test_the_period_compared_with() -> None:
    november = rating().period
    assert (november.previous().first_day, november.previous().last_day) == (date(2026, 10, 1), date(2026, 10, 31))
    assert november.previous().end == november.start
    assert november.previous().start == datetime(2026, 10, 1, tzinfo=TZ)
    march = Period(
        datetime(2026, 3, 1, tzinfo=TZ), datetime(2026, 4, 1, tzinfo=TZ), date(2026, 3, 1), date(2026, 3, 31)
    )
    assert (march.previous().first_day, march.previous().last_day) == (date(2026, 2, 1), date(2026, 2, 28))
    # Not a whole month (30 days, a month so far): the same length just before.
    days30 = Period(
        datetime(2026, 11, 2, tzinfo=TZ), datetime(2026, 12, 2, tzinfo=TZ), date(2026, 11, 2), date(2026, 12, 1)
    )
    assert days30.previous() == days30.before()
    assert (days30.previous().first_day, days30.previous().last_day) == (date(2026, 10, 3), date(2026, 11, 1))


def test_change_marks(english: None) -> None:
    r = rating()
    assert [change_mark(e) for e in r.ranked] == ["▲2", "▼1", "=", "new"]
    assert change_mark(r.apart[0]) == ""


def test_the_ranking_text(english: None) -> None:
    text = rating_text(rating(), "en", DIRECTORY)
    assert text.startswith(
        "<b>🏆 Agency rating</b>\nPeriod: 01.11.2026–30.11.2026 (compared with 01.10.2026–31.10.2026)"
    )
    assert (
        "1. Alpha &lt;b&gt;bold&lt;/b&gt; — <b>91.2</b> ▲2\n2. Beta — <b>80.0</b> ▼1\n3. Gamma — <b>75.0</b> =\n"
        "4. Delta — <b>60.0</b> new" in text
    ), text
    assert "Not ranked (fewer than 10 answered):\n• Epsilon: 4 answered" in text
    empty = AgencyRating(rating().period, [], [], min_appeals=10)
    assert "No agency answered enough appeals in this period to be ranked." in rating_text(empty, "en", DIRECTORY)


def test_one_agencys_view_says_nothing_of_the_others(english: None) -> None:
    for text in (rating_text(rating(), "en", DIRECTORY, own_agency=2), rating_text(rating().only(2), "en", DIRECTORY)):
        assert "Your agency's place: 2 of 4." in text, text
        assert "<b>Beta</b>\n<b>Place 2 of 4, index 80.0</b> ▼1" in text, text
        assert not any(name in text for n, name in NAMES.items() if n != 2)
        assert "Alpha" not in text and "91" not in text
    assert "Your agency is not ranked: fewer than 10 appeals answered in the period." in rating_text(
        rating().only(5), "en", DIRECTORY
    )
    assert "Your agency answered no appeals in this period." in rating_text(rating().only(3).only(1), "en", DIRECTORY)


def test_the_breakdown(english: None) -> None:
    weights = IndexWeights(on_time=0.4, answer_time=0.1, rating=0.3, reopened=0.2, returned=0)
    text = breakdown_text(rating().ranked[0], "en", DIRECTORY, weights, places=4)
    assert text.split("\n") == [
        "<b>Alpha &lt;b&gt;bold&lt;/b&gt;</b>",
        "<b>Place 1 of 4, index 91.2</b> ▲2",
        "Previous period: place 3, index 70.0",
        "Answered in the period: 12",
        "",
        "• Answered on time: 50.0% → 50 of 100, weight 0.4",
        "• Median time to the answer: 6 d 3 h → 80 of 100, weight 0.1",
        "• Average rating: 4.00 (7 ratings) → 75 of 100, weight 0.3",
        "• Re-opened by residents: 10.0% → 90 of 100, weight 0.2",
        "• Answers returned by the RMC's check: — → not measured, weight 0",
        "",
        "Index: 91.2 (the weighted mean of the measured parts, 0–100)",
    ]
    apart = breakdown_text(rating().apart[0], "en", DIRECTORY, weights)
    assert "Not ranked · index 99.0" in apart and "Place" not in apart


def test_the_chart_and_the_sheet(english: None) -> None:
    png = rating_chart(rating(), "en", DIRECTORY)
    assert png is not None and png_size(png) == chart_size(4)
    assert rating_chart(AgencyRating(rating().period, [], rating().apart), "en", DIRECTORY) is None
    assert rating_chart(rating().only(1), "en", DIRECTORY) is None
    sheet = rating_sheet(rating(), "en", DIRECTORY)
    assert sheet[0][:3] == ["Place", "Agency", "Index"]
    assert sheet[1] == [1, "Alpha <b>bold</b>", 91.25, 3, 12, 0.5, 6.12, 4.0, 7, 0.1, ""]
    assert sheet[5][:3] == ["", "Epsilon", 99.0]
    assert len(sheet) == 6


# --- the service's checks -------------------------------------------------------------------------------------


async def test_the_service_holds_a_supervisor_to_their_agency(services: Any, clock: Any) -> None:
    world = await factories.make_world(services, clock)
    for _n in range(2):
        await factories.answered(world)
    row = await world.file()
    await services.coordination.route(world["coordinator"], row.id, world.agency_b)
    await services.agency.take(world["official_b"], row.id)
    await services.agency.answer(world["official_b"], row.id, "Готово")
    await services.coordination.review(world["coordinator"], row.id, approve=True)
    stats = services.stats
    period = stats.rating_period("days30")

    whole = await stats.rating(world["analyst"], period)
    assert {e.agency_id for e in (*whole.ranked, *whole.apart)} == {world.agency, world.agency_b}
    own = await stats.rating(world["supervisor"], period)
    assert own.held_to == world.agency
    assert [e.agency_id for e in (*own.ranked, *own.apart)] == [world.agency]
    assert own.places == len(whole.ranked)

    assert (await stats.breakdown(world["supervisor"], world.agency, period)).entry(world.agency) is not None
    before = await factories.count(services, AuditEntry)
    with pytest.raises(Forbidden):
        await stats.breakdown(world["supervisor"], world.agency_b, period)
    with pytest.raises(Gone):
        await stats.breakdown(world["analyst"], 10**6, period)
    for name in ("official", "owner"):
        with pytest.raises(Forbidden):
            await stats.rating(world[name], period)
    assert await factories.count(services, AuditEntry) == before + 3  # every refusal audited

    # A block head.
    async with services.appeals.sessionmaker() as session:
        session.add(
            UserRole(
                user_id=world["editor"].id,
                role="block_head",
                block_id=services.directory.blocks()[0].id,
                granted_at=clock.now(),
            )
        )
        await session.commit()
    head = await services.users.identify(factories.TG["editor"])
    with pytest.raises(Forbidden):
        await stats.rating(head, period)
    with pytest.raises(Forbidden):
        await stats.rating_reader(head)

    for forged in ("today", "custom", "decade", ""):
        with pytest.raises(PeriodRefused):
            stats.rating_period(forged)
    assert stats.rating_period("year").first_day == date(clock.now().year, 1, 1)
