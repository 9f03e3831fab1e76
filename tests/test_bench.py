"""bench/instances.py without servers: its options, its counting of duplicates and losses, its report."""

from __future__ import annotations

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
