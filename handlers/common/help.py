from __future__ import annotations

from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.keyboards import MenuButton
from handlers import Handlers

router = Handlers(__name__)


@router.message(Command("help"))
@router.message(MenuButton("help"))
async def show_help(message: Message) -> None:
    await message.answer(
        _(
            "<b>How the ЦУР bot works</b>\n\n"
            "📝 <b>File an appeal</b>: choose a topic, describe the problem, attach photos, show the place. "
            "A <i>message</i> is answered within 10 days; an <i>appeal under 59-FZ</i> within 30 days "
            "and needs your full name and a contact.\n"
            "📋 <b>My appeals</b>: the status of each of your appeals and its history.\n\n"
            "Commands: /new a new appeal, /my your appeals, /language the language, "
            "/privacy how your data is handled, /cancel stop the current action."
        )
        + "\n\n"
        # A paragraph of its own (issue 13), so the text above keeps its translations.
        + _("📰 /subscriptions: the news of the ЦУР you get (topics, districts), or none at all.")
    )


@router.message(Command("privacy"))
async def show_privacy(message: Message, settings: Settings) -> None:
    await message.answer(
        _(
            "<b>Your personal data</b> (Federal Law 152-FZ)\n\n"
            "<b>What is stored:</b> your Telegram id and chosen language; the text, photos, videos, documents, "
            "place and district of your appeals; for an appeal under 59-FZ your full name and contact.\n"
            "<b>Why:</b> to register your appeals, send them to the responsible body, control the answer "
            "and tell you about it.\n"
            "<b>Who sees it:</b> the staff of the regional management center and of the body that answers.\n"
            "<b>How long:</b> appeals are kept for 5 years after the answer, as the archive rules require; "
            "then they are deleted.\n"
            "<b>Consent:</b> version {version}. You may withdraw it with /start; appeals already filed are "
            "still answered."
        ).format(version=settings.consent.version)
    )
