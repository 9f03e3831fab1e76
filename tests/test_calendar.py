"""Production calendar and deadline arithmetic on real 2026/2027 dates.

Zone assumption: Europe/Moscow has had a fixed UTC+03:00 offset with no DST since 26 October 2014, so every
expected UTC value below is simply local time minus three hours. The module itself builds local times with
zoneinfo, but these tests deliberately do not exercise DST gaps or folds.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.services.calendar import (
    DEFAULT_CALENDAR_PATH,
    ProductionCalendar,
    compute_deadline,
    extend,
    next_allowed_time,
    reminder_points,
    shift_by_pause,
)

MSK = ZoneInfo("Europe/Moscow")
QUIET = {"quiet_start": time(21, 0), "quiet_end": time(9, 0), "tz": MSK}


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


def end_of_day_utc(day: date) -> datetime:
    """23:59:59.999999 Moscow time of `day`, in UTC (fixed +03:00 offset, see module docstring)."""
    return datetime.combine(day, time(20, 59, 59, 999999), tzinfo=UTC)


@pytest.fixture(scope="module")
def cal() -> ProductionCalendar:
    return ProductionCalendar.load()


# --- The calendar file ----------------------------------------------------------------------------------


def test_default_file_covers_2026_and_2027(cal: ProductionCalendar) -> None:
    assert DEFAULT_CALENDAR_PATH.is_file()
    assert cal.known_years == {2026, 2027}
    info_2026 = cal.year_info(2026)
    assert info_2026 is not None and "1466" in info_2026.source


def test_new_year_holidays_2026(cal: ProductionCalendar) -> None:
    # 1–11 January are all days off: holidays 1–8, the transferred Friday 9th and the weekend 10–11.
    for day in range(1, 12):
        assert not cal.is_working_day(date(2026, 1, day)), f"2026-01-{day:02d}"
    assert cal.is_working_day(date(2026, 1, 12))


def test_transferred_days_off_2026(cal: ProductionCalendar) -> None:
    assert not cal.is_working_day(date(2026, 1, 9))  # Saturday 3 January moved to Friday 9 January
    assert not cal.is_working_day(date(2026, 12, 31))  # Sunday 4 January moved to Thursday 31 December
    assert not cal.is_working_day(date(2026, 3, 9))  # 8 March is a Sunday
    assert not cal.is_working_day(date(2026, 5, 11))  # 9 May is a Saturday
    assert cal.is_working_day(date(2026, 12, 30))


def test_2026_has_no_working_saturdays_and_247_working_days(cal: ProductionCalendar) -> None:
    saturdays = [date(2026, 1, 3) + timedelta(weeks=n) for n in range(53)]
    assert not any(cal.is_working_day(d) for d in saturdays if d.year == 2026)
    assert cal.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 247


def test_4_november_2026(cal: ProductionCalendar) -> None:
    assert not cal.is_working_day(date(2026, 11, 4))  # Wednesday
    assert cal.is_working_day(date(2026, 11, 3)) and cal.is_short_day(date(2026, 11, 3))
    assert cal.is_working_day(date(2026, 11, 5))


def test_2027_projected_weekend_holidays_move_to_monday(cal: ProductionCalendar) -> None:
    assert not cal.is_working_day(date(2027, 5, 3))  # 1 May is a Saturday
    assert not cal.is_working_day(date(2027, 5, 10))  # 9 May is a Sunday
    assert not cal.is_working_day(date(2027, 6, 14))  # 12 June is a Saturday
    assert not cal.is_working_day(date(2027, 11, 4))
    # Without a decree 31 December 2027 stays a (shortened) working day.
    assert cal.is_working_day(date(2027, 12, 31)) and cal.is_short_day(date(2027, 12, 31))
    assert cal.working_days_between(date(2026, 12, 31), date(2027, 12, 31)) == 249


# --- Working-day arithmetic -----------------------------------------------------------------------------


def test_add_working_days_across_holidays(cal: ProductionCalendar) -> None:
    assert cal.add_working_days(date(2026, 11, 2), 3) == date(2026, 11, 6)  # skips 4 November
    assert cal.add_working_days(date(2026, 1, 8), 1) == date(2026, 1, 12)  # skips 9 January and the weekend
    assert cal.add_working_days(date(2026, 11, 4), 0) == date(2026, 11, 4)  # 0 is the start itself
    with pytest.raises(ValueError):
        cal.add_working_days(date(2026, 11, 2), -1)


def test_working_days_between(cal: ProductionCalendar) -> None:
    assert cal.working_days_between(date(2026, 1, 1), date(2026, 1, 16)) == 5  # 12–16 January
    assert cal.working_days_between(date(2026, 11, 2), date(2026, 11, 6)) == 3  # (2nd, 6th] minus the 4th
    assert cal.working_days_between(date(2026, 11, 6), date(2026, 11, 6)) == 0
    assert cal.working_days_between(date(2026, 11, 6), date(2026, 11, 2)) == -3


def test_previous_and_next_working_day(cal: ProductionCalendar) -> None:
    assert cal.previous_working_day(date(2026, 5, 4)) == date(2026, 4, 30)
    assert cal.previous_working_day(date(2026, 1, 12)) == date(2025, 12, 31)  # 2025 is not in the file
    assert cal.next_working_day(date(2026, 12, 30)) == date(2027, 1, 11)


def test_transferred_working_saturday() -> None:
    # 2026 has no working Saturday, so use the 2025 autumn transfer: Saturday 1 November worked,
    # Monday 3 November and Tuesday 4 November were off.
    cal = ProductionCalendar.from_mapping(
        {"year": [{"year": 2025, "holidays": ["2025-11-03", "2025-11-04"], "working_weekends": ["2025-11-01"]}]}
    )
    assert cal.is_working_day(date(2025, 11, 1))
    assert not cal.is_working_day(date(2025, 11, 2))
    assert cal.add_working_days(date(2025, 10, 31), 1) == date(2025, 11, 1)
    assert cal.add_working_days(date(2025, 10, 31), 2) == date(2025, 11, 5)
    assert cal.working_days_between(date(2025, 10, 30), date(2025, 11, 5)) == 3  # 31 Oct, 1 Nov, 5 Nov
    assert cal.previous_working_day(date(2025, 11, 5)) == date(2025, 11, 1)


def test_unknown_year_falls_back_to_monday_friday_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    cal = ProductionCalendar.load()
    with caplog.at_level(logging.WARNING, logger="bot.services.calendar"):
        assert cal.is_working_day(date(2030, 1, 1))  # a Tuesday: no holidays known for 2030
        assert cal.is_working_day(date(2030, 1, 7))
        assert not cal.is_working_day(date(2030, 1, 5))  # Saturday
        assert cal.add_working_days(date(2030, 1, 4), 1) == date(2030, 1, 7)
        assert cal.is_working_day(date(2031, 1, 1))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.args for r in warnings] == [(2030,), (2031,)]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"year": 2026, "holidays": ["2026-01-03"]}, "Monday–Friday"),
        ({"year": 2026, "working_weekends": ["2026-01-05"]}, "Saturday/Sunday"),
        ({"year": 2026, "holidays": ["2027-01-01"]}, "another year"),
        ({"year": 2026, "holidays": ["2026-13-01"]}, "bad date"),
        ({"year": 2026, "holidays": ["2026-01-05", "2026-01-05"]}, "twice"),
    ],
)
def test_malformed_file_is_refused(tmp_path: Path, block: dict[str, Any], message: str) -> None:
    lines = ["[[year]]"]
    for key, value in block.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    path = tmp_path / "calendar.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        ProductionCalendar.load(path)


# --- Deadlines ------------------------------------------------------------------------------------------


def test_calendar_deadline_on_holiday_moves_to_next_working_day(cal: ProductionCalendar) -> None:
    # 1 April + 30 days = Friday 1 May (holiday), then the weekend: the term ends on Monday 4 May.
    deadline = compute_deadline(msk(2026, 4, 1, 10, 0), 30, working_days=False, calendar=cal, tz=MSK)
    assert deadline == end_of_day_utc(date(2026, 5, 4))
    assert deadline.tzinfo is UTC


def test_calendar_deadline_uses_local_registration_date(cal: ProductionCalendar) -> None:
    # 22:30 UTC on 31 March is already 01:30 on 1 April in Grozny/Moscow.
    registered = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    deadline = compute_deadline(registered, 30, working_days=False, calendar=cal, tz=MSK)
    assert deadline == end_of_day_utc(date(2026, 5, 4))


def test_calendar_deadline_on_31_december_jumps_over_new_year(cal: ProductionCalendar) -> None:
    # 2 December + 29 = 31 December 2026 (day off), then 1–10 January 2027 are off too.
    deadline = compute_deadline(msk(2026, 12, 2, 12, 0), 29, working_days=False, calendar=cal, tz=MSK)
    assert deadline == end_of_day_utc(date(2027, 1, 11))


def test_working_day_deadline_across_23_february(cal: ProductionCalendar) -> None:
    # Friday 20 February + 3 working days: the weekend and Monday the 23rd are skipped → Thursday the 26th.
    deadline = compute_deadline(msk(2026, 2, 20, 15, 0), 3, working_days=True, calendar=cal, tz=MSK)
    assert deadline == end_of_day_utc(date(2026, 2, 26))


def test_shift_by_pause_counts_whole_days(cal: ProductionCalendar) -> None:
    deadline = end_of_day_utc(date(2026, 5, 4))  # Monday

    def shift(paused: timedelta, counted: timedelta = timedelta(0)) -> datetime:
        return shift_by_pause(deadline, paused, calendar=cal, tz=MSK, counted=counted)

    # Less than a day never moves the date (an exact-time shift made 23:59:59 + 1 s the next day).
    for paused in (timedelta(0), timedelta(seconds=1), timedelta(hours=23, minutes=59, seconds=59)):
        assert shift(paused) == deadline
    assert shift(timedelta(days=2, hours=3)) == end_of_day_utc(date(2026, 5, 6))
    # 4 May + 5 = Saturday 9 May: the term ends on the next working day, Tuesday 12 May (11 May is a holiday).
    assert shift(timedelta(days=5)) == end_of_day_utc(date(2026, 5, 12))
    # Pauses add up: 16 h now after 16 h before make the first whole day; 16 h after 7 h do not.
    assert shift(timedelta(hours=16), counted=timedelta(hours=16)) == end_of_day_utc(date(2026, 5, 5))
    assert shift(timedelta(hours=16), counted=timedelta(hours=7)) == deadline
    with pytest.raises(ValueError):
        shift(timedelta(seconds=-1))


def test_extend(cal: ProductionCalendar) -> None:
    deadline = end_of_day_utc(date(2026, 5, 4))
    assert extend(deadline, 30, working_days=False, calendar=cal, tz=MSK) == end_of_day_utc(date(2026, 6, 3))
    # 1 June + 11 = Friday 12 June (holiday) → Monday 15 June.
    june_1 = end_of_day_utc(date(2026, 6, 1))
    assert extend(june_1, 11, working_days=False, calendar=cal, tz=MSK) == end_of_day_utc(date(2026, 6, 15))
    # 10 June + 2 working days: 11 June, then 12 June is skipped → 15 June.
    june_10 = end_of_day_utc(date(2026, 6, 10))
    assert extend(june_10, 2, working_days=True, calendar=cal, tz=MSK) == end_of_day_utc(date(2026, 6, 15))
    for bad in (0, 31):
        with pytest.raises(ValueError):
            extend(deadline, bad, working_days=False, calendar=cal, tz=MSK)


def test_reminder_points(cal: ProductionCalendar) -> None:
    start = msk(2026, 4, 1, 10, 0)
    deadline = end_of_day_utc(date(2026, 5, 4))
    points = reminder_points(start, deadline, calendar=cal, tz=MSK)
    assert points["half"] == start + (deadline - start) / 2
    # The last working day before Monday 4 May is Thursday 30 April (1 May and the weekend are off).
    assert points["day_before"] == datetime(2026, 4, 30, 6, 0, tzinfo=UTC)
    assert points["deadline"] == deadline
    assert all(p.tzinfo is UTC for p in points.values())
    with pytest.raises(ValueError):
        reminder_points(deadline, start, calendar=cal, tz=MSK)


# --- Quiet hours ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected_local"),
    [
        (msk(2026, 3, 10, 20, 59), msk(2026, 3, 10, 20, 59)),
        (msk(2026, 3, 10, 21, 0), msk(2026, 3, 11, 9, 0)),
        (msk(2026, 3, 10, 23, 59), msk(2026, 3, 11, 9, 0)),
        (msk(2026, 3, 11, 3, 0), msk(2026, 3, 11, 9, 0)),
        (msk(2026, 3, 11, 9, 0), msk(2026, 3, 11, 9, 0)),
    ],
)
def test_quiet_hours_crossing_midnight(local: datetime, expected_local: datetime) -> None:
    moved = next_allowed_time(local, **QUIET)
    assert moved == expected_local
    assert moved.tzinfo is UTC


def test_quiet_hours_input_in_utc() -> None:
    # 18:30 UTC = 21:30 Moscow → 09:00 Moscow next morning = 06:00 UTC.
    moved = next_allowed_time(datetime(2026, 3, 10, 18, 30, tzinfo=UTC), **QUIET)
    assert moved == datetime(2026, 3, 11, 6, 0, tzinfo=UTC)


def test_quiet_hours_within_one_day() -> None:
    lunch = {"quiet_start": time(13, 0), "quiet_end": time(14, 0), "tz": MSK}
    assert next_allowed_time(msk(2026, 3, 10, 12, 59), **lunch) == msk(2026, 3, 10, 12, 59)
    assert next_allowed_time(msk(2026, 3, 10, 13, 30), **lunch) == msk(2026, 3, 10, 14, 0)
    assert next_allowed_time(msk(2026, 3, 10, 14, 0), **lunch) == msk(2026, 3, 10, 14, 0)
    none = {"quiet_start": time(9, 0), "quiet_end": time(9, 0), "tz": MSK}
    assert next_allowed_time(msk(2026, 3, 10, 3, 0), **none) == msk(2026, 3, 10, 3, 0)


# --- Naive datetimes ------------------------------------------------------------------------------------

NAIVE = datetime(2026, 4, 1, 10, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda cal: compute_deadline(NAIVE, 30, working_days=False, calendar=cal, tz=MSK),
        lambda cal: shift_by_pause(NAIVE, timedelta(hours=1), calendar=cal, tz=MSK),
        lambda cal: extend(NAIVE, 5, working_days=True, calendar=cal, tz=MSK),
        lambda cal: reminder_points(NAIVE, msk(2026, 5, 4, 23, 0), calendar=cal, tz=MSK),
        lambda cal: reminder_points(msk(2026, 4, 1, 10, 0), NAIVE + timedelta(days=30), calendar=cal, tz=MSK),
        lambda cal: next_allowed_time(NAIVE, **QUIET),
    ],
    ids=["compute_deadline", "shift_by_pause", "extend", "reminder_start", "reminder_deadline", "quiet_hours"],
)
def test_naive_datetimes_are_refused(cal: ProductionCalendar, call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(cal)


def test_datetime_is_not_a_date(cal: ProductionCalendar) -> None:
    with pytest.raises(TypeError):
        cal.is_working_day(msk(2026, 1, 9, 12, 0))
