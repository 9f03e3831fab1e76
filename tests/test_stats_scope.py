"""The statistics' scope is imposed by the service on every statement, not only by the filters a checked spec
carries: a stored spec (a preset, a report) read with a narrower scope never counts beyond it. And the periods a
rating is compared with."""

from __future__ import annotations

from datetime import date

import pytest

from bot.clock import ManualClock
from bot.domain import Dimension, Metric, PeriodKind, SliceSpec
from bot.services import Services
from bot.services.stats import PeriodRefused, Scope
from tests.factories import make_world


async def test_a_scope_holds_whatever_the_spec_says(services: Services, clock: ManualClock) -> None:
    world = await make_world(services, clock)
    blocks = services.directory.blocks()
    housing = blocks[0].id
    other = next(b for b in blocks if services.directory.categories(b.id) and b.id != housing)
    await world.file()  # the default draft: a housing category
    await world.file(category_id=services.directory.categories(other.id)[0].id)
    routed = await world.assigned()
    stats = services.stats
    period = stats.period(SliceSpec(period=PeriodKind.days7))
    async with stats.sessionmaker() as session:
        region = await stats.table(session, Scope(), SliceSpec(Metric.received), period)
        held = await stats.table(session, Scope(block_id=housing), SliceSpec(Metric.received), period)
        other_block = await stats.table(
            session, Scope(block_id=housing), SliceSpec(Metric.received).with_filter(Dimension.block, (other.id,)), period
        )
        agency = await stats.table(session, Scope(agency_id=routed.agency_id), SliceSpec(Metric.received), period)
        another_agency = await stats.table(
            session, Scope(agency_id=routed.agency_id),
            SliceSpec(Metric.received).with_filter(Dimension.agency, (world.agency_b,)), period,
        )
    assert (region.total.value, held.total.value, other_block.total.value) == (3, 2, 0)
    assert (agency.total.value, another_agency.total.value) == (1, 0)


async def test_the_period_a_rating_is_compared_with(services: Services, clock: ManualClock) -> None:
    stats = services.stats
    month = stats.days(date(2026, 11, 1), date(2026, 11, 30))
    assert (month.previous().first_day, month.previous().last_day) == (date(2026, 10, 1), date(2026, 10, 31))
    quarter = stats.days(date(2026, 10, 1), date(2026, 12, 31))
    assert (quarter.previous().first_day, quarter.previous().last_day) == (date(2026, 7, 1), date(2026, 9, 30))
    year = stats.days(date(2026, 1, 1), date(2026, 12, 31))
    assert year.previous().first_day == date(2025, 1, 1)


def test_a_date_before_the_service_is_refused(services: Services) -> None:
    with pytest.raises(PeriodRefused) as refused:
        services.stats.check_days(date(1, 1, 1), date(1, 1, 1))
    assert refused.value.detail == "too_old"


def test_two_long_labels_are_each_cut_to_their_share(services: Services) -> None:
    """A row by district × category keeps both names told apart when they are long, not the first one alone."""
    from bot.services.stats import Table, TableRow
    from bot.stats_view import LABEL_CHARS, row_label

    directory = services.directory
    district = max(directory.districts(), key=lambda d: len(d.name("ru")))
    category = max((c for b in directory.blocks() for c in directory.categories(b.id)), key=lambda c: len(c.name("ru")))
    spec = SliceSpec(Metric.received, (Dimension.district, Dimension.category))
    period = services.stats.days(date(2026, 11, 1), date(2026, 11, 2))
    row = TableRow((district.id, category.id), 1, 1, 1)
    text = row_label(Table(spec, period, Scope(), [row], row), row, "ru", directory, LABEL_CHARS)
    first, second = text.split(" · ")
    assert len(text) <= LABEL_CHARS + 1
    assert first[:3] == district.name("ru")[:3] and second[:3] == category.name("ru")[:3]
