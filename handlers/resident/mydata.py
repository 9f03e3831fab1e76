"""/mydata: everything the bot stores about the person (152-ФЗ art. 14), as a readable HTML page and a JSON file.

For residents and staff alike (a staff member gets their profile and roles, not the appeals they handled). It keeps no
FSM state and leaves a dialog in progress as it was, like /help and /subscriptions: the files arrive and the next
text or press goes on with the dialog. The service counts the exports (at most `privacy.export_per_day` in 24 hours)."""

from __future__ import annotations

import asyncio

from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.data_export_files import file_stem, html_bytes, json_bytes
from bot.services import Services
from bot.services.appeals import HistoryEntry
from bot.services.data_export import ExportLimited, NothingHeld
from bot.services.users import Actor
from bot.texts import local_date, local_time
from handlers import Handlers
from handlers.history import sentence
from handlers.resident.steps import leave_optional

router = Handlers(__name__)


@router.message(Command("mydata"))
async def my_data(message: Message, state: FSMContext, actor: Actor, services: Services, settings: Settings) -> None:
    await leave_optional(state)
    tz = settings.tz
    try:
        data = await services.data_export.export(actor)
    except ExportLimited as error:
        await message.answer(
            _(
                "You have had as many exports of your data as 24 hours allow ({limit}). "
                "The next export is possible from {at}."
            ).format(limit=error.limit, at=local_time(error.next_at, tz))
        )
        return
    except NothingHeld as error:
        await message.answer(
            _(
                "The bot stores nothing about you but your Telegram id, kept since {date} so that it can answer you. "
                "To file an appeal, send /start."
            ).format(date=local_date(error.since, tz))
        )
        return
    lang = actor.lang

    def describe(entry: HistoryEntry) -> str:
        return sentence(entry, services.directory, lang, tz)

    def build() -> tuple[bytes, bytes]:
        # CPU work for a person with many appeals: a worker thread (it keeps the locale, a context variable).
        return html_bytes(data, lang, tz, describe), json_bytes(data, lang, tz, describe)

    page, machine = await asyncio.to_thread(build)
    stem = file_stem(data)
    await message.answer_document(
        BufferedInputFile(page, filename=f"{stem}.html"),
        caption=_(
            "📄 Everything the bot stores about you (Federal Law 152-FZ, article 14): a page to read, and the same "
            "data as JSON below."
        ),
    )
    await message.answer_document(BufferedInputFile(machine, filename=f"{stem}.json"))
