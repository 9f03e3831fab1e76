"""The resident's typed steps outside the dialogs: a clarification reply, a rating's comment, what is still wrong
with an answer, a poll's «Other». They share the person's FSM state, so:

- a step with a draft (text or files typed, not yet sent) is not replaced by another one: the person is asked to
  send it or /cancel it first (`draft_in_progress`), and nothing they wrote is lost;
- an optional one-message step (a comment, «Other») is dropped when the person goes elsewhere by the main menu
  (`leave_optional`);
- no step takes a main-menu button for its text: those handlers filter with `~MenuButton()`."""

from __future__ import annotations

from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.i18n import N_
from bot.states import PollOther, ResidentRate, ResidentReply
from handlers.media import extract_media

DRAFTS = {
    ResidentReply.collecting.state: N_(
        "You are writing a reply to a clarification. Send it with «📤 Send the reply» or stop it with /cancel first."
    ),
    ResidentRate.reopen.state: N_(
        "You are describing why the appeal goes back. Send it with «📤 Send back» or stop it with /cancel first."
    ),
}
OPTIONAL = frozenset({ResidentRate.comment.state, PollOther.text.state})


async def draft_in_progress(state: FSMContext) -> str | None:
    """Why another step cannot start now (a draft with something in it would be lost), or None."""
    current = await state.get_state()
    if current not in DRAFTS:
        return None
    data = await state.get_data()
    if data.get("text") or data.get("files"):
        return _(DRAFTS[current])
    return None


async def leave_optional(state: FSMContext) -> None:
    """The person went elsewhere: an optional one-message step is over (nothing was typed into it yet)."""
    if await state.get_state() in OPTIONAL:
        await state.clear()


async def take_text(message: Message, state: FSMContext, most: int, too_long: str) -> dict[str, Any] | None:
    """A draft step's typed text, kept in its data; None (the person told `too_long`, formatted with count and
    max) when it is over `most` characters. Returns the step's data as it was before."""
    text = (message.text or "").strip()
    if len(text) > most:
        await message.answer(too_long.format(count=len(text), max=most))
        return None
    data = await state.get_data()
    await state.update_data(text=text)
    return data


async def take_file(message: Message, state: FSMContext, most: int) -> tuple[dict[str, Any], int] | None:
    """A draft step's file, kept in its data: (the data as it was before, the files now); None (the person told)
    past `most` files or for a message without one."""
    media = extract_media(message)
    data = await state.get_data()
    files = list(data.get("files", []))
    if media is None or len(files) >= most:
        await message.answer(_("{lost} more were not added: at most {max} files per appeal.").format(lost=1, max=most))
        return None
    files.append([media.kind, media.file_id, media.file_unique_id])
    await state.update_data(files=files)
    return data, len(files)
