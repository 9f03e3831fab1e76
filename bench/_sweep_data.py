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

GENERATOR_VERSION = 1  # bump when the shape of the data changes: the cached files are keyed by it
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
BULK_TABLES = ("users", "user_roles", "appeals", "reminders")

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

    @property
    def label(self) -> str:
        return f"{_short(self.appeals)}/{_short(self.open)}"

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
    return cache_dir / f"sweep-{size.appeals}-{size.open}-{schema_key()}.db"


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
    for stale in cache_dir.glob(f"sweep-{size.appeals}-{size.open}-*.db"):
        if stale != path:  # built for an older schema or generator
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
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (?, ?, ?, ?)",
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
    " reject_reason, duplicate_of_id, official_id, assigned_at, extension_used, paused_at, paused_seconds)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, NULL, NULL, ?, ?, 0, NULL, 0)"
)
REMINDER_SQL = "INSERT INTO reminders (appeal_id, kind, seq, due_at, sent_at) VALUES (?, ?, 0, ?, ?)"


def _insert_appeals(
    db: sqlite3.Connection, rng: random.Random, size: Size, staff: Staff, categories: list[int], districts: list[int]
) -> dict[int, int]:
    """Appeals in creation order (ids grow with time), the last `size.open` of them open. Returns the
    per-year numbering counters."""
    agencies = sorted(staff.officials)
    residents = max(1000, size.appeals // 10)
    start = T0_US - 3 * 365 * DAY
    step = (3 * 365 * DAY - HOUR) // size.appeals
    first_open = size.appeals - size.open
    years: dict[int, int] = {}
    for chunk_start in range(0, size.appeals, CHUNK):
        appeals: list[tuple[object, ...]] = []
        reminders: list[tuple[object, ...]] = []
        for i in range(chunk_start, min(chunk_start + CHUNK, size.appeals)):
            appeal_id = i + 1
            created = start + i * step + rng.randrange(step)
            year = (EPOCH + timedelta(microseconds=created)).year
            years[year] = seq = years.get(year, 0) + 1
            agency = rng.choice(agencies)
            assigned = min(created + rng.randrange(HOUR, 2 * DAY), T0_US - 60 * US)
            if i < first_open:
                status = "closed" if rng.random() < 0.85 else "answered"
                official: int | None = rng.choice(staff.officials[agency])
                deadline = assigned + 30 * DAY
                updated = deadline - rng.randrange(20 * DAY)
                due = deadline - 6 * HOUR
                reminders.append((appeal_id, "deadline", fmt(due), fmt(due)))
            else:
                status = "assigned" if rng.random() < 0.5 else "in_progress"
                official = rng.choice(staff.officials[agency]) if rng.random() < 0.8 else None
                deadline = T0_US + rng.randrange(60 * US, 365 * DAY)
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
                    1 + rng.randrange(residents),
                    rng.choice(categories),
                    rng.choice(districts),
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
                    fmt(deadline),
                    official,
                    fmt(assigned),
                )
            )
        db.executemany(APPEAL_SQL, appeals)
        db.executemany(REMINDER_SQL, reminders)
    return years


def table_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        counts = {
            name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in ("appeals", "reminders", "users", "user_roles")
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
