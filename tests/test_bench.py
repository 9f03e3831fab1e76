"""bench/instances.py without servers: its options, its counting of duplicates and losses, its report."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.instances import APPEAL, Counts, Deployment, Person, parse_args, render, setups
from bench.intake import Phase

CONFIRM = len(APPEAL) - 1


def test_options_and_their_defaults() -> None:
    args = parse_args([])
    assert (args.rounds, args.residents, args.rate, args.duration, args.sqlite) == (2, 50, 60.0, 8.0, False)
    args = parse_args(["--rounds", "3", "--residents", "20", "--rate", "80", "--duration", "5", "--sqlite"])
    assert (args.rounds, args.residents, args.rate, args.duration) == (3, 20, 80.0, 5.0)
    assert [s.name for s in setups(args.sqlite)] == ["1 x SQLite", "1 x PostgreSQL", "2 x PostgreSQL"]
    with pytest.raises(SystemExit):
        parse_args(["--rounds", "0"])


class Counted(Deployment):
    """A deployment with its appeals given, not read from a database."""

    def __init__(self, stored: dict[int, int], pending: int = 0) -> None:
        super().__init__(setups(False)[1], 9, Path("."))
        self.stored = stored
        self.emu = SimpleNamespace(  # type: ignore[assignment]
            users={}, updates_pending=lambda: pending, webhook=SimpleNamespace(failures=0)
        )
        self.reference = {(i, 0): 1 for i in range(len(APPEAL))}  # one reply per step

    async def appeals_by_user(self) -> dict[int, int]:
        return self.stored

    async def quiet(self) -> None:
        """Nothing more comes: the people are given as they end."""


def person(uid: int, replies: int, numbers: int, queries: list[str] | None = None) -> SimpleNamespace:
    messages = [
        SimpleNamespace(text="✅ Your appeal is registered. Number: 1" if i < numbers else "…") for i in range(replies)
    ]
    return SimpleNamespace(
        id=uid, messages=messages, callback_answers=[{"callback_query_id": q} for q in queries or []]
    )


def filed(dep: Deployment, uid: int) -> None:
    dep.people[uid] = Person(done=[(i, 0) for i in range(len(APPEAL))], confirms=1)


async def test_every_step_answered_once_counts_nothing() -> None:
    dep = Counted({1: 1})
    filed(dep, 1)
    counts = await dep.count([person(1, len(APPEAL), 1)])  # type: ignore[list-item]
    assert (counts.duplicates, counts.losses) == (0, 0), counts.detail


async def test_an_appeal_stored_twice_an_extra_reply_and_a_query_answered_twice_are_duplicates() -> None:
    dep = Counted({1: 2, 2: 1, 3: 1})
    for uid in (1, 2, 3):
        filed(dep, uid)
    users = [
        person(1, len(APPEAL), 1),  # one Confirm, two appeals
        person(2, len(APPEAL) + 1, 1),  # a reply more than the steps give
        person(3, len(APPEAL) - 2, 1, ["q1", "q1"]),  # one callback query answered twice
    ]
    counts = await dep.count(users)  # type: ignore[arg-type]
    assert (counts.duplicates, counts.losses) == (3, 0), counts.detail


async def test_an_unanswered_step_an_unstored_appeal_an_untold_number_and_a_pending_update_are_losses() -> None:
    dep = Counted({2: 1}, pending=1)
    dep.people[1] = Person(done=[(i, 0) for i in range(CONFIRM)], confirms=1, lost=1)  # Confirm never answered
    filed(dep, 2)  # stored, but its number never told
    filed(dep, 3)  # told, never stored
    users = [person(1, CONFIRM, 0), person(2, len(APPEAL), 0), person(3, len(APPEAL), 1)]
    counts = await dep.count(users)  # type: ignore[arg-type]
    assert (counts.duplicates, counts.losses) == (0, 4), counts.detail


def test_the_report_gives_the_ratio_and_the_goal() -> None:
    args = parse_args(["--rounds", "1"])
    deps = []
    for n, (setup, rate) in enumerate(zip(setups(False), (100.0, 150.0), strict=True)):
        dep = Deployment(setup, n, Path("."))
        dep.emu = SimpleNamespace(webhook=SimpleNamespace(failures=0))  # type: ignore[assignment]
        dep.bursts = [Phase(650 / rate, 650, 50, 650 * 0.008, [5.0] * 650, 3.0)]
        dep.paced = [Phase(8.0, 480, 30, 480 * 0.008, [float(i % 40) for i in range(480)], 3.0, 60.0)]
        dep.counts = [Counts(), Counts(losses=n)]
        dep.services_cpu = [(1.3, 0.2, 1.0), (0.6, 0.1, 0.5)]
        deps.append(dep)
    report = render(deps, args)
    assert "2 x PostgreSQL   150.0   1.50" in report, report
    assert "1.50 x the updates/s" in report and "0 and 1, MISSED" in report, report


def test_the_poll_benchmark_runs_small() -> None:
    """bench/poll.py end to end on a few residents: a bot process, the poll published by its scheduler, delivered
    through the outbox, answered; the results count every answer."""
    from bench import poll

    assert (poll.parse_args([]).residents, poll.parse_args([]).answers, poll.parse_args([]).window) == (10_000, 5_000, 60.0)
    with pytest.raises(SystemExit):
        poll.parse_args(["--residents", "5", "--answers", "6"])
    report = poll.main(["--residents", "12", "--answers", "6", "--window", "1"])
    assert report.counted == report.answers == 6
    assert len(report.latencies_ms) == 6 and report.chart_bytes > 0


def test_the_broadcast_figures_count_duplicates_losses_the_restart_gap_and_held_notifications() -> None:
    """bench/broadcast.py's counting on a request log made by hand: an item accepted twice, one never sent, one
    refused with 403, a 429; the kill at 10 s, the bot polling again at 13 s and its first item at 15 s."""
    from bench import broadcast as b
    from bot.domain import BroadcastStatus
    from emulator.models import ApiCall
    from storage.repositories.broadcasts import ItemCounts

    def item(at: float, chat: int, status: int = 200) -> ApiCall:
        return ApiCall(
            "sendMessage", {"chat_id": str(chat), "text": b.TEXT}, ok=status == 200, status=status,
            error_code=None if status == 200 else status, time=at,
        )

    residents = [b.FIRST_RESIDENT + n for n in range(6)]  # the last one gets nothing
    log = [
        item(1.0, residents[0]), item(2.0, residents[1], 403), item(3.0, residents[2], 429), item(3.1, residents[2]),
        ApiCall("sendMessage", {"chat_id": str(b.OFFICIAL), "text": "№ 2026-000001"}, ok=True, status=200, time=4.0),
        item(9.0, residents[3]),  # in flight at the kill: its lease runs out, it is sent again
        item(15.0, residents[3]), item(20.0, residents[0] + 1000),  # not a resident of the broadcast
        item(21.0, residents[4]),
    ]
    watch = b.Watch(SimpleNamespace(requests=log), set(residents))  # type: ignore[arg-type]
    watch.scan()
    assert watch.items() == 5 and watch.too_many == 1 and len(watch.refused) == 1
    committed = {"2026-000001": 3.8, "2026-000002": 9.5, "2026-000003": 12.0, "2026-000004": 16.0, "2026-000005": 30.0}
    received = {
        ("2026-000001", b.OFFICIAL): 4.0, ("2026-000001", b.FILER): 4.3,
        ("2026-000002", b.OFFICIAL): 13.5, ("2026-000002", b.FILER): 13.6,  # held by the kill
        ("2026-000003", b.OFFICIAL): 14.0, ("2026-000003", b.FILER): 14.1,  # committed while the bot was down
        ("2026-000004", b.OFFICIAL): 16.5,  # the filer's never came
        ("2026-000005", b.OFFICIAL): 30.1, ("2026-000005", b.FILER): 30.1,  # after the last item: not counted
    }
    restart = b.Restart(killed_at=10.0, ready_s=3.0, gap_s=0.0, lease_s=10)
    row = SimpleNamespace(recipients=6, flood_waits=0, status=BroadcastStatus.done)
    args = b.parse_args(["--residents", "6", "--blocked", "1"])
    report = b.measure(
        args, watch, committed, received, restart, row, ItemCounts(sent=4, blocked=1), unsure=1, blocked={residents[1]}
    )
    assert (report.duplicates, report.losses, report.too_many, report.unsure) == (1, 1, 1, 1)
    assert report.restart is not None and report.restart.gap_s == 5.0
    assert (report.first_s, report.last_s, report.span_s) == (1.0, 21.0, 20.0)
    assert sorted(round(d, 3) for d in report.delays_s) == [0.2, 0.5, 0.5]
    assert sorted(round(d, 3) for d in report.around_restart_s) == [2.0, 2.1, 4.0, 4.1]
    assert report.unsent_notifications == 1
    # Sending calls at 1, 2, 3.1, 4, 9 | 15, 20, 21 (the 429 and the spacing across the kill left out).
    assert [round(x, 3) for x in report.spacings_s] == [1.0, 1.1, 0.9, 5.0, 5.0, 1.0]
    assert round(report.lost_s, 3) == round(14.0 - 6 * 0.04, 3)
    assert report.fraction(report.delivered) == 4 / 20 / 25 and report.fraction(4, without_gap=True) == 4 / 15 / 25
    text = b.render(report, args)
    assert "duplicates 1, losses 1, items possibly sent twice (in flight at the kill) 1" in text, text
    assert "losses 0: MISS (1)" in text and "duplicates only for the item in flight at the kill: PASS (1 <= 1)" in text
    assert "restart gap: 5.0 s" in text and "1 NEVER SENT" in text and "p99 < 2 s: MISS" in text, text


def test_the_broadcast_benchmark_runs_small() -> None:
    """bench/broadcast.py end to end on a few residents, without the kill (a killed sender's item in flight waits for
    its outbox lease, a minute): a bot process, the broadcast started by its scheduler, delivered through the
    outbox under the emulator's rate limits, the blocked residents found by their 403, appeal notifications timed."""
    from bench import broadcast

    defaults = broadcast.parse_args([])
    assert (defaults.residents, defaults.blocked, defaults.rate, defaults.no_kill) == (10_000, 100, 25.0, False)
    for wrong in (["--residents", "5", "--blocked", "5"], ["--rate", "31"], ["--rate", "0"]):
        with pytest.raises(SystemExit):
            broadcast.parse_args(wrong)
    report = broadcast.main(["--residents", "150", "--blocked", "3", "--no-kill"])
    assert (report.recipients, report.delivered, report.blocked, report.failed) == (150, 147, 3, 0)
    assert (report.duplicates, report.losses, report.unsure, report.restart) == (0, 0, 0, None)
    assert report.accepted == 147 and report.delays_s and report.unsent_notifications == 0


def test_the_statistics_benchmark_runs_small(tmp_path: Path) -> None:
    """bench/report.py end to end on a few thousand appeals: every metric × dimensions × period timed through the
    StatsService, the weekly report's parts, the plans of the slowest, the goals judged; the data set holds what the
    statistics read, consistently, and the bench's period rows are the appeals filed in those local days."""
    import sqlite3

    from bench import report as r
    from bench._sweep_data import T0, cache_path

    defaults = r.parse_args([])
    assert (defaults.appeals, defaults.small, defaults.runs, defaults.plans) == (1_000_000, 100_000, 3, 5)
    for wrong in (["--small", "2000000"], ["--runs", "0"], ["--metrics", "nonsense"]):
        with pytest.raises(SystemExit):
            r.parse_args(wrong)
    args = ["--appeals", "4000", "--small", "1500", "--runs", "1", "--plans", "2", "--cache-dir", str(tmp_path)]
    result = r.main(args)
    large, small = result.large, result.small
    assert small is not None and small.size.days < large.size.days
    assert len(large.slices) == len(r.Metric) * len(r.DIMS) * 2 and len(small.slices) == len(r.Metric) * len(r.DIMS)
    assert all(len(s.ms) == 1 and s.ms[0] > 0 for s in large.slices + small.slices)
    names = [g.name.split(" (")[0] + g.name.split(",")[-1] for g in result.goals]
    assert names == [
        f"{goal}{clock}"
        for goal in ("every slice < 0.3 s", "weekly report < 2.0 s", "30-day slice cost follows the period's rows")
        for clock in (" wall time)", " CPU time)")
    ], names
    recorded = [s for s in large.slices if s.statements]
    assert len(recorded) >= 2 and all(st.plan for s in recorded for st in s.statements)
    assert large.weekly is not None and set(large.weekly.facts) >= {"received", "overdue now", "agencies ranked"}
    assert large.weekly.facts["agencies ranked"] + large.weekly.facts["agencies apart"] > 0, large.weekly.facts

    db = sqlite3.connect(cache_path(large.size, tmp_path))
    try:
        # 30 local days (Moscow, UTC+3) up to T0's day: from 00:00 Moscow 29 days before T0's date.
        start = (T0 + timedelta(hours=3)).replace(hour=0, minute=0, second=0) - timedelta(days=29, hours=3)
        filed = db.execute(
            "SELECT count(*) FROM appeals WHERE created_at >= ?", (start.replace(tzinfo=None).isoformat(" "),)
        ).fetchone()[0]
        assert large.period_rows["30d"]["filed"] == filed > 0
        one = db.execute
        assert (
            one("SELECT count(*) FROM appeals WHERE answered_on_time != (answered_at <= deadline_at)").fetchone()[0]
            == 0
        )
        assert (
            one("SELECT count(*) FROM appeals WHERE status = 'rejected' AND reject_reason IS NULL").fetchone()[0] == 0
        )
        assert one("SELECT count(*) FROM appeals WHERE status = 'rejected'").fetchone()[0] > 0
        assert (
            one(
                "SELECT count(*) FROM appeals a WHERE answered_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM appeal_messages m"
                " WHERE m.appeal_id = a.id AND m.kind = 'answer' AND m.status = 'approved')"
            ).fetchone()[0]
            == 0
        )
        assert (
            one(
                "SELECT count(*) FROM ratings r JOIN appeal_messages m ON m.id = r.note_id WHERE m.appeal_id != r.appeal_id"
            ).fetchone()[0]
            == 0
        )
        assert one("SELECT count(*) FROM appeal_messages WHERE status = 'returned'").fetchone()[0] > 0
        assert one("SELECT count(*) FROM followups WHERE answer IS NOT NULL").fetchone()[0] > 0
        assert one("SELECT count(*) FROM appeals WHERE first_action_at IS NULL").fetchone()[0] == 0
    finally:
        db.close()


def test_the_retention_benchmark_runs_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench/retention.py end to end on a small data set: the nightly sweep anonymizes exactly the D appeals due,
    with nothing due it anonymizes nothing, and the statements it issued are captured with their plans."""
    import json

    from bench import retention

    args = ["--sizes", "3000:300", "--d", "0,50", "--runs", "1", "--cache-dir", str(tmp_path), "--json"]
    assert retention.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    [size] = report["sizes"]
    sweeps = {s["due"]: s for s in size["sweeps"]}
    assert {d: s["anonymized"] for d, s in sweeps.items()} == {0: 0, 50: 50}
    plans = {st["where"].split("(")[-1].rstrip(")"): " ".join(st["plan"]) for s in size["recorded"] for st in s["statements"]}
    # The due appeals are read through their partial indexes, not by status and a sort of every closed appeal.
    assert "ix_appeals_retention" in plans["retention_due"] and "ix_appeals_erasure" in plans["erasure_due"], plans
