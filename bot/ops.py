"""Operations: liveness, readiness and Prometheus metrics, as aiohttp routes any server can mount.

`add_ops_routes(app, ops)` adds `/healthz`, `/readyz` and `/metrics` to an aiohttp application: the webhook
server mounts them next to its webhook route; in polling mode `OpsServer` serves them on `[ops] port` (0 = off).

The counters and histograms live in a registry of the process (one per `Metrics`, so tests build several);
the gauges that read the database (outbox queue, reminders due) are computed when /metrics is scraped, with one
portable aggregate query each, so every instance reports the shared tables as they are now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain import OutboxState
from storage.models import Outbox, Reminder

logger = logging.getLogger("tsur.ops")

# The results of a send the outbox sender reports (label values of tsur_outbox_sends_total).
SEND_RESULTS = ("ok", "429", "403", "error")
# Why a direct reply was made again or lost (bot.session.transient_reason).
REPLY_REASONS = ("dropped", "timeout", "broken", "flood", "server")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class QueueFigures:
    """What the database holds now: read at scrape time."""

    outbox_pending: int = 0
    outbox_oldest_age: float = 0.0  # seconds since the oldest pending row was written (retries keep it old)
    reminders_due: int = 0


async def read_queue_figures(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> QueueFigures:
    """Two aggregate queries, over the pending rows only (ix_outbox_due, ix_reminders_pending); portable SQL."""
    async with sessionmaker() as session:
        pending, oldest = (
            await session.execute(
                select(func.count(), func.min(Outbox.created_at)).where(Outbox.status == OutboxState.pending)
            )
        ).one()
        due = (
            await session.execute(
                select(func.count()).select_from(Reminder).where(Reminder.sent_at.is_(None), Reminder.due_at <= now)
            )
        ).scalar_one()
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return QueueFigures(int(pending), age, int(due))


class QueueCollector(Collector):
    """Gauges of the shared tables; the /metrics handler refreshes `figures` just before it renders."""

    def __init__(self) -> None:
        self.figures = QueueFigures()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "tsur_outbox_pending", "Notifications waiting to be sent (all instances)", value=self.figures.outbox_pending
        )
        yield GaugeMetricFamily(
            "tsur_outbox_oldest_age_seconds",
            "How long the oldest pending notification has waited since it was written",
            value=self.figures.outbox_oldest_age,
        )
        yield GaugeMetricFamily(
            "tsur_reminders_due", "Reminders due and not yet claimed by a sweep", value=self.figures.reminders_due
        )


class Metrics:
    """The bot's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter(
            "tsur_updates", "Updates handled, by type and outcome", ["type", "outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "tsur_update_seconds",
            "Time to handle an update, by type",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sends = Counter(
            "tsur_outbox_sends", "Outbox sends by result (ok, 429, 403, error)", ["result"], registry=self.registry
        )
        for result in SEND_RESULTS:
            self.sends.labels(result)  # present from the start, at 0
        # Direct replies (bot.session.ReplyRetryMiddleware), by the transient failure's reason (REPLY_REASONS).
        self.reply_retries = Counter(
            "tsur_reply_retries", "Reply calls made again after a transient failure", ["reason"], registry=self.registry
        )
        self.replies_lost = Counter(
            "tsur_replies_lost", "Reply calls that still failed after the retries", ["reason"], registry=self.registry
        )
        self.replies_deferred = Counter(
            "tsur_replies_deferred", "Replies handed to the outbox by a long flood control", registry=self.registry
        )
        for reason in REPLY_REASONS:
            self.reply_retries.labels(reason)
            self.replies_lost.labels(reason)
        self.jobs = Histogram(
            "tsur_job_seconds", "Duration of the scheduler's jobs (sweep, digests)", ["job"], registry=self.registry
        )
        self.queue = QueueCollector()
        self.registry.register(self.queue)

    def record_send(self, result: str) -> None:
        self.sends.labels(result if result in SEND_RESULTS else "error").inc()

    def record_reply_retry(self, reason: str) -> None:
        self.reply_retries.labels(reason).inc()

    def record_reply_lost(self, reason: str) -> None:
        self.replies_lost.labels(reason).inc()

    def record_reply_deferred(self) -> None:
        self.replies_deferred.inc()

    def observe_job(self, job: str, seconds: float) -> None:
        self.jobs.labels(job).observe(seconds)

    async def render(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> bytes:
        self.queue.figures = await read_queue_figures(sessionmaker, clock.now())
        return generate_latest(self.registry)


class UpdateMetricsMiddleware(BaseMiddleware):
    """An outer update middleware: counts each update by type and outcome and times it.

    Registered just outside UpdateLogMiddleware, whose record (`data["log"]`) names the outcome the inner
    middlewares decided (throttled, say)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        kind = (event.event_type if isinstance(event, Update) else type(event).__name__) or "unknown"
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(event, data)
            record = data.get("log")
            if isinstance(record, dict) and record.get("outcome") not in (None, "handled"):
                outcome = str(record["outcome"])
            else:
                outcome = "unhandled" if result is UNHANDLED else "handled"
            return result
        except Exception:
            record = data.get("log")
            if isinstance(record, dict) and record.get("outcome") == "stale":
                outcome = "stale"  # an old dialog's button, answered by the error handler outside (UpdateLogMiddleware)
            raise
        finally:
            self.metrics.latency.labels(kind).observe(time.perf_counter() - started)
            self.metrics.updates.labels(kind, outcome).inc()


# A readiness check: a name and a coroutine that raises (or times out) when the dependency is down.
Check = tuple[str, Callable[[], Awaitable[Any]]]


@dataclass(slots=True)
class Ops:
    """What the routes read: the metrics, the database, the Bot API, and Redis when configured."""

    metrics: Metrics
    sessionmaker: async_sessionmaker[AsyncSession]
    engine: AsyncEngine
    clock: Clock
    bot: Bot
    redis_ping: Callable[[], Awaitable[Any]] | None = None
    timeout: float = 2.0

    def checks(self) -> list[Check]:
        checks: list[Check] = [("database", self._database), ("bot_api", self.bot.get_me)]
        if self.redis_ping is not None:
            checks.append(("redis", self.redis_ping))
        return checks

    async def _database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


async def _probe(name: str, check: Callable[[], Awaitable[Any]], seconds: float) -> tuple[str, str]:
    try:
        async with asyncio.timeout(seconds):
            await check()
    except TimeoutError:
        return name, "timeout"
    except Exception as exc:  # any failure means "not ready"; the type is enough for the operator
        return name, f"error: {type(exc).__name__}"
    return name, "ok"


def add_ops_routes(app: web.Application, ops: Ops) -> None:
    """Mount /healthz, /readyz and /metrics on an aiohttp application."""

    async def healthz(request: web.Request) -> web.Response:
        # Liveness: the event loop answers. Dependencies are /readyz's business (a database outage must not get
        # the process restarted in a loop).
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        results = dict(await asyncio.gather(*(_probe(name, check, ops.timeout) for name, check in ops.checks())))
        ready = all(result == "ok" for result in results.values())
        if not ready:
            logger.warning("not ready: %s", ", ".join(f"{k}={v}" for k, v in results.items() if v != "ok"))
        return web.json_response({"status": "ok" if ready else "unavailable", **results}, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(ops.timeout):
                body = await ops.metrics.render(ops.sessionmaker, ops.clock)
        except Exception as exc:  # the database is down: say so rather than serve stale gauges
            logger.warning("metrics: cannot read the queue figures: %s", type(exc).__name__)
            return web.Response(status=503, text="database unavailable\n")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


class OpsServer:
    """The ops routes on a port of their own, for polling mode (`[ops] port`; the webhook server mounts them)."""

    def __init__(self, ops: Ops, host: str, port: int) -> None:
        self.app = web.Application()
        add_ops_routes(self.app, ops)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        logger.info("ops endpoints on http://%s:%d (/healthz, /readyz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
