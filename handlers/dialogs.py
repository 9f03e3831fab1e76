"""What the staff dialogs share (aiogram-dialog): their dependencies, the answer to a press, a line said once above
a screen, paged pickers, and the answers to input a screen does not expect.

Refusals are not handled here: a `ServiceError` raised in a getter or a handler leaves the dialog as it was (its
context is saved only when the handler ends well) and `bot.middlewares.errors.ServiceErrorMiddleware` says it.
A button of a finished or replaced dialog is answered by the error handler of `handlers.resident.filing`, which
sees every dialog's `UnknownIntent`/`OutdatedIntent` (error events go through the whole router tree).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from operator import itemgetter
from typing import Any

from aiogram import F
from aiogram.types import CallbackQuery, InlineKeyboardButton, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, DialogProtocol, ShowMode
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Keyboard, ScrollingGroup, Select
from aiogram_dialog.widgets.text import Format, Multi

from bot.config import Settings
from bot.services import Services
from bot.services.users import Actor

COMMAND = F.text.startswith("/")
# Rows of a paged picker: agencies (27 in the data files), districts, people.
PAGE_ROWS = 8

# Telegram shows about this many characters of a button; a row of a list is cut to fit.
BUTTON_CHARS = 64

OnItem = Callable[[CallbackQuery, Any, DialogManager, Any], Awaitable[None]]


def deps(manager: DialogManager) -> tuple[Services, Settings, Actor]:
    middleware = manager.middleware_data
    return middleware["services"], middleware["settings"], middleware["actor"]


def popup(manager: DialogManager, text: str, *, alert: bool = False) -> None:
    """What the press is answered with: aiogram's CallbackAnswerMiddleware answers it when the handler ends."""
    answer: CallbackAnswer | None = manager.middleware_data.get("callback_answer")
    if answer is not None:
        answer.text = text
        answer.show_alert = alert


def say(manager: DialogManager, text: str) -> None:
    """A line shown once above the next screen (after typed input, where no press can carry a popup)."""
    manager.dialog_data["notice"] = text


def notice(manager: DialogManager) -> str | None:
    return manager.dialog_data.pop("notice", None)


def heading() -> Multi:
    """The notice (if any) above the screen's text."""
    return Multi(Format("{notice}", when="notice"), Format("{text}"), sep="\n\n")


def width(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def fit(fixed: list[str], flexible: list[str], limit: int = BUTTON_CHARS, sep: str = " · ") -> str:
    """A button's label: the first of `fixed`, the `flexible` parts (names, cut longest first until the label fits
    in `limit` UTF-16 units), then the rest of `fixed`."""
    parts = list(flexible)
    while parts and width(sep.join([*fixed, *parts])) > limit:
        longest = max(range(len(parts)), key=lambda i: len(parts[i]))
        if len(parts[longest]) <= 4:
            break
        parts[longest] = parts[longest][: len(parts[longest]) - 2].rstrip() + "…"
    return sep.join([*fixed[:1], *parts, *fixed[1:]])


def picker(
    widget_id: str, on_click: OnItem, *, type_factory: Callable[[str], Any] = int, width: int = 1
) -> ScrollingGroup:
    """Items `(id, label)` from the getter's `items`, PAGE_ROWS rows a page; the pager shows only when needed."""
    return ScrollingGroup(
        Select(
            Format("{item[1]}"),
            id=widget_id,
            item_id_getter=itemgetter(0),
            items="items",
            type_factory=type_factory,
            on_click=on_click,
        ),
        id=f"{widget_id}_pages",
        width=width,
        height=PAGE_ROWS,
        hide_on_single_page=True,
    )


async def unknown_command(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    say(manager, _("Unknown command. The commands are listed in /help."))


async def buttons_expected(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    say(manager, _("Please choose one of the buttons."))


class Unmatched(Keyboard):
    """A press that no widget of the current screen takes (forged data, a widget of another screen, no intent at
    all) is refused with a popup and leaves the screen as it is; aiogram-dialog would draw the screen again and answer
    nothing. It shows no button and may stand anywhere in a window: the press goes to the widget of the window it names,
    and only if that widget does not take it (or there is none) is it refused.

    A custom widget as aiogram-dialog's docs describe them: a `Keyboard` subclass implementing the renderer the base
    class declares abstract, and overriding the public `process_callback` (called for every press of the window)."""

    def __init__(self) -> None:
        super().__init__(id=None)

    async def _render_keyboard(self, data: dict[str, Any], manager: DialogManager) -> list[list[InlineKeyboardButton]]:
        return []

    async def process_callback(self, callback: CallbackQuery, dialog: DialogProtocol, manager: DialogManager) -> bool:
        # Widget ids never hold ":"; a Select's item or a pager's page follows it.
        widget_id = (callback.data or "").partition(":")[0]
        window = dialog.windows.get(manager.current_context().state) if isinstance(dialog, Dialog) else None
        if window is None:
            return False
        # The press goes to the widget it names (once: the window's other widgets are not asked after this one).
        widget = window.find(widget_id) if widget_id else None
        if isinstance(widget, Keyboard) and await widget.process_callback(callback, dialog, manager):
            return True
        popup(manager, _("This button is no longer active."), alert=True)
        manager.show_mode = ShowMode.NO_UPDATE
        return True


def unmatched() -> Unmatched:
    return Unmatched()


def buttons_only() -> tuple[MessageInput, MessageInput, Unmatched]:
    """A screen of buttons: typed text is answered by showing the screen again, with a word on what to do; a press
    of a button the screen does not have is refused."""
    return MessageInput(unknown_command, filter=COMMAND), MessageInput(buttons_expected), Unmatched()
