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
(within a factor of 1.5 and 20 ms). A missed goal is printed as MISSED with its profile. Usage:

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
    service_ms: list[float] = field(default_factory=list)  # StatsService.region_week, when there is one
    facts: dict[str, int] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.service_ms or self.total_ms)


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
        settings = make_settings(path)
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
        today = T0.astimezone(self.stats.tz).date()
        return self.stats.days(today - timedelta(days=7), today - timedelta(days=1))

    async def weekly_parts(self, session: AsyncSession, weekly: Weekly) -> None:
        """What the leadership's Monday report reads, part by part, on one session."""
        stats, scope, week = self.stats, Scope(), self.week()

        def by(metric: Metric, *dims: Dimension) -> Callable[[], Awaitable[Any]]:
            return lambda: stats.table(session, scope, SliceSpec(metric, dims), week)

        parts: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("received by agency", by(Metric.received, D.agency)),
            ("on time by agency", by(Metric.on_time_share, D.agency)),
            ("overdue now by agency", lambda: stats.overdue_now(session, scope, (D.agency,))),
            ("rating avg by agency", by(Metric.rating_avg, D.agency)),
            ("is it fixed", by(Metric.fixed_share)),
            ("category × district", by(Metric.received, D.category, D.district)),
            (
                "category × district, week before",
                lambda: stats.table(
                    session, scope, SliceSpec(Metric.received, (D.category, D.district)), week.before()
                ),
            ),
            ("problem spots", lambda: stats.problem_spots(session, scope, week)),
            ("agency rating (+ week before)", lambda: stats.agency_rating(session, week)),
        ]
        for name, part in parts:
            started = time.perf_counter()
            result = await part()
            weekly.parts_ms.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            if name == "received by agency":
                weekly.facts["received"] = int(result.total.value or 0)
            if name == "overdue now by agency":
                weekly.facts["overdue now"] = int(result.total.value or 0)
            if name == "problem spots":
                weekly.facts["problem spots"] = len(result)
            if name.startswith("agency rating"):
                weekly.facts["agencies ranked"] = len(result.ranked)

    async def time_weekly(self, runs: int) -> Weekly:
        weekly = Weekly()
        region_week = getattr(self.stats, "region_week", None)
        for _ in range(runs):
            started = time.perf_counter()
            async with self.stats.sessionmaker() as session:
                await self.weekly_parts(session, weekly)
            weekly.total_ms.append((time.perf_counter() - started) * 1000)
            if region_week is not None:
                started = time.perf_counter()
                await region_week(self.week())
                weekly.service_ms.append((time.perf_counter() - started) * 1000)
        return weekly


def _progress(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


async def measure(args: argparse.Namespace, prepared: list[tuple[Size, Path, float | None]]) -> list[SizeRun]:
    benches = [Bench(size, path, build_s) for size, path, build_s in prepared]
    try:
        large = benches[0]
        for bench in benches:
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
        for entry in sorted(large.run.slices, key=lambda e: -e.median)[: args.plans]:
            await large.record(entry)
        if len(benches) > 1:  # and of the largest growth from the small set to the large one
            for entry in growth(large.run, benches[1].run)[: min(args.plans, 3)]:
                if not entry[0].statements:
                    await large.record(entry[0])
    finally:
        for bench in benches:
            await bench.close()
    return [bench.run for bench in benches]


def growth(large: SizeRun, small: SizeRun) -> list[tuple[SliceTime, SliceTime, float]]:
    """The 30-day slices on both sets, the largest ratio (large / small) first."""
    pairs = []
    for entry in large.slices:
        if entry.period != "30d":
            continue
        other = small.slice(entry.metric, entry.dims, "30d")
        if other is not None:
            pairs.append((entry, other, entry.median / max(other.median, 0.001)))
    pairs.sort(key=lambda p: -p[2])
    return pairs


def judge(report: Report) -> list[Goal]:
    large = report.large
    goals = []
    slow = [e for e in large.slices if e.median / 1000 >= GOAL_SLICE_S]
    worst = max(large.slices, key=lambda e: e.median)
    slow_cpu = [e for e in large.slices if e.cpu / 1000 >= GOAL_SLICE_S]
    goals.append(
        Goal(
            f"every slice < {GOAL_SLICE_S} s ({large.size.label})",
            not slow,
            f"{len(slow)} of {len(large.slices)} at or over; slowest {worst.label}: {worst.median / 1000:.3f} s"
            f" (CPU time: {len(slow_cpu)} at or over, slowest {max(e.cpu for e in large.slices) / 1000:.3f} s)",
        )
    )
    if large.weekly is not None:
        goals.append(
            Goal(
                f"weekly report < {GOAL_WEEKLY_S} s ({large.size.label})",
                large.weekly.median / 1000 < GOAL_WEEKLY_S,
                f"{large.weekly.median / 1000:.3f} s"
                + (" (StatsService.region_week)" if large.weekly.service_ms else " (its parts, in one session)"),
            )
        )
    if report.small is not None:
        pairs = growth(large, report.small)
        over = [p for p in pairs if p[0].median > GROWTH_FACTOR * p[1].median + GROWTH_SLACK_MS]
        total_large = sum(p[0].median for p in pairs)
        total_small = sum(p[1].median for p in pairs)
        top = pairs[0] if pairs else None
        detail = f"sum of the 30-day slices {total_small:.0f} ms → {total_large:.0f} ms"
        if top is not None:
            detail += f"; largest ratio {top[2]:.2f} ({top[0].label}: {top[1].median:.1f} → {top[0].median:.1f} ms)"
        goals.append(
            Goal(
                f"30-day slice cost follows the period's rows ({report.small.size.label} → {large.size.label}: "
                f"≤ {GROWTH_FACTOR} × + {GROWTH_SLACK_MS:.0f} ms)",
                not over,
                f"{len(over)} of {len(pairs)} over; " + detail,
            )
        )
    return goals


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
    for run, period in sets:
        out.append(f"{period} period, {run.size.label}: metric × dimensions (ms)")
        header = f"{'':22}" + "".join(f"{dims_label(d):>9}" for d in DIMS)
        out.append(header)
        for metric in dict.fromkeys(e.metric for e in run.slices):
            cells = []
            for dims in DIMS:
                entry = run.slice(metric, dims, period)
                mark = "*" if entry is not None and entry.median / 1000 >= GOAL_SLICE_S else " "
                cells.append(f"{entry.median:8.1f}{mark}" if entry is not None else f"{'':9}")
            out.append(f"{metric.value:22}" + "".join(cells))
        out.append("")
    out.append(f"(* at or over the goal of {GOAL_SLICE_S * 1000:.0f} ms)")
    out.append("")
    for run in (large, small):
        if run is None or run.weekly is None:
            continue
        weekly = run.weekly
        out.append(f"Weekly leadership report, {run.size.label} (the week before {T0:%Y-%m-%d}):")
        for name, times in weekly.parts_ms.items():
            out.append(f"  {name:36} {statistics.median(times):8.1f} ms")
        out.append(f"  {'all parts, one session':36} {statistics.median(weekly.total_ms):8.1f} ms")
        if weekly.service_ms:
            out.append(f"  {'StatsService.region_week':36} {statistics.median(weekly.service_ms):8.1f} ms")
        out.append("  " + ", ".join(f"{k} {v:,}" for k, v in weekly.facts.items()))
        out.append("")
    recorded = [e for e in large.slices if e.statements]
    if recorded:
        out.append("The slowest slices (and those whose cost grew most), their statements and plans:")
        for entry in sorted(recorded, key=lambda e: -e.median):
            out.append(f"- {entry.label}: {entry.median:.1f} ms, {entry.rows} rows, on {entry.base:,}")
            for statement in entry.statements:
                alone = f"{statement.ms:.1f} ms alone" if statement.ms is not None else ""
                out.append(f"    {statement.where}: {alone}")
                out.append("      " + " ".join(statement.sql.split()))
                out.extend(f"      | {line}" for line in statement.plan)
        out.append("")
    if small is not None:
        out.append(f"30-day slices, {small.size.label} → {large.size.label} (largest ratios):")
        for big, little, ratio in growth(large, small)[:8]:
            out.append(f"  {big.label:44} {little.median:8.1f} → {big.median:8.1f} ms  ×{ratio:.2f}")
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
