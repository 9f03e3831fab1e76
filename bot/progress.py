"""The author's progress message of a broadcast (issue 13): one message, edited every few seconds by the scheduler's
job with the figures (sent, failed, left, rate, ETA) and the buttons that fit the state (pause, resume, cancel).

The figures come from bot/services/broadcast_delivery.py (`Progress`); the edit is best effort (a message the author
deleted, or one not modified, is no error): the final report that must reach the author goes through the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.callbacks import BroadcastAction, BroadcastCb
from bot.config import Settings
from bot.domain import BroadcastStatus
from bot.i18n import N_
from bot.services.broadcast_delivery import BroadcastDelivery, Progress
from bot.texts import local_time

logger = logging.getLogger(__name__)

# How often due broadcasts are started: «Send now» goes out within this many seconds.
START_SECONDS = 3

STATUS = {
    BroadcastStatus.scheduled: N_("⏳ scheduled"),
    BroadcastStatus.running: N_("▶️ sending"),
    BroadcastStatus.paused: N_("⏸ paused"),
    BroadcastStatus.done: N_("✅ finished"),
    BroadcastStatus.cancelled: N_("✖️ cancelled"),
}


def status_name(status: BroadcastStatus, _: Callable[[str], str]) -> str:
    return _(STATUS[status])


def _duration(seconds: float, _: Callable[[str], str]) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return _("under a minute")
    if minutes < 120:
        return _("about {minutes} min").format(minutes=minutes)
    return _("about {hours} h").format(hours=round(minutes / 60))


def render_progress(p: Progress, _: Callable[[str], str], settings: Settings) -> tuple[str, InlineKeyboardMarkup | None]:
    """The progress message's text and buttons."""
    c = p.counts
    lines = [_("📣 <b>Broadcast № {id}</b>: {status}").format(id=p.broadcast_id, status=status_name(p.status, _))]
    if p.urgent:
        lines.append(_("Urgent: sent in the quiet hours too."))
    if p.status == BroadcastStatus.cancelled and p.started_at is None:
        lines.append(_("Cancelled before it started: nothing was sent."))
    elif p.status == BroadcastStatus.scheduled:
        lines.append(_("Starts at {when}; recipients now: {planned}.").format(when=local_time(p.start_at, settings.tz), planned=p.planned))
    else:
        total = p.recipients if p.materialized else max(p.planned, p.recipients)
        lines.append(_("Sent: {sent} of {total}.").format(sent=c.sent, total=total))
        lines.append(
            _("Blocked the bot: {blocked}. Other errors: {failed}.").format(blocked=c.blocked, failed=c.failed)
        )
        if c.cancelled:
            lines.append(_("Not sent (cancelled): {count}.").format(count=c.cancelled))
        if p.status in (BroadcastStatus.running, BroadcastStatus.paused):
            lines.append(_("Left: {left}.").format(left=p.left))
        if p.quiet_until is not None:
            lines.append(
                _("Waiting for the end of the quiet hours: it goes on at {when}.").format(
                    when=local_time(p.quiet_until, settings.tz)
                )
            )
        elif p.rate is not None and p.status == BroadcastStatus.running:
            lines.append(_("Rate: {rate} messages/s.").format(rate=f"{p.rate:.1f}"))
        if p.eta_seconds is not None:
            lines.append(_("Time left: {eta}.").format(eta=_duration(p.eta_seconds, _)))
        if c.unsure:
            lines.append(
                _("Possibly received twice (a connection or the bot failed while sending): {count}.").format(count=c.unsure)
            )
        if p.flood_waits:
            lines.append(_("Telegram's flood control paused sending {count} times.").format(count=p.flood_waits))
    buttons: list[InlineKeyboardButton] = []
    if p.status == BroadcastStatus.running:
        buttons.append(InlineKeyboardButton(text=_("⏸ Pause"), callback_data=BroadcastCb(a=BroadcastAction.pause, id=p.broadcast_id).pack()))
    if p.status == BroadcastStatus.paused:
        buttons.append(InlineKeyboardButton(text=_("▶️ Resume"), callback_data=BroadcastCb(a=BroadcastAction.resume, id=p.broadcast_id).pack()))
    if p.status in (BroadcastStatus.scheduled, BroadcastStatus.running, BroadcastStatus.paused):
        buttons.append(InlineKeyboardButton(text=_("✖️ Cancel"), callback_data=BroadcastCb(a=BroadcastAction.cancel, id=p.broadcast_id).pack()))
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[buttons]) if buttons else None


async def edit_progress(bot: Bot, p: Progress, _: Callable[[str], str], settings: Settings) -> None:
    """Edit the author's progress message in place (nothing when it has none); a failure is logged, not raised."""
    if p.chat_id is None or p.message_id is None:
        return
    text, markup = render_progress(p, _, settings)
    try:
        await bot.edit_message_text(text=text, chat_id=p.chat_id, message_id=p.message_id, reply_markup=markup)
    except TelegramBadRequest:
        pass  # "message is not modified", or the author deleted it
    except TelegramAPIError as exc:
        logger.info("broadcast %d: progress edit failed (%s); next round", p.broadcast_id, type(exc).__name__)


async def show_progress(bot: Bot, delivery: BroadcastDelivery, broadcast_id: int, _: Callable[[str], str], settings: Settings) -> None:
    """Edit a broadcast's progress message now (after the author paused, resumed or cancelled it)."""
    p = await delivery.progress(broadcast_id)
    if p is not None:
        await edit_progress(bot, p, _, settings)


class BroadcastJob:
    """The scheduler's jobs. `start` (every START_SECONDS): list the recipients of the broadcasts whose time has come
    (a big audience keeps only this job busy). `__call__` (every `broadcasts.progress_seconds`): end finished
    broadcasts and edit the progress messages that are due (one instance each, claimed in the database)."""

    def __init__(self, bot: Bot, delivery: BroadcastDelivery, i18n: I18n, settings: Settings) -> None:
        self.bot = bot
        self.delivery = delivery
        self.i18n = i18n
        self.settings = settings

    async def start(self) -> int:
        return await self.delivery.start_due()

    async def __call__(self) -> int:
        done = await self.delivery.tick()
        every = timedelta(seconds=self.settings.broadcasts.progress_seconds)
        for p in await self.delivery.progress_due(every):
            locale = p.locale or "ru"
            with self.i18n.use_locale(locale):
                await edit_progress(self.bot, p, self.i18n.gettext, self.settings)
        return done
