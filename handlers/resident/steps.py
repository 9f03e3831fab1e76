"""The resident's typed steps outside the dialogs: a clarification reply, a rating's comment, what is still wrong
with an answer, a poll's «Other». They share the person's FSM state, so:

- a step with a draft (text or files typed, not yet sent) is not replaced by another one: the person is asked to
  send it or /cancel it first (`draft_in_progress`), and nothing they wrote is lost;
- an optional one-message step (a comment, «Other») is dropped when the person goes elsewhere by the main menu
  (`leave_optional`);
- no step takes a main-menu button for its text: those handlers filter with `~MenuButton()`."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.utils.i18n import gettext as _

from bot.i18n import N_
from bot.states import PollOther, ResidentRate, ResidentReply

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
