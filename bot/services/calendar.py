"""Working days and deadlines: the Russian production calendar and the term arithmetic built on it.

Deadlines are stored and compared in UTC, but a term is counted in local calendar days: the appeal is
registered on a local date and the term ends at the end of a local day. Every public function therefore
takes the local zone explicitly and refuses naive datetimes, because a naive value would silently be
read in the server's zone.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

# bot/services/calendar.py → project (or site-packages) root; `storage` ships data/*.toml as package data,
# so the same relative path works both from a checkout and from an installed wheel.
DEFAULT_CALENDAR_PATH = Path(__file__).resolve().parents[2] / "storage" / "data" / "calendar.toml"

# Extensions under the appeal rules are bounded; anything outside is a caller bug, not a policy choice.
MIN_EXTENSION_DAYS = 1
MAX_EXTENSION_DAYS = 30

# A broken calendar file (say, every weekday listed as a holiday) must not hang the bot in a search loop.
_MAX_SEARCH_DAYS = 3 * 366

_END_OF_DAY = time.max  # 23:59:59.999999: the term lasts until the very end of its last day
_REMINDER_TIME = time(9, 0)


@dataclass(frozen=True, slots=True)
class CalendarYear:
    """One [[year]] block of calendar.toml."""

    year: int
    holidays: frozenset[date] = field(default_factory=frozenset)
    working_weekends: frozenset[date] = field(default_factory=frozenset)
    short_days: frozenset[date] = field(default_factory=frozenset)
    source: str = ""

    def __post_init__(self) -> None:
        # The file is edited by hand once a year; catch typos here rather than in a wrong deadline later.
        for name, days in (
            ("holidays", self.holidays),
            ("working_weekends", self.working_weekends),
            ("short_days", self.short_days),
        ):
            strays = sorted(d for d in days if d.year != self.year)
            if strays:
                raise ValueError(f"year {self.year}: {name} has dates of another year: {_fmt(strays)}")
        weekend_holidays = sorted(d for d in self.holidays if _is_weekend(d))
        if weekend_holidays:
            raise ValueError(
                f"year {self.year}: holidays must be Monday–Friday (weekends are days off anyway): "
                f"{_fmt(weekend_holidays)}"
            )
        weekdays = sorted(d for d in self.working_weekends if not _is_weekend(d))
        if weekdays:
            raise ValueError(f"year {self.year}: working_weekends must be Saturday/Sunday: {_fmt(weekdays)}")
        overlap = sorted(self.holidays & self.working_weekends)
        if overlap:
            raise ValueError(f"year {self.year}: dates both in holidays and working_weekends: {_fmt(overlap)}")


class ProductionCalendar:
    """Five-day-week production calendar for the years listed in calendar.toml.

    Years not in the file fall back to "Monday–Friday work": a deadline is better slightly early than
    not computed at all, and the warning (one per year, per calendar) tells the admins to add the year.
    """

    def __init__(self, years: Iterable[CalendarYear] = ()) -> None:
        self._years: dict[int, CalendarYear] = {}
        for entry in years:
            if entry.year in self._years:
                raise ValueError(f"year {entry.year} is listed twice")
            self._years[entry.year] = entry
        self._warned_years: set[int] = set()

    @classmethod
    def load(cls, path: Path | None = None) -> ProductionCalendar:
        """Read calendar.toml (by default storage/data/calendar.toml); raise ValueError if it is malformed."""
        path = path if path is not None else DEFAULT_CALENDAR_PATH
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
        try:
            return cls.from_mapping(raw)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ProductionCalendar:
        """Build from the parsed TOML document (a `year` array of tables)."""
        blocks = raw.get("year", [])
        if not isinstance(blocks, list):
            raise ValueError("`year` must be an array of tables ([[year]])")
        years = []
        for block in blocks:
            if not isinstance(block, Mapping) or not isinstance(block.get("year"), int):
                raise ValueError(f"every [[year]] needs an integer `year`: {block!r}")
            years.append(
                CalendarYear(
                    year=block["year"],
                    holidays=_parse_days(block, "holidays"),
                    working_weekends=_parse_days(block, "working_weekends"),
                    short_days=_parse_days(block, "short_days"),
                    source=str(block.get("source", "")),
                )
            )
        return cls(years)

    @property
    def known_years(self) -> frozenset[int]:
        return frozenset(self._years)

    def year_info(self, year: int) -> CalendarYear | None:
        return self._years.get(year)

    def is_working_day(self, day: date) -> bool:
        day = _as_date(day)
        entry = self._years.get(day.year)
        if entry is None:
            if day.year not in self._warned_years:
                self._warned_years.add(day.year)
                log.warning(
                    "Production calendar has no data for %d; counting Monday–Friday as working days. "
                    "Add the year to storage/data/calendar.toml.",
                    day.year,
                )
            return not _is_weekend(day)
        if day in entry.working_weekends:
            return True
        if day in entry.holidays:
            return False
        return not _is_weekend(day)

    def is_short_day(self, day: date) -> bool:
        """Pre-holiday shortened day; informational, deadlines do not depend on it."""
        day = _as_date(day)
        entry = self._years.get(day.year)
        return entry is not None and day in entry.short_days

    def add_working_days(self, start: date, days: int) -> date:
        """The date `days` working days after `start` (start itself not counted); 0 returns `start` as is."""
        start = _as_date(start)
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        current = start
        remaining = days
        steps = 0
        while remaining:
            current += timedelta(days=1)
            steps += 1
            if self.is_working_day(current):
                remaining -= 1
            elif steps > _MAX_SEARCH_DAYS + days:
                raise RuntimeError(f"no working days found after {start}; is the calendar file broken?")
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]. If end < start the result is minus the count in (end, start],
        so "days left" naturally turns into "days overdue"."""
        start, end = _as_date(start), _as_date(end)
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        current = start + timedelta(days=1)
        while current <= end:
            if self.is_working_day(current):
                count += 1
            current += timedelta(days=1)
        return count

    def previous_working_day(self, day: date) -> date:
        """The last working day strictly before `day`."""
        return self._search(_as_date(day), -1)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        return self._search(_as_date(day), 1)

    def _search(self, day: date, step: int) -> date:
        current = day
        for _ in range(_MAX_SEARCH_DAYS):
            current += timedelta(days=step)
            if self.is_working_day(current):
                return current
        raise RuntimeError(f"no working day within {_MAX_SEARCH_DAYS} days of {day}; is the calendar file broken?")


def compute_deadline(
    registered_at: datetime, days: int, *, working_days: bool, calendar: ProductionCalendar, tz: ZoneInfo
) -> datetime:
    """The end of the last day of the term (23:59:59.999999 local time of `tz`), returned in UTC.

    Calendar days: registration date (local) + days; if that date is a non-working day the deadline moves
    to the next working day (Civil Code art. 193). Working days: add_working_days(local registration date,
    days). The registration day itself is never counted (Civil Code art. 191: a term starts the next day).
    """
    _require_aware(registered_at, "registered_at")
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    local_date = registered_at.astimezone(tz).date()
    return _end_of_term(local_date, days, working_days=working_days, calendar=calendar, tz=tz)


def shift_by_pause(
    deadline: datetime,
    paused: timedelta,
    *,
    calendar: ProductionCalendar,
    tz: ZoneInfo,
    counted: timedelta = timedelta(0),
) -> datetime:
    """The deadline after a pause (waiting for the applicant's clarification); UTC result.

    A pause counts in whole days, as the term itself is counted: every full 24 hours of the appeal's total
    pause move the last day by one calendar day, and the remainder is dropped, so a pause shorter than a day
    never moves the date people see (while an exact-time shift would turn 23:59:59 + 1 s into the next day).
    `counted` is the part of the total pause already added by earlier pauses: two pauses of 16 hours make
    one day. A last day that falls on a day off moves to the next working day (Civil Code art. 193), and
    the term ends at the end of that day, as any term does.
    """
    _require_aware(deadline, "deadline")
    if paused < timedelta(0) or counted < timedelta(0):
        raise ValueError(f"paused must not be negative, got {paused} (counted {counted})")
    day = timedelta(days=1)
    days = (counted + paused) // day - counted // day
    if days == 0:
        return deadline.astimezone(UTC)
    local_date = deadline.astimezone(tz).date()
    return _end_of_term(local_date, days, working_days=False, calendar=calendar, tz=tz)


def extend(
    deadline: datetime, days: int, *, working_days: bool, calendar: ProductionCalendar, tz: ZoneInfo
) -> datetime:
    """Extend the term by 1..30 days counted from the deadline's local date; same end-of-day and
    next-working-day rules as compute_deadline. Returned in UTC."""
    _require_aware(deadline, "deadline")
    if not MIN_EXTENSION_DAYS <= days <= MAX_EXTENSION_DAYS:
        raise ValueError(f"an extension must be {MIN_EXTENSION_DAYS}..{MAX_EXTENSION_DAYS} days, got {days}")
    local_date = deadline.astimezone(tz).date()
    return _end_of_term(local_date, days, working_days=working_days, calendar=calendar, tz=tz)


def reminder_points(
    start: datetime, deadline: datetime, *, calendar: ProductionCalendar, tz: ZoneInfo
) -> dict[str, datetime]:
    """When to remind the executor, all in UTC:

    - "half": start + (deadline - start) / 2;
    - "day_before": 09:00 local time of the last working day before the deadline's local date;
    - "deadline": the deadline itself.

    All three keys are always present so callers can rely on the shape; for very short terms "day_before"
    (or even "half") may already be at or before `start`, and the scheduler must skip points in the past.
    """
    _require_aware(start, "start")
    _require_aware(deadline, "deadline")
    if deadline <= start:
        raise ValueError(f"deadline {deadline.isoformat()} is not after start {start.isoformat()}")
    last_day = calendar.previous_working_day(deadline.astimezone(tz).date())
    return {
        "half": (start + (deadline - start) / 2).astimezone(UTC),
        "day_before": datetime.combine(last_day, _REMINDER_TIME, tzinfo=tz).astimezone(UTC),
        "deadline": deadline.astimezone(UTC),
    }


def next_allowed_time(moment: datetime, *, quiet_start: time, quiet_end: time, tz: ZoneInfo) -> datetime:
    """Move a notification out of quiet hours; returned in UTC.

    Quiet hours are [quiet_start, quiet_end) in local time of `tz`. A range with quiet_start > quiet_end
    crosses midnight (21:00–09:00); one with quiet_start < quiet_end lies within a day (13:00–14:00).
    A moment inside the range moves to quiet_end of the same local day, or of the next one when it is
    before midnight in a crossing range; any other moment is returned unchanged (as the same instant in
    UTC). quiet_start == quiet_end means no quiet hours at all.
    """
    _require_aware(moment, "moment")
    if quiet_start.tzinfo is not None or quiet_end.tzinfo is not None:
        raise ValueError("quiet_start and quiet_end are local wall-clock times and must be naive")
    local = moment.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    if quiet_start == quiet_end:
        return moment.astimezone(UTC)
    if quiet_start < quiet_end:
        quiet, next_day = quiet_start <= now < quiet_end, False
    else:
        quiet, next_day = now >= quiet_start or now < quiet_end, now >= quiet_start
    if not quiet:
        return moment.astimezone(UTC)
    target = local.date() + timedelta(days=1) if next_day else local.date()
    return datetime.combine(target, quiet_end, tzinfo=tz).astimezone(UTC)


def _end_of_term(
    local_date: date, days: int, *, working_days: bool, calendar: ProductionCalendar, tz: ZoneInfo
) -> datetime:
    if working_days:
        last = calendar.add_working_days(local_date, days)
    else:
        last = local_date + timedelta(days=days)
        if not calendar.is_working_day(last):
            last = calendar.next_working_day(last)
    return datetime.combine(last, _END_OF_DAY, tzinfo=tz).astimezone(UTC)


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _as_date(value: date) -> date:
    # datetime is a date subclass; accepting one would silently drop its time and zone, so refuse it.
    if isinstance(value, datetime):
        raise TypeError("expected a date, got a datetime; convert it to a local date first")
    return value


def _is_weekend(day: date) -> bool:
    return day.weekday() >= 5


def _parse_days(block: Mapping[str, Any], key: str) -> frozenset[date]:
    values = block.get(key, [])
    if not isinstance(values, list):
        raise ValueError(f"year {block.get('year')}: `{key}` must be a list of dates")
    days: set[date] = set()
    for value in values:
        # Accept both quoted ISO strings and bare TOML dates: admins will write either.
        if isinstance(value, datetime):
            raise ValueError(f"year {block.get('year')}: `{key}` wants dates, not date-times: {value!r}")
        if isinstance(value, date):
            day = value
        elif isinstance(value, str):
            try:
                day = date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"year {block.get('year')}: `{key}` has a bad date {value!r}") from exc
        else:
            raise ValueError(f"year {block.get('year')}: `{key}` has a non-date value {value!r}")
        if day in days:
            raise ValueError(f"year {block.get('year')}: `{key}` lists {day.isoformat()} twice")
        days.add(day)
    return frozenset(days)


def _fmt(days: Iterable[date]) -> str:
    return ", ".join(d.isoformat() for d in days)
