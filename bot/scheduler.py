"""APScheduler 3: a short sweep of due reminders, the daily digest, the weekly summary and the statistics reports.

The digests' cron jobs fire at digest time only while the bot runs (a restart rebuilds them from the
next fire time on); the sweep catches up a digest of the same day that they missed, and the claim row
of each period keeps the two from sending it twice.

Jobs hold no state of their own: what is due lives in the database, so rebuilding the scheduler
(a restart) neither repeats nor skips anything."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.services.deadlines import ReminderService
from bot.services.polls import PollService
from bot.services.reports import ReportService
from bot.services.updates import UpdateLedger

logger = logging.getLogger("tsur.scheduler")


# The local hour of the daily retention sweep (bot/services/privacy.py): at night, away from the digests.
RETENTION_HOUR = 3

# Told each job's name and how long it ran, in seconds (the metrics, bot/ops.py).
JobObserver = Callable[[str, float], None]


def _guarded(
    name: str, job: Callable[[], Awaitable[int]], observe: JobObserver | None = None
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        started = time.perf_counter()
        try:
            count = await job()
            if count:
                logger.info("job=%s handled=%d", name, count)
        except Exception:  # a failed tick is retried by the next one; the scheduler must live on
            logger.exception("job=%s failed", name)
        finally:
            if observe is not None:
                observe(name, time.perf_counter() - started)

    return run


def create_scheduler(
    settings: Settings,
    reminders: ReminderService,
    observe: JobObserver | None = None,
    updates: UpdateLedger | None = None,
    polls: PollService | None = None,
    broadcasts: Callable[[], Awaitable[int]] | None = None,
    broadcasts_start: Callable[[], Awaitable[int]] | None = None,
    start_seconds: int = 3,
    reports: ReportService | None = None,
    retention: Callable[[], Awaitable[int]] | None = None,
) -> AsyncIOScheduler:
    config = settings.scheduler
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    if updates is not None:
        # The ids of handled updates are kept a few days, to skip a redelivery; older ones are forgotten.
        scheduler.add_job(
            _guarded("prune_updates", updates.prune), IntervalTrigger(hours=1), id="prune_updates", max_instances=1, coalesce=True
        )
    scheduler.add_job(
        _guarded("sweep", reminders.tick, observe),
        IntervalTrigger(seconds=config.sweep_seconds),
        id="sweep",
        max_instances=1,
        coalesce=True,
    )
    if polls is not None:
        # Polls published at their time and closed at theirs; the state is in the polls table, so a restart resumes.
        scheduler.add_job(
            _guarded("polls", polls.tick, observe),
            IntervalTrigger(seconds=config.sweep_seconds),
            id="polls",
            max_instances=1,
            coalesce=True,
        )
    if broadcasts_start is not None:
        # Broadcasts started at their time (their recipients listed; a big audience keeps only this job busy).
        scheduler.add_job(
            _guarded("broadcasts_start", broadcasts_start, observe),
            IntervalTrigger(seconds=start_seconds),
            id="broadcasts_start",
            max_instances=1,
            coalesce=True,
        )
    if broadcasts is not None:
        # Broadcasts ended when their items are settled, their progress messages edited.
        scheduler.add_job(
            _guarded("broadcasts", broadcasts, observe),
            IntervalTrigger(seconds=settings.broadcasts.progress_seconds),
            id="broadcasts",
            max_instances=1,
            coalesce=True,
        )
    scheduler.add_job(
        _guarded("daily_digest", reminders.daily_digest, observe),
        CronTrigger(hour=config.digest_time.hour, minute=config.digest_time.minute, timezone=settings.tz),
        id="daily_digest",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        _guarded("weekly_summary", reminders.weekly_summary, observe),
        CronTrigger(
            day_of_week=config.weekly_day,
            hour=config.digest_time.hour,
            minute=config.digest_time.minute,
            timezone=settings.tz,
        ),
        id="weekly_summary",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    if reports is not None:
        # The statistics reports (Monday's weekly, the 1st's monthly) at digest time; the catch-up sends a due one the
        # cron job missed (the bot was down). Claims in `digests` keep the two (and other instances) from sending twice.
        scheduler.add_job(
            _guarded("reports", reports.daily, observe),
            CronTrigger(hour=config.digest_time.hour, minute=config.digest_time.minute, timezone=settings.tz),
            id="reports",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
        scheduler.add_job(
            _guarded("reports_catch_up", reports.tick, observe),
            IntervalTrigger(seconds=config.sweep_seconds),
            id="reports_catch_up",
            max_instances=1,
            coalesce=True,
        )
    if retention is not None:
        # Personal data: closed appeals past privacy.retention_days (and those whose applicant withdrew the consent)
        # anonymized once a day, at night; the sweep holds a lease in the database, so one instance does it.
        scheduler.add_job(
            _guarded("retention", retention, observe),
            CronTrigger(hour=RETENTION_HOUR, minute=0, timezone=settings.tz),
            id="retention",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
    return scheduler
