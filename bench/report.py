"""Statistics benchmark (issue 14 «Correctness and speed»): every metric × {no dimension, each dimension, a few
pairs} × {the last 30 days, a year} through the real `StatsService` on a million appeals in SQLite, the weekly
leadership report's data, and the query plans of the slowest slices.

The data set is bench/_sweep_data.py's (the sweep benchmark's generator: rejections with their reasons, answers with
the figures the state machine keeps, answer notes with returned ones, ratings, follow-ups), cached in a temp
directory per size (`--rebuild` to force). The measured code is the real one: `build_services(make_settings(db), …,
ManualClock(T0))` on the cached file, read only, as an analyst (the whole region). Each slice is timed `--runs`
times (median). The same 30-day slices are then timed on a smaller set with as many appeals a day (100k over 110
days: the same rows in the period, a tenth of the table), to show that a slice's cost follows its period's rows, not
the table's. The slowest slices are run once more with their statements recorded: EXPLAIN QUERY PLAN and the
statement's time alone.

Goals (on SQLite): every slice < 0.3 s; the weekly report < 2 s; a 30-day slice on 1M no slower than on 100k
(within a factor of 1.5 and 20 ms). Each goal is judged on the wall time and on the process's CPU time (SQLite runs
in it: on a shared machine the wall time also counts the other processes' turns). A missed goal is printed as
MISSED with its profile. Usage:

    .venv/bin/python bench/report.py [--appeals 1000000] [--small 100000] [--runs 3] [--plans 5] [--json] [--strict]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/report.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from bench._sweep_data import SPAN_DAYS, T0, Size, ensure_db, table_counts  # noqa: E402
from bench.sweep import Recorder, Statement, explain, time_alone  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.domain import Dimension, Metric, PeriodKind, Role, SliceSpec  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.services.stats import Period, Scope, StatsService  # noqa: E402
from bot.services.users import Actor  # noqa: E402
from storage.db import create_engine, create_sessionmaker  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

GOAL_SLICE_S = 0.3
GOAL_WEEKLY_S = 2.0
AGENCY_RATING = "agency rating, week and before (monthly report)"
GROWTH_FACTOR = 1.5  # a 30-day slice on the large set may take this many times the small set's …
GROWTH_SLACK_MS = 20.0  # … plus this (timer noise on fast slices)
OPEN_SHARE = 0.02  # the open appeals: the last three weeks or so, as with a 30-day answer time
D = Dimension
DIMS: tuple[tuple[Dimension, ...], ...] = (
    (),
    *((d,) for d in Dimension),
    (D.category, D.district),
    (D.agency, D.status),
    (D.agency, D.month),
    (D.category, D.week),
)
PERIODS = ("30d", "1y")
SHORT = {
    D.block: "blk",
    D.category: "cat",
    D.agency: "agn",
    D.district: "dst",
    D.status: "sts",
    D.kind: "knd",
    D.month: "mon",
    D.week: "wk",
    D.day: "day",
}


def dims_label(dims: tuple[Dimension, ...]) -> str:
    return "×".join(SHORT[d] for d in dims) or "—"


@dataclass
class SliceTime:
    metric: Metric
    dims: tuple[Dimension, ...]
    period: str
    size: str
    ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # the process's CPU time (SQLite runs in aiosqlite's thread)
    rows: int = 0  # rows of the table
    base: int = 0  # what the total stands on (appeals, ratings, answers)
    statements: list[Statement] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def label(self) -> str:
        return f"{self.metric.value} by {dims_label(self.dims)}, {self.period}"


@dataclass
class Weekly:
    parts_ms: dict[str, list[float]] = field(default_factory=dict)
    total_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)  # StatsService.region_week
    service_cpu_ms: list[float] = field(default_factory=list)
    facts: dict[str, int] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.service_ms)


@dataclass
class SizeRun:
    size: Size
    path: str
    build_s: float | None
    counts: dict[str, int]
    period_rows: dict[str, dict[str, int]] = field(default_factory=dict)  # period → event → rows
    slices: list[SliceTime] = field(default_factory=list)
    weekly: Weekly | None = None

    def slice(self, metric: Metric, dims: tuple[Dimension, ...], period: str) -> SliceTime | None:
        return next((s for s in self.slices if (s.metric, s.dims, s.period) == (metric, dims, period)), None)


@dataclass
class Goal:
    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    large: SizeRun
    small: SizeRun | None
    runs: int
    load: tuple[float, float, float]
    goals: list[Goal] = field(default_factory=list)


ANALYST = Actor(id=-1, tg_id=-1, locale="en", has_consent=True, roles=frozenset({Role.analyst}))


class Bench:
    """One data set and the real services over it (the file is only read)."""

    def __init__(self, size: Size, path: Path, build_s: float | None) -> None:
        self.run = SizeRun(size, str(path), build_s, table_counts(path))
        # Always this SQLite file (the tests' settings would name a PostgreSQL database under TSUR_TEST_DATABASE_URL).
        settings = make_settings(path, database={"url": f"sqlite+aiosqlite:///{path}"})
        self.engine = create_engine(settings.database.url)
        self.clock = ManualClock(T0)
        self.services = build_services(settings, create_sessionmaker(self.engine), self.clock)
        self.stats: StatsService = self.services.stats
        self.recorder = Recorder(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    def spec(self, metric: Metric, dims: tuple[Dimension, ...], period: str) -> SliceSpec:
        if period == "30d":
            return SliceSpec(metric, dims, (), PeriodKind.days30)
        today = T0.astimezone(self.stats.tz).date()
        first = today - timedelta(days=364)
        return SliceSpec(metric, dims, (), PeriodKind.custom, first.isoformat(), today.isoformat())

    async def time_slice(self, entry: SliceTime) -> None:
        spec = self.spec(entry.metric, entry.dims, entry.period)
        started, cpu = time.perf_counter(), time.process_time()
        table = await self.stats.slice(ANALYST, spec)
        entry.ms.append((time.perf_counter() - started) * 1000)
        entry.cpu_ms.append((time.process_time() - cpu) * 1000)
        entry.rows, entry.base = len(table.rows), table.total.base

    async def record(self, entry: SliceTime) -> None:
        """Run the slice once more with its statements recorded, then explain and time each alone."""
        self.recorder.active = True
        try:
            await self.stats.slice(ANALYST, self.spec(entry.metric, entry.dims, entry.period))
        finally:
            self.recorder.active = False
        entry.statements = self.recorder.take()
        for statement in entry.statements:
            await explain(self.engine, statement)
            await time_alone(self.engine, statement, repeats=2)

    async def count_period_rows(self) -> None:
        """How many rows each event has in each period (what a slice's cost should follow)."""
        for period in PERIODS:
            rows: dict[str, int] = {}
            for name, metric in (
                ("filed", Metric.received),
                ("answered", Metric.answered),
                ("first action", Metric.first_action_median),
                ("rated", Metric.rating_count),
                ("is it fixed", Metric.fixed_share),
            ):
                table = await self.stats.slice(ANALYST, self.spec(metric, (), period))
                rows[name] = table.total.base
            self.run.period_rows[period] = rows

    def week(self) -> Period:
        """The week before T0 (a Monday morning), as the Monday report covers."""
        return self.stats.last_week(T0)

    async def weekly_parts(self, session: AsyncSession, weekly: Weekly) -> None:
        """What StatsService.region_week reads, part by part on one session (the profile of the weekly report),
        and apart from it the agency rating of the week (with the week before) that the monthly report adds."""
        stats, scope, week = self.stats, Scope(), self.week()

        def by(metric: Metric, period: Period, *dims: Dimension) -> Callable[[], Awaitable[Any]]:
            return lambda: stats.table(session, scope, SliceSpec(metric, dims), period)

        parts: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("received, week and week before", by(Metric.received, week)),
            ("", by(Metric.received, week.before())),
            ("on time / answered, week and before", by(Metric.on_time_share, week)),
            ("", by(Metric.on_time_share, week.before())),
            ("overdue now by agency", lambda: stats.overdue_now(session, scope, (D.agency,))),
            ("rating avg, week and before", by(Metric.rating_avg, week)),
            ("", by(Metric.rating_avg, week.before())),
            ("is it fixed", by(Metric.fixed_share, week)),
            ("category × district, week and before", by(Metric.received, week, D.category, D.district)),
            ("", by(Metric.received, week.before(), D.category, D.district)),
            ("problem spots (week, 4 weeks before)", lambda: stats.problem_spots(session, scope, week)),
            (AGENCY_RATING, lambda: stats.agency_rating(session, week)),
        ]
        name = ""
        for label, part in parts:
            name = label or name
            started = time.perf_counter()
            result = await part()
            ms = (time.perf_counter() - started) * 1000
            times = weekly.parts_ms.setdefault(name, [])
            if label:
                times.append(ms)
            else:  # the second statement of the same part
                times[-1] += ms
            if name == "overdue now by agency":
                weekly.facts["overdue now"] = int(result.total.value or 0)
            if name.startswith("problem spots"):
                weekly.facts["problem spots"] = len(result)
            if name == AGENCY_RATING:
                weekly.facts["agencies ranked"] = len(result.ranked)
                weekly.facts["agencies apart"] = len(result.apart)

    async def time_weekly(self, runs: int) -> Weekly:
        weekly = Weekly()
        for _ in range(runs):
            async with self.stats.sessionmaker() as session:
                await self.weekly_parts(session, weekly)
            started, cpu = time.perf_counter(), time.process_time()
            async with self.stats.sessionmaker() as session:
                region = await self.stats.region_week(session, Scope(), self.week())
            weekly.service_ms.append((time.perf_counter() - started) * 1000)
            weekly.service_cpu_ms.append((time.process_time() - cpu) * 1000)
            weekly.facts["received"] = int(region.received.value or 0)
        weekly.total_ms = [
            sum(run) for run in zip(*(t for n, t in weekly.parts_ms.items() if n != AGENCY_RATING), strict=True)
        ]
        return weekly


def _progress(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


async def measure(args: argparse.Namespace, prepared: list[tuple[Size, Path, float | None]]) -> list[SizeRun]:
    benches = [Bench(size, path, build_s) for size, path, build_s in prepared]
    try:
        large = benches[0]
        for bench in benches:
            await bench.stats.directory.reload()  # as the bot does at start: names and the agencies' list
            await bench.count_period_rows()  # untimed: opens the pooled connection, warms the file's pages
        entries = {
            (bench.run.size.label, metric, dims, period): SliceTime(metric, dims, period, bench.run.size.label)
            for bench in benches
            for metric in args.metric_list
            for dims in DIMS
            for period in (PERIODS if bench is large else ("30d",))
        }
        for bench in benches:
            bench.run.slices = [e for e in entries.values() if e.size == bench.run.size.label]
        for n in range(args.runs):
            _progress(args, f"run {n + 1}/{args.runs}: {len(entries)} slices…")
            # Sizes interleaved slice by slice, so a busy moment of the machine falls on both alike.
            for metric in args.metric_list:
                for dims in DIMS:
                    for period in PERIODS:
                        for bench in benches:
                            entry = entries.get((bench.run.size.label, metric, dims, period))
                            if entry is not None:
                                await bench.time_slice(entry)
        _progress(args, "the weekly report…")
        for bench in benches:
            bench.run.weekly = await bench.time_weekly(args.runs)
        _progress(args, "query plans of the slowest…")
        for entry in sorted(large.run.slices, key=lambda e: -e.cpu)[: args.plans]:
            await large.record(entry)
        if len(benches) > 1:  # and of the largest growth from the small set to the large one
            for entry in growth(large.run, benches[1].run, cpu=True)[: min(args.plans, 3)]:
                if not entry[0].statements:
                    await large.record(entry[0])
    finally:
        for bench in benches:
            await bench.close()
    return [bench.run for bench in benches]


def growth(large: SizeRun, small: SizeRun, cpu: bool = False) -> list[tuple[SliceTime, SliceTime, float]]:
    """The 30-day slices on both sets, the largest ratio (large / small) first."""
    pairs = []
    for entry in large.slices:
        if entry.period != "30d":
            continue
        other = small.slice(entry.metric, entry.dims, "30d")
        if other is not None:
            pairs.append((entry, other, _time(entry, cpu) / max(_time(other, cpu), 0.001)))
    pairs.sort(key=lambda p: -p[2])
    return pairs


def judge(report: Report) -> list[Goal]:
    """Each goal on the wall time (what a person waits) and on the CPU time (the same on an idle machine: this one is
    shared, and the wall time of a slice also counts the other processes' turns)."""
    large = report.large
    goals = []
    for clock, of in (("wall", lambda e: e.median), ("CPU", lambda e: e.cpu)):
        slow = [e for e in large.slices if of(e) / 1000 >= GOAL_SLICE_S]
        worst = max(large.slices, key=of)
        goals.append(
            Goal(
                f"every slice < {GOAL_SLICE_S} s ({large.size.label}, {clock} time)",
                not slow,
                f"{len(slow)} of {len(large.slices)} at or over; slowest {worst.label}: {of(worst) / 1000:.3f} s",
            )
        )
    if large.weekly is not None:
        weekly = large.weekly
        for clock, times in (("wall", weekly.service_ms), ("CPU", weekly.service_cpu_ms)):
            goals.append(
                Goal(
                    f"weekly report < {GOAL_WEEKLY_S} s ({large.size.label}, {clock} time)",
                    statistics.median(times) / 1000 < GOAL_WEEKLY_S,
                    f"StatsService.region_week {statistics.median(times) / 1000:.3f} s",
                )
            )
    if report.small is not None:
        for clock, index in (("wall", 2), ("CPU", 3)):
            pairs = growth(large, report.small, cpu=index == 3)
            over = [p for p in pairs if _over(p, cpu=index == 3)]
            total_large = sum(_time(p[0], index == 3) for p in pairs)
            total_small = sum(_time(p[1], index == 3) for p in pairs)
            detail = f"sum of the 30-day slices {total_small:.0f} ms → {total_large:.0f} ms"
            if pairs:
                top = pairs[0]
                detail += (
                    f"; largest ratio {top[2]:.2f} ({top[0].label}: {_time(top[1], index == 3):.1f} → "
                    f"{_time(top[0], index == 3):.1f} ms)"
                )
            goals.append(
                Goal(
                    f"30-day slice cost follows the period's rows ({report.small.size.label} → {large.size.label}: "
                    f"≤ {GROWTH_FACTOR} × + {GROWTH_SLACK_MS:.0f} ms, {clock} time)",
                    not over,
                    f"{len(over)} of {len(pairs)} over; " + detail,
                )
            )
    return goals


def _time(entry: SliceTime, cpu: bool) -> float:
    return entry.cpu if cpu else entry.median


def _over(pair: tuple[SliceTime, SliceTime, float], cpu: bool) -> bool:
    return _time(pair[0], cpu) > GROWTH_FACTOR * _time(pair[1], cpu) + GROWTH_SLACK_MS


def render(report: Report) -> str:
    large, small = report.large, report.small
    out = [f"Statistics benchmark: {report.runs} runs per slice, medians in ms; load {report.load[0]:.2f}", ""]
    for run in (large, small):
        if run is None:
            continue
        build = f"built in {run.build_s:.1f} s" if run.build_s is not None else "cached (--rebuild to rebuild)"
        counts = ", ".join(f"{k} {v:,}" for k, v in run.counts.items())
        out.append(f"[{run.size.label}] {run.path}: {build}; {counts}")
        for period, rows in run.period_rows.items():
            out.append(f"  rows in the {period} period: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    out.append("")
    sets = [(large, p) for p in PERIODS] + ([(small, "30d")] if small is not None else [])
    for clock in ("wall", "CPU"):
        for run, period in sets:
            out.append(f"{period} period, {run.size.label}: metric × dimensions, {clock} time (ms)")
            header = f"{'':22}" + "".join(f"{dims_label(d):>9}" for d in DIMS)
            out.append(header)
            for metric in dict.fromkeys(e.metric for e in run.slices):
                cells = []
                for dims in DIMS:
                    entry = run.slice(metric, dims, period)
                    if entry is None:
                        cells.append(f"{'':9}")
                        continue
                    ms = _time(entry, clock == "CPU")
                    cells.append(f"{ms:8.1f}{'*' if ms / 1000 >= GOAL_SLICE_S else ' '}")
                out.append(f"{metric.value:22}" + "".join(cells))
            out.append("")
    out.append(f"(* at or over the goal of {GOAL_SLICE_S * 1000:.0f} ms)")
    out.append("")
    for run in (large, small):
        if run is None or run.weekly is None:
            continue
        weekly = run.weekly
        out.append(f"Weekly leadership report, {run.size.label} (the week before {T0:%Y-%m-%d}), its parts:")
        for name, times in weekly.parts_ms.items():
            out.append(f"  {name:50} {statistics.median(times):8.1f} ms")
        out.append(f"  {'its parts but the rating, one session':50} {statistics.median(weekly.total_ms):8.1f} ms")
        out.append(f"  {'StatsService.region_week':50} {statistics.median(weekly.service_ms):8.1f} ms")
        out.append("  " + ", ".join(f"{k} {v:,}" for k, v in weekly.facts.items()))
        out.append("")
    recorded = [e for e in large.slices if e.statements]
    if recorded:
        out.append("The slowest slices by CPU time (and those whose cost grew most), their statements and plans:")
        for entry in sorted(recorded, key=lambda e: -e.cpu):
            out.append(
                f"- {entry.label}: {entry.median:.1f} ms (CPU {entry.cpu:.1f} ms), {entry.rows} rows, on {entry.base:,}"
            )
            for statement in entry.statements:
                alone = f"{statement.ms:.1f} ms alone" if statement.ms is not None else ""
                out.append(f"    {statement.where}: {alone}")
                out.append("      " + " ".join(statement.sql.split()))
                out.extend(f"      | {line}" for line in statement.plan)
        out.append("")
    if small is not None:
        out.append(f"30-day slices, {small.size.label} → {large.size.label} (largest ratios of the CPU time):")
        for big, little, ratio in growth(large, small, cpu=True)[:8]:
            out.append(
                f"  {big.label:44} CPU {little.cpu:8.1f} → {big.cpu:8.1f} ms ×{ratio:.2f}"
                f"  (wall {little.median:8.1f} → {big.median:8.1f} ms)"
            )
        out.append("")
    out.append("Goals:")
    for goal in report.goals:
        out.append(f"  {'PASS' if goal.passed else 'MISSED'}: {goal.name}: {goal.detail}")
    return "\n".join(out)


def as_json(report: Report) -> str:
    def run(r: SizeRun | None) -> dict[str, Any] | None:
        if r is None:
            return None
        return {
            "size": r.size.label,
            "counts": r.counts,
            "period_rows": r.period_rows,
            "slices": [
                {
                    "metric": e.metric.value,
                    "dims": [d.value for d in e.dims],
                    "period": e.period,
                    "ms": e.median,
                    "cpu_ms": e.cpu,
                }
                for e in r.slices
            ],
            "weekly_ms": r.weekly.median if r.weekly else None,
            "weekly_parts_ms": {k: statistics.median(v) for k, v in r.weekly.parts_ms.items()} if r.weekly else {},
        }

    goals = [{"name": g.name, "passed": g.passed, "detail": g.detail} for g in report.goals]
    return json.dumps({"large": run(report.large), "small": run(report.small), "goals": goals}, indent=1)


def sizes(args: argparse.Namespace) -> tuple[Size, Size | None]:
    """The large set and the small one with as many appeals a day (so the same open ones and the same period rows)."""
    large = Size(args.appeals, max(1, round(args.appeals * OPEN_SHARE)))
    if not args.small:
        return large, None
    days = max(60, round(SPAN_DAYS * args.small / args.appeals))
    return large, Size(args.small, min(large.open, args.small // 2), days)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--appeals", type=int, default=1_000_000, help="appeals in the data set (default 1000000)")
    parser.add_argument(
        "--small",
        type=int,
        default=100_000,
        help="appeals in the comparison set with as many a day (default 100000; 0: no comparison)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per slice (default 3)")
    parser.add_argument("--plans", type=int, default=5, help="how many of the slowest slices to explain (default 5)")
    parser.add_argument("--metrics", default="", help="only these metrics (comma-separated names)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached data sets")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tsur-bench-sweep",
        help="where data sets are kept (shared with bench/sweep.py)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the tables")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a goal is missed")
    args = parser.parse_args(argv)
    try:
        args.metric_list = [Metric(m.strip()) for m in args.metrics.split(",") if m.strip()] or list(Metric)
    except ValueError as error:
        parser.error(str(error))
    if args.appeals < 1000 or args.runs < 1 or args.plans < 0:
        parser.error("need at least 1000 appeals, one run and plans >= 0")
    if args.small and not 1000 <= args.small < args.appeals:
        parser.error("--small must be between 1000 and --appeals (or 0)")
    return args


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    prepared: list[tuple[Size, Path, float | None]] = []
    for size in sizes(args):
        if size is None:
            continue
        _progress(args, f"[{size.label}] data set…")
        path, build_s = ensure_db(size, args.cache_dir, rebuild=args.rebuild)
        if build_s is not None:
            _progress(args, f"[{size.label}] built in {build_s:.1f} s: {path}")
        prepared.append((size, path, build_s))
    load = os.getloadavg()
    runs = asyncio.run(measure(args, prepared))
    report = Report(runs[0], runs[1] if len(runs) > 1 else None, args.runs, load)
    report.goals = judge(report)
    print(as_json(report) if args.json else render(report))
    return report


if __name__ == "__main__":
    result = main()
    sys.exit(3 if "--strict" in sys.argv and not all(g.passed for g in result.goals) else 0)
