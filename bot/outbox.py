"""The outbox sender: delivers the notifications services queued in the `outbox` table.

Services write an outbox row in the transaction of the change that causes it (ARCHITECTURE.md,
"Notifications: a transactional outbox"); this task drains the table. A row is leased in the database
before it is sent, so several bot instances may drain one table, and it is marked sent only after
Telegram accepted the call, so a crash or an outage delays a notification but never loses it.

Delivery is at least once: if the process dies between Telegram's answer and the commit of "sent",
the lease expires and the row is sent again. Everything else (retries, restarts, two instances)
sends a row exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    ReplyKeyboardMarkup,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain import AttachmentKind, Lane
from bot.notices import UnknownNotice
from storage.repositories.outbox import ClaimedOutbox, LeaseRepo, OutboxRepo

logger = logging.getLogger(__name__)

DEFAULT_LOCALE = "ru"
MEDIA_KINDS = frozenset(AttachmentKind)
MAX_BACKOFF = timedelta(minutes=5)
# sendMediaGroup takes 2-10 items; more would need a second call, which "one row = one call" forbids.
MAX_ALBUM = 10
BULK_LEASE = "bulk"
FLOOD_LEASE = "flood"  # its `until`: the end of the latest flood-control wait, for every instance
# Telegram's descriptions of a refused message whose cause is its content (the same for every recipient), not the chat.
CONTENT_REFUSALS = (
    "can't parse entities",
    "wrong file identifier",
    "wrong remote file",
    "button_url_invalid",
    "message is too long",
    "caption is too long",
    "wrong type of the web page content",
    "failed to get http url content",
    "photo_invalid",
    "can't use file of type",
)


@dataclass(frozen=True)
class Rendered:
    """One notification as it goes to Telegram: exactly one API call."""

    text: str | None = None  # HTML (the bot's default parse_mode is HTML); the caption when media is set
    # A reply keyboard only for a handler's reply handed over by bot.session (the person's own menu, say).
    reply_markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
    # (kind in photo|video|document, file_id): sent instead of a text message when set; 2-10 items form an album.
    # A file made by the bot (a report's chart or spreadsheet) goes as its bytes with its file name instead of an id.
    media: list[tuple[str, str | BufferedInputFile]] = field(default_factory=list)


# (template, params, locale, user_id) -> the message; None = nothing to send (the row is marked sent as "skipped").
# It raises bot.notices.UnknownNotice for a row no notification class fits: the row is marked failed.
Renderer = Callable[[str, dict[str, Any], str, int], Awaitable[Rendered | None]]


class TokenBucket:
    """A token bucket on the injected clock: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.capacity = float(burst)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock.now()

    def _refill(self) -> None:
        now = self._clock.now()
        # A clock set back (a test, an NTP step) refills nothing rather than draining the bucket.
        elapsed = max((now - self._stamp).total_seconds(), 0.0)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 when it is now)."""
        self._refill()
        # The clock counts whole microseconds: a shortfall below one microsecond's refill is no shortfall.
        return 0.0 if self._tokens >= 1 - self.rate * 1e-6 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self._tokens -= 1

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.capacity


class _InvalidMessage(ValueError):
    """The renderer produced something that cannot be one Telegram call; retrying cannot help."""


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        render: Renderer,
        *,
        batch: int = 50,
        lease: timedelta = timedelta(seconds=60),
        global_rate: float = 30.0,
        global_burst: int = 1,
        per_chat_rate: float = 1.0,
        per_chat_burst: int = 3,
        poll_interval: float = 1.0,
        give_up_after: timedelta = timedelta(days=1),
        on_blocked: Callable[[int], None] | None = None,
        on_send: Callable[[str], None] | None = None,
        quiet: Callable[[datetime], bool] | None = None,
        bulk_max_attempts: int = 3,
        bulk_lease: timedelta = timedelta(seconds=10),
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        self._bot = bot
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._render = render
        self._batch = batch
        self._lease = lease
        # The HTTP call must end well before the lease does: otherwise another instance could claim a row
        # whose call is still in flight and send it a second time.
        self._request_timeout = max(1, int(lease.total_seconds() / 2))
        self._poll_interval = poll_interval
        self._give_up_after = give_up_after
        # The bulk lane (broadcast items, poll invitations) is served only when no personal row is due, at most
        # half a second's worth per round, so a notification queued meanwhile waits half a second at most.
        self._bulk_batch = max(1, int(global_rate / 2))
        self._bulk_max_attempts = bulk_max_attempts
        # Told whether a moment is inside the quiet hours, when bulk rows wait (an urgent broadcast's excepted).
        self._quiet = quiet or (lambda moment: False)
        # One instance sends bulk rows at a time (the "bulk" lease in the database): instances together keep to the
        # rate. Held until _bulk_until, renewed halfway through.
        self._bulk_lease = bulk_lease
        self._holder = uuid.uuid4().hex
        self._bulk_until: datetime | None = None
        # Told the users.id of a person found unreachable (403); their next update marks them active again
        # (bot/services/users.py reads the row on every update).
        self._on_blocked = on_blocked
        # Told the result of every call to Telegram: "ok", "429", "403" or "error" (the metrics, bot/ops.py).
        self._on_send = on_send or (lambda result: None)
        # Calls are spread evenly instead of 30 at once, which Telegram counts per second. A burst above 1 lets a
        # call that came late (a slow commit, a busy event loop) be made up for, so the rate is kept on average; the
        # caller keeps rate + burst under Telegram's limit (bot/config.py BroadcastsSection.burst).
        self._global = TokenBucket(global_rate, global_burst, clock)
        self._per_chat_rate = per_chat_rate
        self._per_chat_burst = per_chat_burst
        self._chats: dict[int, TokenBucket] = {}
        # Flood control is per bot: after a RetryAfter nothing is sent until this moment (injected clock).
        self._paused_until: datetime | None = None
        self._wake = asyncio.Event()
        self._stop_requested = False
        self._running = False
        self._stopped = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()  # set while no drain_once() is in progress
        self._idle.set()

    # --- control ---------------------------------------------------------------------------------------

    def wake(self) -> None:
        """A service committed new rows: drain now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Drain until stop(): right after a wake(), otherwise every poll_interval seconds (real time)."""
        if self._running:
            raise RuntimeError("OutboxSender.run() is already running")
        self._running = True
        self._stopped.clear()
        try:
            while not self._stop_requested:
                # Cleared before draining so a wake() that arrives mid-drain triggers another round.
                self._wake.clear()
                try:
                    attempted = await self.drain_once()
                except Exception:
                    # A database hiccup must not end the sender; the rows are still there next round.
                    logger.exception("outbox: drain failed, retrying after the poll interval")
                    attempted = 0
                if self._stop_requested:
                    break
                if attempted:
                    continue  # there may be more due rows than one batch
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
                except TimeoutError:
                    pass
        finally:
            self._running = False
            self._stopped.set()

    async def stop(self) -> None:
        """Let the row in flight finish, then return once run() has ended. Idempotent; a stopped sender stays
        stopped (drain_once() does nothing afterwards)."""
        self._stop_requested = True
        self._wake.set()
        if self._running:
            await self._stopped.wait()
        await self._idle.wait()  # a drain_once() called directly (not by run()) finishes its row too
        await self._release_bulk()

    def is_quiet(self, moment: datetime) -> bool:
        """Whether bulk rows wait at `moment` (the quiet hours; an urgent broadcast's items excepted)."""
        return self._quiet(moment)

    @property
    def idle(self) -> bool:
        """Nothing in flight right now, and no wake() waiting to be served by run()."""
        return self._in_flight == 0 and not (self._running and self._wake.is_set())

    # --- draining --------------------------------------------------------------------------------------

    def _paused(self) -> bool:
        return self._paused_until is not None and self._clock.now() < self._paused_until

    async def drain_once(self) -> int:
        """Claim the due rows one by one, send each and record its outcome: the personal lane's, or when none is due,
        a few of the bulk lane's.

        Returns how many rows were claimed and settled (sent, skipped, retried later, blocked or failed)."""
        if self._stop_requested:
            return 0
        if self._paused() or await self._flood_recorded():
            # Flood control lasts: nothing goes out, but the bulk lease is kept, so that no other instance starts
            # sending bulk rows in the middle of the wait.
            if self._bulk_until is not None:
                await self._hold_bulk()
            return 0
        self._in_flight += 1
        self._idle.clear()
        try:
            now = self._clock.now()
            quiet = self._quiet(now)
            async with self._sessionmaker() as session:
                candidates = await OutboxRepo(session).due(now, self._batch)
            bulk = False
            if (not candidates or self._soonest_chat_wait(candidates) > 0) and await self._hold_bulk():
                # No personal row can go out now (none is due, or each waits for its chat's one message a second):
                # bulk rows meanwhile; the next round looks at the personal lane again.
                async with self._sessionmaker() as session:
                    found = await OutboxRepo(session).due(now, self._bulk_batch, Lane.bulk, quiet=quiet)
                if found:
                    candidates, bulk = found, True
            done = 0
            while candidates and not self._stop_requested and not self._paused():
                if bulk and not await self._hold_bulk():
                    break  # the bulk lease went to another instance (a long stall): it sends them now
                index = self._pick(candidates)
                if done and not bulk and self._soonest_chat_wait([candidates[index]]) > 0:
                    break  # every personal row left waits for its chat: a new round fills the wait with bulk rows
                due = candidates.pop(index)
                row = await self._claim(due.id, quiet)
                if row is None:
                    continue  # another sender has it, or it was settled meanwhile
                try:
                    await self._process(row)
                except Exception:
                    # Recording the outcome failed (database error): the lease expires and the row is retried.
                    logger.exception("outbox %d: could not record the outcome; the lease will expire", row.id)
                done += 1
            return done
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
            self._prune_buckets()

    def _soonest_chat_wait(self, candidates: list[Any]) -> float:
        """Seconds until the first of these rows' chats may be written to."""
        return min((bucket.wait_time() if (bucket := self._chats.get(due.chat_id)) else 0.0) for due in candidates)

    async def _flood_recorded(self) -> bool:
        """Whether another instance (or this one before a restart) met flood control that still lasts: Telegram's
        limit is per bot, so its pause is in the database for every sender."""
        now = self._clock.now()
        try:
            async with self._sessionmaker() as session:
                until = await LeaseRepo(session).until(FLOOD_LEASE)
        except SQLAlchemyError:
            return False
        if until is None or until <= now:
            return False
        self._paused_until = until
        return True

    def _pick(self, candidates: list[Any]) -> int:
        """The index of the row whose chat can be written to soonest, so one busy chat does not hold up
        the others; among equals, the oldest row. A chat's rows keep their order: only its oldest is weighed (the
        waits are read one after another on a running clock, so a later row of the same chat would look sooner)."""
        best, best_wait = 0, float("inf")
        weighed: set[int] = set()
        for index, due in enumerate(candidates):
            if due.chat_id in weighed:
                continue
            weighed.add(due.chat_id)
            bucket = self._chats.get(due.chat_id)
            wait = 0.0 if bucket is None else bucket.wait_time()
            if wait < best_wait:
                best, best_wait = index, wait
                if wait == 0.0:
                    break
        return best

    async def _claim(self, outbox_id: int, quiet: bool) -> ClaimedOutbox | None:
        now = self._clock.now()
        async with self._sessionmaker() as session, session.begin():
            return await OutboxRepo(session).claim(outbox_id, now, now + self._lease, quiet=quiet)

    async def _hold_bulk(self) -> bool:
        """Whether this sender holds the bulk lease (taking or renewing it in the database when half of it is gone)."""
        now = self._clock.now()
        if self._bulk_until is not None and now < self._bulk_until - self._bulk_lease / 2:
            return True
        try:
            async with self._sessionmaker() as session, session.begin():
                taken = await LeaseRepo(session).take(BULK_LEASE, self._holder, now, now + self._bulk_lease)
        except SQLAlchemyError:
            logger.warning("outbox: could not take the bulk lease; trying again next round", exc_info=True)
            taken = False
        self._bulk_until = now + self._bulk_lease if taken else None
        return taken

    async def _release_bulk(self) -> None:
        """On a clean stop another instance (or this one restarted) may send bulk rows at once."""
        if self._bulk_until is None:
            return
        self._bulk_until = None
        try:
            async with self._sessionmaker() as session, session.begin():
                await LeaseRepo(session).release(BULK_LEASE, self._holder)
        except SQLAlchemyError:
            logger.warning("outbox: could not release the bulk lease; it expires by itself", exc_info=True)

    async def _process(self, row: ClaimedOutbox) -> None:
        if not row.user_active:
            # They blocked the bot before (or left Telegram): another call would only earn another 403.
            await self._settle_blocked(row, "user inactive", attempted=False)
            return
        try:
            rendered = await self._render(row.template, row.params, row.locale or DEFAULT_LOCALE, row.user_id)
        except UnknownNotice as exc:
            # No class of bot/notices.py fits the row (a typo, a rolled-back deploy): no retry can help.
            logger.error("outbox %d: template %s user %d: cannot decode: %s", row.id, row.template, row.user_id, exc)
            await self._settle_failed(row, f"unknown notification: {exc}", attempted=False)
            return
        except Exception as exc:
            # Could be transient (the renderer reads the database) or a bug a deploy fixes: retry until give-up.
            await self._retry(row, f"render: {type(exc).__name__}", self._backoff(row.attempts + 1))
            return
        if rendered is None:
            async with self._sessionmaker() as session, session.begin():
                await OutboxRepo(session).mark_sent(row.id, self._clock.now(), None, note="skipped")
            logger.info("outbox %d: template %s user %d: skipped (nothing to send)", row.id, row.template, row.user_id)
            return
        try:
            _validate(rendered)
        except _InvalidMessage as exc:
            await self._settle_failed(row, f"invalid message: {exc}", attempted=False)
            return

        await self._acquire(row.chat_id)
        if self._paused():
            # Another drain of this instance met flood control while this one waited: hand the row back.
            assert self._paused_until is not None
            async with self._sessionmaker() as session, session.begin():
                await OutboxRepo(session).reschedule(row.id, self._paused_until, None, attempted=False)
            return

        logger.debug("outbox %d: template %s user %d: attempt %d", row.id, row.template, row.user_id, row.attempts + 1)
        try:
            message_id = await self._send(row.chat_id, rendered)
        except TelegramRetryAfter as exc:
            self._on_send("429")
            now = self._clock.now()
            pause = now + timedelta(seconds=exc.retry_after)
            if self._paused_until is None or pause > self._paused_until:
                self._paused_until = pause
            logger.warning(
                "outbox %d: template %s user %d: flood control, all sending paused for %ds",
                row.id,
                row.template,
                row.user_id,
                exc.retry_after,
            )
            async with self._sessionmaker() as session, session.begin():
                await LeaseRepo(session).extend(FLOOD_LEASE, pause)
                if row.broadcast_id is not None:
                    await OutboxRepo(session).note_flood_wait(row.broadcast_id)
            # Flood control is no fault of the row: it does not count towards a bulk row's bounded attempts.
            await self._retry(row, _describe(exc), timedelta(seconds=exc.retry_after), bounded=False)
        except TelegramForbiddenError as exc:
            self._on_send("403")
            await self._settle_blocked(row, _describe(exc), attempted=True)
        except (TelegramBadRequest, TelegramNotFound, TelegramEntityTooLarge, TelegramMigrateToChat) as exc:
            # Permanent: the same request would be refused again.
            self._on_send("error")
            await self._settle_failed(row, _describe(exc), attempted=True)
            if row.broadcast_id is not None and _content_refused(exc):
                # Every other item of the broadcast would be refused the same way: hold it and tell its author.
                async with self._sessionmaker() as session, session.begin():
                    await OutboxRepo(session).hold_broadcast(row.broadcast_id, _describe(exc), self._clock.now())
        except (
            TelegramServerError,
            TelegramNetworkError,
            TelegramAPIError,
            TimeoutError,
            aiohttp.ClientError,
            OSError,
        ) as exc:
            self._on_send("error")
            # A connection lost or a timeout after the request went out: Telegram may have taken the call. The row is
            # sent again, and counted as "possibly received twice".
            unsure = isinstance(exc, (TelegramNetworkError, TimeoutError, aiohttp.ClientError, OSError))
            await self._retry(row, _describe(exc), self._backoff(row.attempts + 1), unsure=unsure)
        except Exception as exc:
            # Unknown: assume transient rather than drop a notification; give-up bounds the retries.
            self._on_send("error")
            await self._retry(row, _describe(exc), self._backoff(row.attempts + 1))
        else:
            self._on_send("ok")
            async with self._sessionmaker() as session, session.begin():
                recorded = await OutboxRepo(session).mark_sent(row.id, self._clock.now(), message_id)
            if not recorded:
                logger.warning("outbox %d: sent, but the row was no longer pending (lease lost?)", row.id)

    async def _send(self, chat_id: int, rendered: Rendered) -> int:
        """Exactly one API call per row: a retry never repeats half of a notification."""
        timeout = self._request_timeout
        media = rendered.media
        if not media:
            assert rendered.text is not None
            message: Message = await self._bot.send_message(
                chat_id, rendered.text, reply_markup=rendered.reply_markup, request_timeout=timeout
            )
            return message.message_id
        if len(media) == 1:
            kind, file_id = media[0]
            markup = rendered.reply_markup
            if kind == AttachmentKind.photo:
                message = await self._bot.send_photo(
                    chat_id, file_id, caption=rendered.text, reply_markup=markup, request_timeout=timeout
                )
            elif kind == AttachmentKind.video:
                message = await self._bot.send_video(
                    chat_id, file_id, caption=rendered.text, reply_markup=markup, request_timeout=timeout
                )
            else:
                message = await self._bot.send_document(
                    chat_id, file_id, caption=rendered.text, reply_markup=markup, request_timeout=timeout
                )
            return message.message_id
        items: list[InputMediaPhoto | InputMediaVideo | InputMediaDocument] = []
        for index, (kind, file_id) in enumerate(media):
            caption = rendered.text if index == 0 else None  # Telegram shows the first item's caption
            if kind == AttachmentKind.photo:
                items.append(InputMediaPhoto(media=file_id, caption=caption))
            elif kind == AttachmentKind.video:
                items.append(InputMediaVideo(media=file_id, caption=caption))
            else:
                items.append(InputMediaDocument(media=file_id, caption=caption))
        messages = await self._bot.send_media_group(chat_id, items, request_timeout=timeout)
        return messages[0].message_id

    # --- outcomes --------------------------------------------------------------------------------------

    def _backoff(self, attempts: int) -> timedelta:
        """2^attempts seconds, capped at 5 minutes, plus up to 10% jitter so instances do not retry in step."""
        base = min(2.0 ** max(attempts, 0), MAX_BACKOFF.total_seconds())
        seconds = min(base * (1 + random.uniform(0, 0.1)), MAX_BACKOFF.total_seconds())
        return timedelta(seconds=seconds)

    async def _retry(
        self,
        row: ClaimedOutbox,
        error: str,
        delay: timedelta,
        *,
        attempted: bool = True,
        bounded: bool = True,
        unsure: bool = False,
    ) -> None:
        now = self._clock.now()
        if now - row.created_at >= self._give_up_after:
            await self._settle_failed(row, f"gave up: {error}", attempted=attempted)
            return
        if bounded and row.lane == Lane.bulk and row.attempts + (1 if attempted else 0) >= self._bulk_max_attempts:
            # A broadcast item is not worth a day of retries: counted as failed in the report.
            await self._settle_failed(row, f"gave up after {self._bulk_max_attempts} attempts: {error}", attempted=attempted)
            return
        async with self._sessionmaker() as session, session.begin():
            await OutboxRepo(session).reschedule(row.id, now + delay, error, attempted=attempted, unsure=unsure)
        logger.info(
            "outbox %d: template %s user %d: retry in %.1fs (%s)",
            row.id,
            row.template,
            row.user_id,
            delay.total_seconds(),
            error,
        )

    async def _settle_failed(self, row: ClaimedOutbox, error: str, *, attempted: bool) -> None:
        async with self._sessionmaker() as session, session.begin():
            await OutboxRepo(session).mark_failed(row.id, error, attempted=attempted)
        logger.warning("outbox %d: template %s user %d: failed (%s)", row.id, row.template, row.user_id, error)

    async def _settle_blocked(self, row: ClaimedOutbox, error: str, *, attempted: bool) -> None:
        async with self._sessionmaker() as session, session.begin():
            await OutboxRepo(session).mark_blocked(row.id, row.user_id, error, attempted=attempted)
        if self._on_blocked is not None:
            self._on_blocked(row.user_id)
        logger.info("outbox %d: template %s user %d: blocked (%s)", row.id, row.template, row.user_id, error)

    # --- rate limits -----------------------------------------------------------------------------------

    async def _acquire(self, chat_id: int) -> None:
        """Wait (on the clock) until both the overall and the chat's bucket have a token, then take both."""
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = TokenBucket(self._per_chat_rate, self._per_chat_burst, self._clock)
        while True:
            wait = max(self._global.wait_time(), chat.wait_time())
            if wait <= 0:
                self._global.take()
                chat.take()
                return
            await self._clock.sleep(wait)

    def _prune_buckets(self) -> None:
        """A full bucket is the same as a new one: forget it so the dict does not grow with every chat."""
        if len(self._chats) > 1000:
            for chat_id in [chat_id for chat_id, bucket in self._chats.items() if bucket.full]:
                del self._chats[chat_id]


def _validate(rendered: Rendered) -> None:
    media = rendered.media
    if not media:
        if not rendered.text:
            raise _InvalidMessage("neither text nor media")
        return
    if len(media) > MAX_ALBUM:
        raise _InvalidMessage(f"{len(media)} media items, at most {MAX_ALBUM} fit one call")
    for kind, _file_id in media:
        if kind not in MEDIA_KINDS:
            raise _InvalidMessage(f"unknown media kind {kind!r}")
    if len(media) > 1 and rendered.reply_markup is not None:
        # sendMediaGroup takes no keyboard, and a second call would break "one row = one call".
        raise _InvalidMessage("an album cannot carry a keyboard")


def _content_refused(exc: TelegramAPIError) -> bool:
    description = (exc.message or "").lower()
    return any(refusal in description for refusal in CONTENT_REFUSALS)


def _describe(exc: BaseException) -> str:
    """The exception class and Telegram's description: never the message text, which may hold personal data."""
    if isinstance(exc, TelegramAPIError):
        return f"{type(exc).__name__}: {exc.message}"[:255]
    return type(exc).__name__
