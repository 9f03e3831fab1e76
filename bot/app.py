"""Application factory: everything the bot needs, built from settings, with no globals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import CallbackQuery, ErrorEvent, Message, TelegramObject
from aiogram.utils.callback_answer import CallbackAnswer, CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram_dialog import DIALOG_EVENT_NAME, setup_dialogs
from aiogram_dialog.api.internal import ReplyCallbackQuery
from aiogram_dialog.manager.message_manager import MessageManager
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.albums import AlbumDebouncer
from bot.clock import Clock, SystemClock
from bot.command_menu import CommandMenus
from bot.config import Settings
from bot.dialog_ids import use_unique_dialog_ids
from bot.filters import PrivateChat, call_sync_filters_in_place
from bot.fsm_storage import SQLStorage, UpdateRows
from bot.i18n import ActorI18nMiddleware, create_i18n
from bot.middlewares import ActorMiddleware, HandlerNameMiddleware, ThrottlingMiddleware, UpdateLogMiddleware
from bot.middlewares.dedupe import DedupeMiddleware
from bot.middlewares.errors import ServiceErrorMiddleware
from bot.notifications import make_renderer
from bot.ops import Metrics, Ops, UpdateMetricsMiddleware
from bot.outbox import OutboxSender
from bot.polling import Poller
from bot.progress import START_SECONDS, BroadcastJob
from bot.reports_view import ReportComposer
from bot.scheduler import create_scheduler
from bot.services import Services, build_services
from bot.services.calendar import next_allowed_time
from bot.services.reports import ReportService
from bot.services.users import guess_locale
from bot.session import (
    BotSession,
    OutboxHandoff,
    ReplyRetryMiddleware,
    mark_reply_lost,
    pin_response_types,
    transient_reason,
)
from storage.db import create_engine, create_sessionmaker, upgrade
from storage.seed import load_directories

logger = logging.getLogger("tsur")



class App:
    """Everything a running bot needs, built once from settings."""

    def __init__(
        self, settings: Settings, clock: Clock, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.i18n = create_i18n(settings)
        self.albums = AlbumDebouncer()
        self.sender: OutboxSender | None = None
        self._sender_bot: Bot | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.metrics = Metrics()
        self._redis: Any = None
        # A service that queued notifications wakes the sender after its commit.
        self.services: Services = build_services(settings, sessionmaker, clock, on_commit=self.wake_sender)
        # The «/» menus: the residents' for everyone, one of their own for the staff (bot/command_menu.py).
        self.menus = CommandMenus(self.i18n, self.services.users)
        self.menus_task: asyncio.Task[int] | None = None
        # The scheduled statistics reports, rendered in each recipient's language (issue 14).
        self.reports = ReportService(
            sessionmaker,
            clock,
            settings,
            self.services.stats,
            ReportComposer(self.i18n, settings, self.services.directory),
            on_commit=self.wake_sender,
        )

    def wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    async def start_background(self, bot: Bot) -> None:
        """The outbox sender and the scheduler live as long as polling: started at startup, stopped at shutdown."""
        # The sender handles flood control and errors itself (a pause, the row rescheduled within its lease): a bot
        # of its own, without the replies' ReplyRetryMiddleware.
        self._sender_bot = create_bot(self.settings, retry_after=False)
        quiet = self.settings.scheduler
        self.sender = OutboxSender(
            self._sender_bot,
            self.sessionmaker,
            self.clock,
            make_renderer(
                self.i18n, self.settings, self.services.directory, self.services.delivery.content, self.reports.content
            ),
            on_send=self.metrics.record_send,
            global_rate=self.settings.broadcasts.rate,
            global_burst=self.settings.broadcasts.burst,
            per_chat_burst=1,  # at most one message a second in a chat, as Telegram asks
            quiet=lambda moment: next_allowed_time(
                moment, quiet_start=quiet.quiet_start, quiet_end=quiet.quiet_end, tz=self.settings.tz
            ) != moment,
            bulk_max_attempts=self.settings.broadcasts.max_attempts,
            bulk_lease=timedelta(seconds=self.settings.broadcasts.lease_seconds),
        )
        self._sender_task = asyncio.create_task(self.sender.run())
        # The staff's own menus, set in the background: many people must not delay the first update.
        self.menus_task = asyncio.create_task(self.menus.sync_staff(bot))
        broadcasts = BroadcastJob(self._sender_bot, self.services.delivery, self.i18n, self.settings)
        self.scheduler = create_scheduler(
            self.settings, self.services.reminders, observe=self.metrics.observe_job, updates=self.services.updates,
            polls=self.services.polls,
            broadcasts=broadcasts,
            broadcasts_start=broadcasts.start,
            start_seconds=START_SECONDS,
            reports=self.reports,
            retention=self.services.privacy.retention_sweep,
        )
        self.scheduler.start()

    def redis(self) -> Any:
        """The Redis client of `fsm.storage = "redis"`, one per process: the FSM storage, its lock and /readyz share
        it (the `redis` extra; imported only when configured)."""
        if self._redis is None:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(self.settings.fsm.redis_url)
        return self._redis

    def ops(self, bot: Bot) -> Ops:
        """What the health and metrics routes read (bot/ops.py: add_ops_routes)."""
        redis_ping = self.redis().ping if self.settings.fsm.storage == "redis" else None
        return Ops(
            self.metrics,
            self.sessionmaker,
            self.engine,
            self.clock,
            bot,
            redis_ping=redis_ping,
            timeout=self.settings.ops.check_timeout,
        )

    async def stop_background(self) -> None:
        if self.menus_task is not None:
            self.menus_task.cancel()
            await asyncio.gather(self.menus_task, return_exceptions=True)
            self.menus_task = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        await self.stop_sender()

    async def stop_sender(self) -> None:
        if self.sender is not None:
            await self.sender.stop()
        if self._sender_task is not None:
            await asyncio.gather(self._sender_task, return_exceptions=True)
        self.sender = None
        self._sender_task = None
        if self._sender_bot is not None:
            await self._sender_bot.session.close()
            self._sender_bot = None

    async def close(self) -> None:
        await self.stop_background()
        await self.albums.close()
        await self.engine.dispose()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


async def create_app(settings: Settings, clock: Clock | None = None, *, migrate: bool = True) -> App:
    """Open the database (migrating it and loading the data files) and build the services."""
    engine = create_engine(settings.database.url, echo=settings.database.echo)
    sessionmaker = create_sessionmaker(engine)
    if migrate:
        await upgrade(engine)
        await load_directories(sessionmaker)
    app = App(settings, clock or SystemClock(), engine, sessionmaker)
    await app.services.directory.reload()
    await app.services.access.bootstrap_admins(settings.bot.admins)
    return app


def create_bot(
    settings: Settings, clock: Clock | None = None, *, retry_after: bool = True, app: App | None = None
) -> Bot:
    """The bot's connection to the Bot API (bot.session.BotSession: idle connections closed before the server
    closes them). With `retry_after` (the bot that answers updates), its replies survive transient failures
    (bot.session.ReplyRetryMiddleware: waits on `clock`); with `app`, a reply that cannot wait out flood control
    goes through the outbox, and the retries and losses are counted in its metrics."""
    pin_response_types()
    session = BotSession(api=TelegramAPIServer.from_base(settings.bot.api_base)) if settings.bot.api_base else BotSession()
    if retry_after:
        if app is None:
            session.middleware(ReplyRetryMiddleware(clock or SystemClock()))
        else:
            session.middleware(
                ReplyRetryMiddleware(
                    clock or app.clock,
                    handoff=OutboxHandoff(app.sessionmaker, app.clock, app.wake_sender),
                    on_retry=app.metrics.record_reply_retry,
                    on_lost=app.metrics.record_reply_lost,
                    on_deferred=app.metrics.record_reply_deferred,
                )
            )
    return Bot(settings.bot.token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


class AnswerEveryPress(CallbackAnswerMiddleware):
    """aiogram's CallbackAnswerMiddleware, except for the presses aiogram-dialog makes up from a reply-keyboard
    button's text (`ReplyCallbackQuery`): Telegram has nothing to answer there."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, ReplyCallbackQuery):
            return await handler(event, data)
        return await super().__call__(handler, event, data)

    async def answer(self, event: CallbackQuery, callback_answer: CallbackAnswer) -> None:
        """Telegram takes a press's answer for a short while only. A press handled later (from the polling inbox after
        a restart, or behind a long wait) has done its work and shown its screen: the late answer's refusal is not a
        failure of the update, and an apology would tell the person that what was done was not."""
        try:
            await super().answer(event, callback_answer)
        except TelegramBadRequest as exc:
            if "query is too old" not in exc.message:
                raise
            logger.info("a press answered too late for Telegram (%s)", event.id)


class PressAnsweredByAiogram(MessageManager):
    """aiogram-dialog's message manager, leaving the answer to a press to aiogram's CallbackAnswerMiddleware, which
    answers every press of the bot once (with the text a handler set, or a refusal's alert)."""

    async def answer_callback(self, bot: Bot, callback_query: CallbackQuery) -> None:
        return None


def create_storage(app: App) -> tuple[BaseStorage, BaseEventIsolation]:
    """The FSM storage of `fsm.storage` and its events isolation: the project's database with a lock per person in
    this process, or aiogram's RedisStorage with RedisEventIsolation, a lock in Redis that every instance sees.
    aiogram-dialog keeps its stacks under destinies of their own, hence the key builder with the destiny."""
    if app.settings.fsm.storage == "redis":
        from aiogram.fsm.storage.redis import RedisStorage  # the optional extra `redis`

        redis = RedisStorage(app.redis(), key_builder=DefaultKeyBuilder(with_destiny=True))
        return redis, redis.create_isolation()
    return SQLStorage(app.engine, app.clock), SimpleEventIsolation()


def create_dispatcher(app: App, storage: BaseStorage | None = None) -> Dispatcher:
    from handlers import get_routers  # handlers sit above bot/ in the layering

    # Updates of one person are handled one at a time: an album's items never race on the draft. With Redis, across
    # instances too (a lock in Redis).
    isolation: BaseEventIsolation
    if storage is None:
        storage, isolation = create_storage(app)
    else:
        isolation = SimpleEventIsolation()
    dp = Dispatcher(
        storage=storage,
        events_isolation=isolation,
        disable_fsm=True,  # its middleware is registered below, inside UpdateRows
        settings=app.settings,
        services=app.services,
        clock=app.clock,
        albums=app.albums,
        i18n=app.i18n,
        menus=app.menus,
    )
    # First of ours: an update handled already (delivered again after a crash) goes no further.
    dp.update.outer_middleware(DedupeMiddleware(app.services.updates))
    # The storage remembers the rows of the update being handled (read once, unchanged ones not written again).
    dp.update.outer_middleware(UpdateRows())
    dp.update.outer_middleware(dp.fsm)
    dp.update.outer_middleware(UpdateMetricsMiddleware(app.metrics))  # just outside the log: reads its outcome
    dp.update.outer_middleware(UpdateLogMiddleware())
    dp.update.outer_middleware(
        ThrottlingMiddleware(app.settings.throttle.rate, app.settings.throttle.burst, app.i18n, app.clock)
    )
    dp.update.outer_middleware(ActorMiddleware())
    dp.update.outer_middleware(ActorI18nMiddleware(app.i18n))
    dp.message.middleware(HandlerNameMiddleware())
    dp.callback_query.middleware(HandlerNameMiddleware())
    # Every press is answered once, by aiogram, when its handler ends; a refusal becomes that answer's alert.
    dp.callback_query.middleware(AnswerEveryPress())
    dp.callback_query.middleware(ServiceErrorMiddleware())
    dp.message.middleware(ServiceErrorMiddleware())
    # Appeals carry personal data: the bot talks to people in private chats only.
    dp.message.filter(PrivateChat())
    dp.include_routers(*get_routers())
    # Declared dialogs (aiogram-dialog): their stacks live in the same storage, under their own destinies.
    use_unique_dialog_ids()
    setup_dialogs(dp, events_isolation=isolation, message_manager=PressAnsweredByAiogram())
    call_sync_filters_in_place(dp)
    # The last resort for errors: routers' own error handlers (a stale dialog button, say) are tried first.
    last_resort = Router(name="errors")
    last_resort.errors.register(on_error)
    dp.include_router(last_resort)
    dp.startup.register(on_startup)
    dp.startup.register(app.start_background)
    dp.shutdown.register(app.stop_background)
    return dp


async def on_error(event: ErrorEvent, bot: Bot, i18n: I18n, state: FSMContext | None = None) -> None:
    """Log the failure (type and traceback, not the person's text) and tell the person, in their language."""
    reason = transient_reason(event.exception)
    if state is not None and (reason not in (None, "deferred") or isinstance(event.exception, TelegramRetryAfter)):
        # Their next message first gets the step they are on (handlers.common.resume).
        try:
            await mark_reply_lost(state)
        except Exception:  # the error path must never raise again
            logger.warning("update %s: could not note the lost reply", event.update.update_id)
    if reason == "deferred":
        logger.warning("update %s: %s", event.update.update_id, event.exception)
        return
    if isinstance(event.exception, TelegramRetryAfter):
        # Flood control longer than a reply may wait, on a call the outbox cannot make later (ReplyRetryMiddleware):
        # the reply is dropped, and a message saying so would meet the same refusal. Not a bug of the bot.
        logger.warning("update %s: reply dropped, flood control for %ss", event.update.update_id, event.exception.retry_after)
        return
    if reason is not None:
        # A transient Bot API failure that outlived the retries (ReplyRetryMiddleware counted it): one line, no
        # traceback, and no apology, which would take the same broken way. The dialog's state is as the handler left
        # it, so the person's next message carries on from there.
        logger.warning(
            "update %s: reply lost, %s (%s)", event.update.update_id, reason, type(event.exception).__name__
        )
        return
    logger.error("update failed: %s", type(event.exception).__name__, exc_info=event.exception)
    update = event.update
    chat = update.message.chat if update.message else None
    if chat is None and update.callback_query and isinstance(update.callback_query.message, Message):
        chat = update.callback_query.message.chat
    if chat is None:
        return
    user = (
        update.message.from_user
        if update.message
        else update.callback_query.from_user
        if update.callback_query
        else None
    )
    text = i18n.gettext(
        "Something went wrong. Please try again, or send /cancel.",
        locale=guess_locale(user.language_code if user else None),
    )
    try:
        await bot.send_message(chat.id, text)
    except Exception:  # the error path must never raise again
        logger.warning("could not report the error to the user")


async def on_startup(bot: Bot, menus: CommandMenus) -> None:
    """Commands in the menu of Telegram clients, in each language (the staff's own: App.start_background)."""
    await menus.set_defaults(bot)


def allowed_updates(dp: Dispatcher) -> list[str]:
    """The update types to ask Telegram for: those the handlers use, less aiogram-dialog's own internal event."""
    return dp.resolve_used_update_types(skip_events={DIALOG_EVENT_NAME})


async def run_polling(app: App, bot: Bot) -> None:
    """Long polling that confirms a batch only after handling it (bot/polling.py), until SIGTERM or SIGINT."""
    import signal
    from contextlib import suppress

    dp = create_dispatcher(app)
    poller = Poller(
        dp, bot, app.services.updates, allowed_updates=allowed_updates(dp), polling_timeout=app.settings.bot.polling_timeout
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, poller.stop)
    with app.i18n.context():
        await poller.run()
