"""The time dimensions of a slice stay what was asked whatever was asked before in the same process: SQLAlchemy
caches a statement's compiled SQL by its structure, so the bucket's unit and offset must be part of it (found by
bench/report.py, whose weeks and days came out as months after a month slice)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.clock import ManualClock
from bot.domain import Dimension, Metric, PeriodKind, SliceSpec
from bot.services import Services
from tests.factories import make_world

# Filed at 22:30 UTC = 01:30 in Moscow the next day: the local day, week and month differ from the UTC ones.
FILED = (datetime(2026, 10, 31, 22, 30, tzinfo=UTC), datetime(2026, 10, 25, 20, 0, tzinfo=UTC))
NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


async def test_month_then_week_then_day_each_keyed_by_its_own_bucket(services: Services, clock: ManualClock) -> None:
    clock.set(FILED[1] - timedelta(days=1))
    world = await make_world(services, clock)
    for moment in sorted(FILED):
        clock.set(moment)
        await world.file()
    clock.set(NOW)

    async def keys(dim: Dimension) -> list[str]:
        table = await services.stats.slice(world["analyst"], SliceSpec(Metric.received, (dim,), (), PeriodKind.days30))
        return [str(row.keys[0]) for row in table.rows]

    expected = {
        # 25.10 23:00 Moscow (a Sunday) and 01.11 01:30 Moscow (the next Sunday): two ISO weeks, two months.
        Dimension.month: ["2026-10", "2026-11"],
        Dimension.week: [date(2026, 10, 19).isoformat(), date(2026, 10, 26).isoformat()],
        Dimension.day: ["2026-10-25", "2026-11-01"],
    }
    for _round in range(2):  # each asked after the others, twice over
        for dim in (Dimension.month, Dimension.week, Dimension.day):
            assert await keys(dim) == expected[dim], dim
