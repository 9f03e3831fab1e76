"""The data set of bench/sweep.py: a migrated SQLite file with many appeals and their reminders, built fast.

The schema comes from the project's own migrations (`storage.db.upgrade`) and directories (`load_directories`);
the bulk rows are then written with the stdlib sqlite3 module in one transaction (secondary indexes are dropped
for the load and re-created from their exact migrated SQL afterwards, which is much faster than maintaining them
row by row). Datetimes are written the way SQLAlchemy's SQLite DateTime stores the UTCDateTime columns (naive UTC
text "YYYY-MM-DD HH:MM:SS.ffffff"); `_check_datetime_format` proves it by writing one row through the ORM.

The shape, for `appeals` appeals of which `open` are open, at the data set's "now" `T0`:

* closed/answered appeals (85 % / 15 %), created evenly over the three years before, deadlines in the past, each
  with one reminder that was sent;
* open appeals (assigned / in_progress, 80 % with an official), the most recent ones, deadlines spread uniformly
  over the next 365 days, each with its four reminders (half, day_before, deadline, escalation); a point already
  behind `T0` is stored as sent, the others are pending. Due times are continuous (to the microsecond) so that a
  benchmark can put the clock just after the K-th pending one and have exactly K due;
* officials (3) and a supervisor per agency, 3 coordinators, 2 admins, and one resident per ten appeals.

What the statistics read (bench/report.py; GENERATOR_VERSION 2): categories, districts and agencies skewed (a few
common, a long tail, as real appeals are); of the earlier appeals 8 % rejected at moderation (no agency, a reason),
the others answered: `first_action_at` at routing, `answered_at` mostly within the 30 days (about 1 in 7 late),
some clarification pauses, `answer_seconds` and `answered_on_time` as the state machine keeps them, 6 % re-opened;
each answered appeal has its approved `answer` note (and 1 in 10 an earlier one returned by the ЦУР's check),
40 % are rated (skewed to 5) and half of the rated 3–5 are asked "is it fixed?" (most answer). 3 % of the open
appeals are past their deadline. `Size.days` (default three years) is the span the appeals are spread over: the
same number of appeals a day on a smaller set (bench/report.py's "100k vs 1M" comparison) needs a shorter span.

No ANALYZE is run: the bot never runs it, so the planner sees what it sees in production.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import MIGRATIONS_DIR, create_engine, create_sessionmaker, upgrade
from storage.models import User
from storage.seed import load_directories

GENERATOR_VERSION = 3  # bump when the shape of the data changes: the cached files are keyed by it
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # the data set's "now": 09:00 in Moscow, a Monday
SEED = 20261102
CHUNK = 50_000

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR
EPOCH = datetime(1970, 1, 1)  # naive UTC, as stored
T0_US = int((T0 - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))

OFFICIALS_PER_AGENCY = 3
COORDINATORS = 3
ADMINS = 2
BULK_TABLES = ("users", "user_roles", "appeals", "reminders", "appeal_messages", "ratings", "followups")
SPAN_DAYS = 3 * 365

TEXTS = (
    "Яма на дороге у дома, машины объезжают по встречной",
    "Не горят фонари во дворе уже вторую неделю",
    "Не вывозят мусор с контейнерной площадки",
    "Протекает крыша в подъезде после дождя",
    "Нет холодной воды с утра, аварийная служба не отвечает",
    "Сломана детская площадка, торчат острые края",
)
STREETS = ("ул. Ленина", "пр. Кадырова", "ул. Мира", "ул. Гагарина", "ул. Победы", "ул. Шерипова")


@dataclass(frozen=True)
class Size:
    appeals: int
    open: int
    days: int = SPAN_DAYS  # the appeals are created evenly over this many days before T0

    @property
    def label(self) -> str:
        span = "" if self.days == SPAN_DAYS else f" over {self.days} d"
        return f"{_short(self.appeals)}/{_short(self.open)}{span}"

    @classmethod
    def parse(cls, text: str) -> Size:
        """`1000000` (10 % open) or `1000000:100000`."""
        total, _, opened = text.partition(":")
        appeals = int(total.replace("_", ""))
        size = cls(appeals, int(opened.replace("_", "")) if opened else appeals // 10)
        if not 0 < size.open <= size.appeals:
            raise ValueError(f"bad size {text!r}: need 0 < open <= appeals")
        return size


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def fmt(us: int) -> str:
    """Microseconds since the epoch (UTC) as SQLAlchemy's SQLite DateTime stores them."""
    return (EPOCH + timedelta(microseconds=us)).isoformat(" ", "microseconds")


def parse(text: str) -> datetime:
    """A stored UTCDateTime value back to an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schema_key() -> str:
    digest = hashlib.sha256(str(GENERATOR_VERSION).encode())
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def cache_path(size: Size, cache_dir: Path) -> Path:
    return cache_dir / f"sweep-{_stem(size)}-{schema_key()}.db"


def _stem(size: Size) -> str:
    return f"{size.appeals}-{size.open}" + ("" if size.days == SPAN_DAYS else f"-{size.days}d")


def ensure_db(size: Size, cache_dir: Path, rebuild: bool = False) -> tuple[Path, float | None]:
    """The cached data set of this size (built first if missing or `rebuild`), and the build's seconds or None."""
    path = cache_path(size, cache_dir)
    if path.exists() and not rebuild:
        return path, None
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    asyncio.run(_migrate(tmp))
    _fill(tmp, size)
    tmp.replace(path)  # only a complete file ever gets the cached name
    for stale in cache_dir.glob(f"sweep-{_stem(size)}-*.db"):
        if stale != path and stale.name.count("-") == path.name.count("-"):  # built for an older schema or generator
            stale.unlink(missing_ok=True)
    return path, time.perf_counter() - started


async def _migrate(path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        await load_directories(sessionmaker)
        await _check_datetime_format(engine, sessionmaker)
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await engine.dispose()


async def _check_datetime_format(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Write datetimes through the ORM, read them back raw: the bulk load must store exactly the same text."""
    samples = [T0, T0 + timedelta(microseconds=123_456), T0 + timedelta(days=200, seconds=7)]
    async with sessionmaker() as session:
        for n, moment in enumerate(samples):
            session.add(User(tg_id=-1 - n, locale="ru", is_active=True, created_at=moment))
        await session.commit()
    async with engine.begin() as conn:
        raw = [r[0] for r in (await conn.exec_driver_sql("SELECT created_at FROM users ORDER BY tg_id DESC")).all()]
        await conn.exec_driver_sql("DELETE FROM users")
    ours = [fmt(int((m - T0) / timedelta(microseconds=1)) + T0_US) for m in samples]
    if raw != ours:
        raise RuntimeError(f"datetime storage differs from the ORM's: ORM {raw!r}, bulk load {ours!r}")


def _fill(path: Path, size: Size) -> None:
    rng = random.Random(SEED)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")  # build only: the file gets its cached name only when complete
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("PRAGMA temp_store=MEMORY")
        agencies = [r[0] for r in db.execute("SELECT id FROM agencies ORDER BY id")]
        categories = [r[0] for r in db.execute("SELECT id FROM categories ORDER BY id")]
        districts = [r[0] for r in db.execute("SELECT id FROM districts ORDER BY id")]
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({', '.join('?' * len(BULK_TABLES))})",
            BULK_TABLES,
        ).fetchall()
        db.execute("BEGIN")
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
        staff = _insert_people(db, size, agencies)
        years = _insert_appeals(db, rng, size, staff, categories, districts)
        db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)", [(f"appeal_number:{y}", v) for y, v in years.items()]
        )
        for _name, sql in indexes:
            db.execute(sql)
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")  # as the bot opens it
    finally:
        db.close()


@dataclass
class Staff:
    officials: dict[int, list[int]]  # agency id -> user ids


def _insert_people(db: sqlite3.Connection, size: Size, agencies: list[int]) -> Staff:
    residents = max(1000, size.appeals // 10)
    created = fmt(T0_US - 400 * DAY)
    db.executemany(
        "INSERT INTO users (id, tg_id, locale, is_active, created_at) VALUES (?, ?, 'ru', 1, ?)",
        ((i, 100_000_000 + i, created) for i in range(1, residents + 1)),
    )
    next_id = residents + 1
    officials: dict[int, list[int]] = {}
    roles: list[tuple[int, str, int | None]] = []
    for agency in agencies:
        for _ in range(OFFICIALS_PER_AGENCY):
            officials.setdefault(agency, []).append(next_id)
            roles.append((next_id, "official", agency))
            next_id += 1
        roles.append((next_id, "supervisor", agency))
        next_id += 1
    for role, count in (("coordinator", COORDINATORS), ("admin", ADMINS)):
        for _ in range(count):
            roles.append((next_id, role, None))
            next_id += 1
    db.executemany(
        "INSERT INTO users (id, tg_id, locale, is_active, created_at) VALUES (?, ?, 'ru', 1, ?)",
        ((uid, 900_000_000 + uid, created) for uid, _role, _agency in roles),
    )
    db.executemany(
        "INSERT INTO user_roles (user_id, role, agency_id, granted_by, granted_at) VALUES (?, ?, ?, NULL, ?)",
        ((uid, role, agency, created) for uid, role, agency in roles),
    )
    return Staff(officials)


APPEAL_SQL = (
    "INSERT INTO appeals (id, number, draft_id, user_id, category_id, district_id, agency_id, kind, status, text,"
    " address, latitude, longitude, applicant_name, applicant_contact, locale, created_at, updated_at, deadline_at,"
    " reject_reason, duplicate_of_id, official_id, assigned_at, extension_used, paused_at, paused_seconds,"
    " answered_at, reopen_count, first_action_at, first_action_seconds, answer_seconds, answered_on_time)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, NULL, ?, ?, 0, NULL, ?,"
    " ?, ?, ?, ?, ?, ?)"
)
REMINDER_SQL = "INSERT INTO reminders (appeal_id, kind, seq, due_at, sent_at) VALUES (?, ?, 0, ?, ?)"
NOTE_SQL = (
    "INSERT INTO appeal_messages (id, appeal_id, kind, author_id, text, status, review_comment, created_at)"
    " VALUES (?, ?, 'answer', ?, ?, ?, ?, ?)"
)
RATING_SQL = (
    "INSERT INTO ratings (appeal_id, note_id, user_id, agency_id, official_id, score, comment, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)"
)
FOLLOWUP_SQL = (
    "INSERT INTO followups (appeal_id, user_id, asked_at, answer, comment, answered_at) VALUES (?, ?, ?, ?, NULL, ?)"
)
ANSWER_TEXT = "Работы выполнены, проблема устранена. Спасибо за обращение."
RETURN_COMMENT = "Ответ не по существу: укажите сроки работ"
# Grounds of the rejected appeals (bot.domain.RejectReason, in its order) and their weights.
REASONS = ("obscene", "unreadable", "no_address", "spam", "repeated", "out_of_competence")
REASON_WEIGHTS = (1, 2, 5, 4, 6, 8)
SCORES = (5, 4, 3, 2, 1)
SCORE_WEIGHTS = (45, 25, 12, 8, 10)
FIXED = ("yes", "no", "unknown")
FIXED_WEIGHTS = (70, 20, 10)


def _skewed(rng: random.Random, items: list[int]) -> tuple[list[int], list[float]]:
    """The items in a random order with Zipf-like cumulative weights: a few are common, most are rare."""
    order = list(items)
    rng.shuffle(order)
    total = 0.0
    cumulative = []
    for rank in range(len(order)):
        total += 1 / (rank + 1) ** 0.9
        cumulative.append(total)
    return order, cumulative


def _insert_appeals(
    db: sqlite3.Connection, rng: random.Random, size: Size, staff: Staff, categories: list[int], districts: list[int]
) -> dict[int, int]:
    """Appeals in creation order (ids grow with time), the last `size.open` of them open, with what the statistics
    read (answer notes, ratings, follow-ups). Returns the per-year numbering counters."""
    agency_pick = _skewed(rng, sorted(staff.officials))
    category_pick = _skewed(rng, categories)
    district_pick = _skewed(rng, districts)
    residents = max(1000, size.appeals // 10)
    span = size.days * DAY
    start = T0_US - span
    step = (span - HOUR) // size.appeals
    first_open = size.appeals - size.open
    years: dict[int, int] = {}
    note_id = 0
    for chunk_start in range(0, size.appeals, CHUNK):
        appeals: list[tuple[object, ...]] = []
        reminders: list[tuple[object, ...]] = []
        notes: list[tuple[object, ...]] = []
        ratings: list[tuple[object, ...]] = []
        followups: list[tuple[object, ...]] = []
        for i in range(chunk_start, min(chunk_start + CHUNK, size.appeals)):
            appeal_id = i + 1
            created = start + i * step + rng.randrange(step)
            year = (EPOCH + timedelta(microseconds=created)).year
            years[year] = seq = years.get(year, 0) + 1
            resident = 1 + rng.randrange(residents)
            agency: int | None = rng.choices(agency_pick[0], cum_weights=agency_pick[1])[0]
            assigned: int | None = min(created + rng.randrange(HOUR, 2 * DAY), T0_US - 60 * US)
            official: int | None = None
            reason: str | None = None
            answered: int | None = None
            answer_s: int | None = None
            on_time: int | None = None
            paused = reopens = 0
            deadline: int | None
            if i < first_open and rng.random() < 0.08:  # rejected at moderation: never routed
                status, reason = "rejected", rng.choices(REASONS, REASON_WEIGHTS)[0]
                agency = assigned = deadline = None
                first = min(created + rng.randrange(10 * 60 * US, DAY), T0_US - 60 * US)
                updated = first
            elif i < first_open:
                assert assigned is not None and agency is not None
                status = "closed" if rng.random() < 0.85 else "answered"
                official = rng.choice(staff.officials[agency])
                first = assigned
                paused = rng.randrange(3600, 3 * 86400) if rng.random() < 0.1 else 0
                deadline = assigned + 30 * DAY + paused * US  # a clarification pause moves the deadline
                if rng.random() < 0.14:
                    answered = deadline + rng.randrange(HOUR, 10 * DAY)
                else:
                    answered = assigned + paused * US + HOUR + int(28 * DAY * rng.random() ** 1.7)
                answered = max(assigned + US, min(answered, T0_US - rng.randrange(60 * US, HOUR)))
                answer_s = max(0, (answered - created) // US - paused)
                on_time = int(answered <= deadline)
                roll = rng.random()
                reopens = 2 if roll < 0.01 else 1 if roll < 0.06 else 0
                updated = min(answered + rng.randrange(5 * DAY), T0_US - US)
                due = deadline - 6 * HOUR
                reminders.append((appeal_id, "deadline", fmt(due), fmt(due)))
                submitted = max(assigned + US, answered - rng.randrange(10 * 60 * US, DAY))
                if rng.random() < 0.1:  # an earlier answer the ЦУР's check sent back
                    note_id += 1
                    returned_at = assigned + (submitted - assigned) // 2
                    notes.append(
                        (note_id, appeal_id, official, ANSWER_TEXT, "returned", RETURN_COMMENT, fmt(returned_at))
                    )
                note_id += 1
                notes.append((note_id, appeal_id, official, ANSWER_TEXT, "approved", None, fmt(submitted)))
                rated = answered + rng.randrange(10 * 60 * US, 3 * DAY)
                if rng.random() < 0.4 and rated < T0_US:
                    score = rng.choices(SCORES, SCORE_WEIGHTS)[0]
                    ratings.append((appeal_id, note_id, resident, agency, official, score, fmt(rated), fmt(rated)))
                    asked = rated + 7 * DAY
                    if score >= 3 and rng.random() < 0.5 and asked < T0_US:
                        replied = asked + rng.randrange(10 * 60 * US, 3 * DAY)
                        if rng.random() < 0.75 and replied < T0_US:
                            answer = rng.choices(FIXED, FIXED_WEIGHTS)[0]
                            followups.append((appeal_id, resident, fmt(asked), answer, fmt(replied)))
                        else:  # not answered (yet)
                            followups.append((appeal_id, resident, fmt(asked), None, None))
            else:
                assert assigned is not None and agency is not None
                status = "assigned" if rng.random() < 0.5 else "in_progress"
                official = rng.choice(staff.officials[agency]) if rng.random() < 0.8 else None
                first = assigned
                deadline = T0_US + rng.randrange(60 * US, 365 * DAY)
                if rng.random() < 0.03:  # overdue now (if it was assigned long enough ago)
                    past = T0_US - rng.randrange(HOUR, 15 * DAY)
                    deadline = past if past > assigned + DAY else deadline
                updated = assigned
                points = (
                    ("half", assigned + (deadline - assigned) // 2),
                    ("day_before", deadline - DAY),
                    ("deadline", deadline - 6 * HOUR),
                    ("escalation", deadline + US),
                )
                for kind, due in points:
                    reminders.append((appeal_id, kind, fmt(due), fmt(due) if due <= T0_US else None))
            appeals.append(
                (
                    appeal_id,
                    f"{year}-{seq:06d}",
                    f"00000000-0000-4000-8000-{appeal_id:012d}",
                    resident,
                    rng.choices(category_pick[0], cum_weights=category_pick[1])[0],
                    rng.choices(district_pick[0], cum_weights=district_pick[1])[0],
                    agency,
                    "message" if rng.random() < 0.7 else "appeal",
                    status,
                    rng.choice(TEXTS),
                    f"{rng.choice(STREETS)}, {1 + i % 150}",
                    43.2 + rng.random() * 0.3,
                    45.5 + rng.random() * 0.4,
                    "ru" if rng.random() < 0.9 else "ce",
                    fmt(created),
                    fmt(updated),
                    fmt(deadline) if deadline is not None else None,
                    reason,
                    official,
                    fmt(assigned) if assigned is not None else None,
                    paused,
                    fmt(answered) if answered is not None else None,
                    reopens,
                    fmt(first),
                    max(0, (first - created) // US),
                    answer_s,
                    on_time,
                )
            )
        db.executemany(APPEAL_SQL, appeals)
        db.executemany(REMINDER_SQL, reminders)
        db.executemany(NOTE_SQL, notes)
        db.executemany(RATING_SQL, ratings)
        db.executemany(FOLLOWUP_SQL, followups)
    return years


def table_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        counts = {
            name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in ("appeals", "reminders", "users", "user_roles", "appeal_messages", "ratings", "followups")
        }
        counts["open"] = db.execute(
            "SELECT count(*) FROM appeals WHERE status IN ('assigned', 'in_progress')"
        ).fetchone()[0]
        counts["pending"] = db.execute("SELECT count(*) FROM reminders WHERE sent_at IS NULL").fetchone()[0]
        return counts
    finally:
        db.close()


def iter_sizes(texts: str) -> Iterator[Size]:
    for part in texts.split(","):
        if part.strip():
            yield Size.parse(part.strip())
