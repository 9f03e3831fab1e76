"""Retention sweep benchmark: the daily personal-data job `PrivacyService.retention_sweep` on a big SQLite database.

The data set is bench/_sweep_data.py's (1,000,000 appeals over three years, migrated by the project's own migrations,
bulk-loaded with sqlite3, cached in a temp directory per size; `--rebuild` to force). Its generator does not set
`closed_at` (the column migration 0013 added, which the sweep selects by), so this script prepares its own copy of
each data set, cached beside it, with one set-based UPDATE: `closed_at = updated_at` for the appeals in
bot.domain.CLOSED, which is what migration 0013 itself sets when an appeal has no history entry (the data set has
none). The sweep also reads what anonymizing deletes from, so the copy gets, unless `--bare`:

* the residents' photos (attachments): 0 to 3 per appeal, 0.88 on average (an assumption: no figures from production);
* the outbox of a running bot: the notifications of the last privacy.outbox_keep_days (90) days, all sent, five per
  appeal filed in that time (two status changes, the assignment's card, a reminder, the answer's review) and a sixth
  with its photos when it has some, about the newest appeals (those of an appeal five years old were pruned long
  ago). The window ends at the clock of D = 10,000, so none is old enough to prune in the runs below (the "pruned"
  column says if one was).

The measured code is the real one: `build_services(make_settings(db), …, ManualClock)`, one engine per size for all
its sweeps as in a running bot (it keeps its compiled statements from one day's sweep to the next), its pooled
connection opened before the clock starts. Every sweep runs on a fresh copy of the prepared file (nothing is undone:
the engine's pool is disposed of and the copy replaced); one untimed sweep per size first pays what only the
process's first sweep pays (imports, mapper configuration, compiling the statements). A sweep is timed, wall time and
CPU time of the process (which includes SQLite's work in aiosqlite's thread), with the clock set so that exactly D
closed appeals are older than privacy.retention_days (1825): D = 0 (the daily cost when nothing is old enough: it
should be milliseconds), 1,000 and 10,000, the clock put on the D-th earliest `closed_at` plus the retention period.
The batches are the sweep's transactions (privacy.retention_batch, 500, appeals each), counted as commits.

The same is done at a ten times smaller size: if the sweep's cost follows what is due and not the size of the
tables, D = 1,000 costs the same at both sizes. Sizes and D values are measured in turn, run after run, so that other
work on the machine falls on all alike. Then one more sweep per size, untimed, at D = 1,000 and at D = 0, with its
statements captured as executed (`before_cursor_execute`/`after_cursor_execute` on the engine): the time each took in
the sweep, the line of the project's code that issued it, and its `EXPLAIN QUERY PLAN`; a plan that scans a whole
table or index is flagged. Usage:

    .venv/bin/python bench/retention.py [--sizes 100000:10000,1000000:100000] [--d 0,1000,10000] [--runs 3]
        [--json] [--bare] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/retention.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

import greenlet  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench._sweep_data import Size, ensure_db, iter_sizes, parse  # noqa: E402
from bot import notices  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.domain import CLOSED, AppealStatus, AttachmentKind  # noqa: E402
from bot.services import build_services  # noqa: E402
from storage.db import create_engine, create_sessionmaker  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

PREP_VERSION = 1  # bump when the preparation changes: the prepared files are keyed by it
DEFAULT_SIZES = "100000:10000,1000000:100000"
DS = (0, 1000, 10_000)
RECORD_D = 1000  # the sweep whose statements are shown (besides D = 0)
BACKLOG_D = 10_000  # the outbox's window ends at this D's clock: nothing in it is old enough to prune
GOAL_IDLE_MS = 50.0  # a sweep with nothing due, at the largest size
GOAL_RATIO = 2.0  # D = 1000 at the largest size within this factor of the smallest
GROWTH_FLAG = 3.0  # a statement this much slower per execution at the largest size than at the smallest is flagged
CODE_DIRS = tuple(str(ROOT / d) + "/" for d in ("bot", "storage", "handlers"))
CLOSED_SQL = ", ".join(f"'{status.value}'" for status in CLOSED)
# Photos per appeal by a hash of its id: none for 45 %, one for 30 %, two for 17 %, three for 8 %.
PHOTOS_SQL = f"""
INSERT INTO attachments (appeal_id, kind, file_id, file_unique_id, position, created_at, source, message_id)
SELECT a.id, 'photo', 'AgACAgIAAxkBAAI' || printf('%010d', a.id * 10 + n.position) || '{"Zk" * 32}',
       'AQAD' || printf('%012d', a.id * 10 + n.position), n.position, a.created_at, 'resident', NULL
FROM appeals AS a
JOIN (SELECT 1 AS position UNION ALL SELECT 2 UNION ALL SELECT 3) AS n
  ON n.position <= CASE WHEN (a.id * 2654435761) % 100 < 45 THEN 0 WHEN (a.id * 2654435761) % 100 < 75 THEN 1
                        WHEN (a.id * 2654435761) % 100 < 92 THEN 2 ELSE 3 END
ORDER BY a.id, n.position
"""
OUTBOX_SQL = (
    "INSERT INTO outbox (user_id, template, params, status, attempts, next_attempt_at, locked_until, created_at,"
    " sent_at, tg_message_id, last_error, dedupe_key, lane, broadcast_id, lost_leases)"
    " VALUES (?, ?, ?, 'sent', 1, ?, NULL, ?, ?, ?, NULL, NULL, 0, NULL, 0)"
)


# --- the prepared data set ----------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A size's data set as measured: the cached file of bench/_sweep_data.py with what the sweep reads added."""

    size: Size
    data_path: str
    path: str
    build_s: float | None  # the data set's build, when it was built by this run
    prepare_s: float | None  # the preparation's, when it was prepared by this run
    closed: int
    closed_at_from_data: int  # closed appeals the data set gave a closed_at (0: set here)
    attachments: int
    outbox: int
    clocks: dict[int, datetime] = field(default_factory=dict)  # D -> the moment exactly D are due
    due: dict[int, int] = field(default_factory=dict)  # D -> closed appeals older than the retention period then


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _scalar(db: sqlite3.Connection, sql: str, *params: Any) -> Any:
    return db.execute(sql, params).fetchone()[0]


def clock_for(db: sqlite3.Connection, d: int, retention: timedelta) -> datetime:
    """The moment at which exactly D closed appeals are older than the retention period (closing times are distinct,
    to the microsecond): the D-th earliest closing plus the period, or a microsecond before the first one's."""
    sql = (
        f"SELECT closed_at FROM appeals WHERE anonymized_at IS NULL AND status IN ({CLOSED_SQL})"
        " AND closed_at IS NOT NULL ORDER BY closed_at LIMIT 1 OFFSET ?"
    )
    row = db.execute(sql, (max(d - 1, 0),)).fetchone()
    if row is None:
        raise SystemExit(f"fewer than {d} closed appeals in the data set")
    return parse(row[0]) + retention - (timedelta(microseconds=1) if d == 0 else timedelta(0))


def _due_at(db: sqlite3.Connection, moment: datetime, retention: timedelta) -> int:
    sql = f"SELECT count(*) FROM appeals WHERE anonymized_at IS NULL AND status IN ({CLOSED_SQL}) AND closed_at <= ?"
    return int(_scalar(db, sql, _stored(moment - retention)))


def _stored(moment: datetime) -> str:
    """An aware datetime as the UTCDateTime columns store it (naive UTC text)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def prepare(size: Size, args: argparse.Namespace, settings: Settings) -> Prepared:
    """The size's prepared file (made from its cached data set if missing or older), and its facts."""
    cached, build_s = ensure_db(size, args.cache_dir, rebuild=args.rebuild)
    privacy = settings.privacy
    tail = f"-r{privacy.retention_days}-k{privacy.outbox_keep_days}-v{PREP_VERSION}" + ("-bare" if args.bare else "")
    path = cached.with_name(cached.stem.replace("sweep-", "retention-", 1) + tail + ".db")
    prepare_s = None
    if not path.exists() or path.stat().st_mtime < cached.stat().st_mtime or build_s is not None:
        _progress(args, f"[{size.label}] preparing {path.name}…")
        started = time.perf_counter()
        tmp = path.with_suffix(".preparing")
        shutil.copyfile(cached, tmp)
        _prepare(tmp, size, settings, bare=args.bare)
        tmp.replace(path)  # only a complete file ever gets the prepared name
        prepare_s = time.perf_counter() - started
    retention = timedelta(days=privacy.retention_days)
    data = _connect(cached)
    db = _connect(path)
    try:
        closed_sql = f"SELECT count(*) FROM appeals WHERE status IN ({CLOSED_SQL})"
        prepared = Prepared(
            size=size,
            data_path=str(cached),
            path=str(path),
            build_s=build_s,
            prepare_s=prepare_s,
            closed=int(_scalar(db, closed_sql)),
            closed_at_from_data=int(_scalar(data, f"{closed_sql} AND closed_at IS NOT NULL")),
            attachments=int(_scalar(db, "SELECT count(*) FROM attachments")),
            outbox=int(_scalar(db, "SELECT count(*) FROM outbox")),
        )
        for d in dict.fromkeys((*args.ds, *args.record_ds)):
            prepared.clocks[d] = clock_for(db, d, retention)
            prepared.due[d] = _due_at(db, prepared.clocks[d], retention)
    finally:
        data.close()
        db.close()
    return prepared


def _prepare(path: Path, size: Size, settings: Settings, *, bare: bool) -> None:
    db = _connect(path)
    try:
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("BEGIN")
        # Migration 0013's rule for the appeals it found closed, with no history entry to read the closing from.
        db.execute(f"UPDATE appeals SET closed_at = updated_at WHERE status IN ({CLOSED_SQL}) AND closed_at IS NULL")
        if not bare:
            db.execute(PHOTOS_SQL)
            _fill_outbox(db, size, settings)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def _fill_outbox(db: sqlite3.Connection, size: Size, settings: Settings) -> None:
    """The notifications of the outbox_keep_days before the clock of D = BACKLOG_D, about the newest appeals (as
    many as are filed in that time), sent; their ids grow with their time, as the sender's do."""
    keep = timedelta(days=settings.privacy.outbox_keep_days)
    closed = _scalar(db, f"SELECT count(*) FROM appeals WHERE status IN ({CLOSED_SQL})")
    end = clock_for(db, min(BACKLOG_D, closed), timedelta(days=settings.privacy.retention_days))
    appeals = round(size.appeals / size.days * keep.days)
    coordinator = _scalar(db, "SELECT user_id FROM user_roles WHERE role = 'coordinator' ORDER BY user_id LIMIT 1")
    rows = db.execute(
        "SELECT id, number, user_id, official_id, category_id, district_id, deadline_at, text, address, latitude,"
        " longitude FROM appeals WHERE id > ? ORDER BY id",
        (size.appeals - appeals,),
    ).fetchall()
    files: dict[int, list[str]] = {}
    for appeal_id, file_id in db.execute(
        "SELECT appeal_id, file_id FROM attachments WHERE appeal_id > ? ORDER BY appeal_id, position",
        (size.appeals - appeals,),
    ):
        files.setdefault(appeal_id, []).append(file_id)
    queued: list[tuple[int, notices.Notice]] = []
    for appeal_id, number, user_id, official_id, category, district, deadline, text, address, lat, lon in rows:
        staff = official_id or coordinator
        deadline_iso = parse(deadline).isoformat() if deadline else None
        queued += [
            (user_id, notices.StatusChanged(appeal_id, number, AppealStatus.assigned)),
            (
                staff,
                notices.Assigned(
                    appeal_id=appeal_id,
                    number=number,
                    category_id=category,
                    district_id=district,
                    deadline=deadline_iso,
                    text=text,
                    address=address,
                    lat=lat,
                    lon=lon,
                ),
            ),
            (user_id, notices.StatusChanged(appeal_id, number, AppealStatus.in_progress)),
            (staff, notices.ReminderHalf(appeal_id, number, deadline_iso)),
            (coordinator, notices.AnswerReview(appeal_id, number)),
        ]
        if appeal_id in files:
            queued.append((staff, notices.Files(tuple((AttachmentKind.photo, f) for f in files[appeal_id]))))
    step = keep / len(queued)
    start = end - keep + step / 2
    for first in range(0, len(queued), 50_000):
        chunk = []
        for n, (recipient, notice) in enumerate(queued[first : first + 50_000], start=first):
            at = _stored(start + n * step)
            chunk.append((recipient, notice.template, json.dumps(notice.params()), at, at, at, 1_000_000 + n))
        db.executemany(OUTBOX_SQL, chunk)


# --- statements as executed, and their plans ------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    params: tuple[Any, ...]
    where: str  # file:line (function) of the project's code that issued it
    count: int = 0
    ms: float = 0.0  # executing it (rows fetched included), every execution in the sweep
    plan: list[str] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)


def _caller() -> str:
    """The innermost frame of the project's code behind the statement being executed.

    SQLAlchemy's asyncio layer runs the sync core in a child greenlet; the awaiting coroutines (the service and the
    repository) are suspended in its parent, so their frames hang off the parent greenlet's current frame."""
    here = greenlet.getcurrent()
    frame = here.parent.gr_frame if here.parent is not None else inspect.currentframe()
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(CODE_DIRS):
            return f"{Path(name).relative_to(ROOT)}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "?"


class Recorder:
    """Every distinct statement (and line issuing it) executed on the engine: how often, how long, its first
    parameters. The sweep runs one statement at a time, so one start time is enough."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: dict[tuple[str, str], Statement] = {}
        self.current: Statement | None = None
        self.started = 0.0
        event.listen(engine.sync_engine, "before_cursor_execute", self.before)
        event.listen(engine.sync_engine, "after_cursor_execute", self.after)

    def stop(self) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self.before)
        event.remove(self.engine.sync_engine, "after_cursor_execute", self.after)

    def before(self, _conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        where = _caller()
        if (sql, where) not in self.statements:
            first = params[0] if many and params and isinstance(params[0], list | tuple) else params
            self.statements[sql, where] = Statement(sql, tuple(first or ()) if _plannable(sql) else (), where)
        self.current = self.statements[sql, where]
        self.current.count += 1
        self.started = time.perf_counter()

    def after(self, *_args: Any) -> None:
        if self.current is not None:
            self.current.ms += (time.perf_counter() - self.started) * 1000
            self.current = None


def _plannable(sql: str) -> bool:
    return sql.lstrip().split(" ", 1)[0].upper() in {"SELECT", "UPDATE", "DELETE", "WITH"}


async def explain(engine: AsyncEngine, statement: Statement) -> None:
    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement.sql}", statement.params)).all()
    depth: dict[int, int] = {0: -1}
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        statement.plan.append("  " * depth[node] + detail)
        if detail.startswith("SCAN ") and not detail.startswith("SCAN CONSTANT ROW"):
            kind = "FULL INDEX SCAN" if " USING " in detail else "FULL TABLE SCAN"
            statement.scans.append(f"{kind}: {detail}")


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Sweep:
    d: int
    at: datetime
    due: int
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    anonymized: int = 0
    batches: int = 0
    pruned: int = 0
    statements: list[Statement] = field(default_factory=list)  # of the recorded (untimed) sweep, if any

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_ms)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)


@dataclass
class SizeResult:
    prepared: Prepared
    sweeps: dict[int, Sweep]
    recorded: dict[int, Sweep] = field(default_factory=dict)


class Bench:
    """One size: a work copy of its prepared file, put back afresh before every sweep, and one engine with the real
    services over it for all the size's sweeps (a running bot's engine keeps its compiled statements from one day's
    sweep to the next; disposing of its pool between sweeps lets it open the new copy)."""

    def __init__(self, prepared: Prepared, ds: list[int], workdir: Path) -> None:
        self.prepared = prepared
        self.result = SizeResult(prepared, {d: Sweep(d, prepared.clocks[d], prepared.due[d]) for d in ds})
        self.work = workdir / f"work-{prepared.size.appeals}-{prepared.size.open}.db"
        # Always this SQLite file (the tests' settings would name a PostgreSQL database under TSUR_TEST_DATABASE_URL).
        settings = make_settings(self.work, database={"url": f"sqlite+aiosqlite:///{self.work}"})
        self.engine = create_engine(settings.database.url)
        self.clock = ManualClock(min(prepared.clocks.values()))
        self.services = build_services(settings, create_sessionmaker(self.engine), self.clock)
        self.commits = 0
        event.listen(self.engine.sync_engine, "commit", self._on_commit)

    def _on_commit(self, _conn: Any) -> None:
        self.commits += 1

    async def _fresh_copy(self) -> None:
        await self.engine.dispose()
        for path in (self.work, Path(f"{self.work}-wal"), Path(f"{self.work}-shm")):
            path.unlink(missing_ok=True)
        shutil.copyfile(self.prepared.path, self.work)

    async def close(self) -> None:
        await self.engine.dispose()
        for path in (self.work, Path(f"{self.work}-wal"), Path(f"{self.work}-shm")):
            path.unlink(missing_ok=True)

    async def run(self, sweep: Sweep, *, record: bool = False) -> None:
        """One sweep on a fresh copy: timed, or (`record`) with its statements captured, then explained."""
        await self._fresh_copy()
        self.clock.set(sweep.at)
        outbox = await _count(self.engine, "outbox")  # also opens the pooled connection, as a running bot has it
        recorder = Recorder(self.engine) if record else None
        self.commits = 0
        started, cpu = time.perf_counter(), time.process_time()
        anonymized = await self.services.privacy.retention_sweep()
        wall_ms, cpu_ms = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
        sweep.anonymized, sweep.batches = anonymized, self.commits
        sweep.wall_ms.append(wall_ms)
        sweep.cpu_ms.append(cpu_ms)
        if recorder is not None:
            recorder.stop()
            sweep.statements = sorted(recorder.statements.values(), key=lambda st: -st.ms)
            for statement in sweep.statements:
                if _plannable(statement.sql):
                    await explain(self.engine, statement)
        sweep.pruned = outbox - await _count(self.engine, "outbox")


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one())


async def measure(prepared: list[Prepared], args: argparse.Namespace, workdir: Path) -> list[SizeResult]:
    """All sizes and D values measured in turn, run after run, so a busy moment of the machine falls on all alike
    instead of on whichever happened to run then."""
    benches = [Bench(p, args.ds, workdir) for p in prepared]
    try:
        _progress(args, "warming up (one untimed sweep per size: imports, mappers, compiled statements)…")
        for bench in benches:
            d = args.record_ds[0]
            await bench.run(Sweep(d, bench.prepared.clocks[d], bench.prepared.due[d]))
        for run in range(args.runs):
            _progress(args, f"run {run + 1} of {args.runs}…")
            for bench in benches:
                for d in args.ds:
                    await bench.run(bench.result.sweeps[d])
        _progress(args, "statements and plans…")
        for bench in benches:
            for d in args.record_ds:
                bench.result.recorded[d] = Sweep(d, bench.prepared.clocks[d], bench.prepared.due[d])
                await bench.run(bench.result.recorded[d], record=True)
    finally:
        for bench in benches:
            await bench.close()
    return [bench.result for bench in benches]


def _progress(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


# --- reporting ----------------------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):9.1f} [{min(values):8.1f}]"


def _short_sql(sql: str) -> str:
    sql = " ".join(sql.split())
    sql = re.sub(r"\?(?:, \?){4,}", lambda m: f"?, …({m.group(0).count('?')} values)", sql)
    # _drop_files_sent's one LIKE per file id
    like = r"(\(CAST\(outbox\.params AS TEXT\) LIKE [^)]*\))((?: OR \1)+)"
    return re.sub(like, lambda m: f"{m.group(1)} OR …({m.group(2).count(' OR ') + 1} in all)", sql)


def checks(results: list[SizeResult]) -> list[dict[str, Any]]:
    big, small = results[-1], results[0]
    out = []
    if 0 in big.sweeps:
        idle = big.sweeps[0]
        out.append(
            {
                "check": f"a sweep with nothing due < {GOAL_IDLE_MS:.0f} ms at {big.prepared.size.label}",
                "passed": idle.wall < GOAL_IDLE_MS,
                "detail": f"{idle.wall:.1f} ms wall, {idle.cpu:.1f} ms CPU (medians)",
            }
        )
    if len(results) > 1 and RECORD_D in big.sweeps:
        wall = big.sweeps[RECORD_D].wall / small.sweeps[RECORD_D].wall
        cpu = big.sweeps[RECORD_D].cpu / small.sweeps[RECORD_D].cpu
        out.append(
            {
                "check": f"D={RECORD_D} costs the same at {big.prepared.size.label} as at {small.prepared.size.label}"
                f" (within {GOAL_RATIO:.0f}x)",
                "passed": max(wall, cpu) <= GOAL_RATIO,
                "detail": f"ratio {wall:.2f} wall, {cpu:.2f} CPU, for "
                f"{big.prepared.size.appeals / small.prepared.size.appeals:.0f}x the appeals"
                + (
                    f" and {big.prepared.outbox / small.prepared.outbox:.0f}x the outbox"
                    if small.prepared.outbox
                    else ""
                ),
            }
        )
    return out


def render(results: list[SizeResult], args: argparse.Namespace, settings: Settings) -> str:
    privacy = settings.privacy
    big, small = results[-1], results[0]
    lines = [
        f"Retention sweep benchmark: SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__} + aiosqlite,"
        f" Python {sys.version.split()[0]}; no ANALYZE (as in production)",
        f"Machine: {os.cpu_count()} CPUs, load average {args.load[0]:.2f} before the run and"
        f" {os.getloadavg()[0]:.2f} after",
        f"Settings: privacy.retention_days {privacy.retention_days}, retention_batch {privacy.retention_batch},"
        f" outbox_keep_days {privacy.outbox_keep_days}"
        + ("; --bare: no attachments, empty outbox" if args.bare else ""),
        "",
        f"Data sets (bench/_sweep_data.py, cached in {Path(big.prepared.data_path).parent}; prepared copies beside):",
        f"  {'size':<10}{'appeals':>11}{'closed':>10}{'photos':>10}{'outbox':>9}{'file MB':>9}  closed_at",
    ]
    for r in results:
        p = r.prepared
        mb = Path(p.path).stat().st_size / 1e6
        closed_at = (
            "set here: updated_at (migration 0013's rule)"
            if p.closed_at_from_data == 0
            else f"{p.closed_at_from_data:,} from the data set"
        )
        made = [f"built in {p.build_s:.0f} s"] if p.build_s is not None else []
        made += [f"prepared in {p.prepare_s:.0f} s"] if p.prepare_s is not None else []
        lines.append(
            f"  {p.size.label:<10}{p.size.appeals:>11,}{p.closed:>10,}{p.attachments:>10,}{p.outbox:>9,}{mb:>9.0f}"
            f"  {closed_at}" + (f" ({', '.join(made)})" if made else "")
        )
    lines += [
        "",
        f"One retention sweep, each on a fresh copy; median [min] of {args.runs} runs:",
        f"  {'size':<10}{'D':>6}{'clock (UTC)':>18}{'anonymized':>11}{'batches':>8}{'pruned':>7}"
        f"{'wall ms':>21}{'CPU ms':>21}{'ms/appeal':>10}",
    ]
    for r in results:
        for d, s in r.sweeps.items():
            per = f"{s.wall / s.anonymized:10.2f}" if s.anonymized else f"{'-':>10}"
            at = f"{s.at:%Y-%m-%d %H:%M}"
            lines.append(
                f"  {r.prepared.size.label:<10}{d:>6}{at:>18}{s.anonymized:>11,}{s.batches:>8}"
                f"{s.pruned:>7}{_ms(s.wall_ms):>21}{_ms(s.cpu_ms):>21}{per}"
            )
            if s.anonymized != s.due or s.due != d:
                lines.append(f"    !!! {s.due} were due, {s.anonymized} anonymized (D={d})")
    if len(results) > 1:
        for d in args.ds:
            b, s = big.sweeps[d], small.sweeps[d]
            lines.append(
                f"  {big.prepared.size.label} / {small.prepared.size.label} at D={d}: wall {b.wall / s.wall:.2f}x,"
                f" CPU {b.cpu / s.cpu:.2f}x"
            )
    scans: list[tuple[str, Statement, str, str]] = []
    growing: list[tuple[str, Statement, float]] = []
    for d, recorded in big.recorded.items():
        other = {(st.sql, st.where): st for st in small.recorded[d].statements} if len(results) > 1 else {}
        executed = sum(st.count for st in recorded.statements)
        lines += [
            "",
            f"Statements of one sweep at D={d} at {big.prepared.size.label} (recorded run, {recorded.wall_ms[0]:.0f}"
            f" ms with the recording; {executed} statements executed), by the time spent in them"
            + (f" [at {small.prepared.size.label}]" if other else "")
            + ", with the line that issued each and its query plan:",
        ]
        for st in recorded.statements:
            then = other.get((st.sql, st.where))
            timing = f"{st.ms:.1f} ms" + (f" [{then.ms:.1f} ms]" if then is not None else "")
            lines.append(f"  x{st.count} {timing} at {st.where}")
            if then is not None and st.ms >= 1.0 and then.ms > 0:
                growth = (st.ms / st.count) / (then.ms / then.count)
                if growth > GROWTH_FLAG:
                    lines.append(
                        f"      !! {growth:.1f}x per execution from {small.prepared.size.label}: it grows with the data"
                    )
                    growing.append((f"D={d}", st, growth))
            if not st.plan:
                lines.append(f"      {_short_sql(st.sql)[:100]}")
                continue
            lines.append(f"      {_short_sql(st.sql)}")
            lines.extend(f"      | {p}" for p in st.plan)
            for scan in st.scans:
                table = scan.split(": SCAN ", 1)[1].split(" ")[0]
                lines.append(f"      !!! {scan}" + ("   <-- THE APPEALS TABLE" if table == "appeals" else ""))
                scans.append((f"D={d}", st, scan, table))
    lines += ["", "Checks:"]
    for check in checks(results):
        lines.append(f"  {'PASS' if check['passed'] else 'FAIL'}  {check['check']}: {check['detail']}")
    if scans:
        lines += ["", "!!! STATEMENTS THAT SCAN A WHOLE TABLE OR INDEX:"]
        seen = set()
        for label, st, scan, _table in scans:
            if (st.where, scan) not in seen:
                seen.add((st.where, scan))
                lines.append(f"!!!   [{label}] {st.where}: {scan} ({st.ms:.1f} ms in {st.count} executions)")
        if all(table != "appeals" for *_rest, table in scans):
            lines.append(
                "  (none of them scans the appeals table"
                + (
                    "; an index SEARCH may still visit rows in proportion to it: see the growth below)"
                    if growing
                    else ")"
                )
            )
    else:
        lines += ["", "Every statement of the sweeps is served by an index (no full scan)."]
    if growing:
        lines += [
            "",
            f"!!! STATEMENTS WHOSE COST GROWS WITH THE DATA ({small.prepared.size.label} -> {big.prepared.size.label},"
            " per execution):",
        ]
        for label, st, growth in growing:
            lines.append(f"!!!   [{label}] {st.where}: {growth:.1f}x ({st.ms:.1f} ms in {st.count} executions)")
    return "\n".join(lines)


def as_json(results: list[SizeResult], args: argparse.Namespace) -> str:
    def sweep(s: Sweep) -> dict[str, Any]:
        data = asdict(s)
        data["at"] = s.at.isoformat()
        data["wall_median_ms"], data["cpu_median_ms"] = s.wall, (s.cpu if s.cpu_ms else None)
        for st in data["statements"]:
            st["params"] = [p if isinstance(p, int | float | str) or p is None else repr(p) for p in st["params"]]
        return data

    payload = {
        "sqlite": sqlite3.sqlite_version,
        "runs": args.runs,
        "bare": args.bare,
        "sizes": [
            {
                **{k: v for k, v in asdict(r.prepared).items() if k not in {"size", "clocks"}},
                "appeals": r.prepared.size.appeals,
                "open": r.prepared.size.open,
                "sweeps": [sweep(s) for s in r.sweeps.values()],
                "recorded": [sweep(s) for s in r.recorded.values()],
            }
            for r in results
        ],
        "checks": checks(results),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"comma-separated APPEALS[:OPEN] (default {DEFAULT_SIZES}; OPEN defaults to 10 %%)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed sweeps per D and size (default 3)")
    parser.add_argument(
        "--d",
        dest="ds",
        default=",".join(map(str, DS)),
        help=f"closed appeals due per sweep (default {','.join(map(str, DS))})",
    )
    parser.add_argument("--bare", action="store_true", help="no attachments and an empty outbox (closed_at only)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached data sets and prepared copies")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tsur-bench-sweep",
        help="where data sets are kept (shared with bench/sweep.py)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args(argv)
    try:
        args.ds = sorted({int(d) for d in str(args.ds).split(",") if d.strip()})
        args.size_list = sorted(set(iter_sizes(args.sizes)), key=lambda s: (s.appeals, s.open))
    except ValueError as exc:
        parser.error(str(exc))
    if not args.size_list or not args.ds or min(args.ds) < 0 or args.runs < 1:
        parser.error("need at least one size, one D >= 0 and one run")
    args.record_ds = tuple(dict.fromkeys((RECORD_D if RECORD_D in args.ds else max(args.ds), 0)))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load = os.getloadavg()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tsur-retention-") as tmp:
        absent = Path(tmp) / "absent.db"
        settings = make_settings(absent, database={"url": f"sqlite+aiosqlite:///{absent}"})
        prepared = []
        for size in args.size_list:
            _progress(args, f"[{size.label}] data set…")
            prepared.append(prepare(size, args, settings))
        results = asyncio.run(measure(prepared, args, Path(tmp)))
    print(as_json(results, args) if args.json else render(results, args, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
