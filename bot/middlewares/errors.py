"""Service errors reach the person in one place: the refusal, by the error's type and detail, in their language.

An inner middleware of messages and callback queries. For a button it sets the alert of the callback answer that
aiogram's `CallbackAnswerMiddleware` (registered outside this one) sends when the handler ends, so a press is
answered exactly once; for a message it replies. Handlers contain the happy path only; a handler that has more to
say about one refusal (a re-prompt, say) catches that one itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent
from aiogram_dialog.api.internal import ReplyCallbackQuery

from bot.i18n import N_
from bot.services.errors import (
    AppealHidden,
    ConsentRequired,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    NotYours,
    PresetNotFound,
    ServiceError,
)

logger = logging.getLogger(__name__)

BY_TYPE: dict[type[ServiceError], str] = {
    NotFound: N_("Appeal not found."),
    PresetNotFound: N_("Preset not found."),
    AppealHidden: N_("Appeal not found."),
    Forbidden: N_("This is not available to you."),
    ConsentRequired: N_("Please accept the consent first: /start"),
    InvalidInput: N_("This action is not possible now."),
    Gone: N_("This option is no longer available."),
}
DEFAULT = N_("This action is not possible now.")
# InvalidInput, by its detail, where the general sentence would leave the person guessing.
WHY_NOT: dict[str, str] = {
    "self_admin": N_("You cannot revoke your own administrator role."),
    "preset_spec": N_("This preset can no longer be read: delete it and save the slice again."),
    "request_pending": N_("A request of this kind on this appeal is already waiting for the Regional Management Center's decision."),
    "extension_used": N_("This appeal has had its one extension already, or can no longer be extended."),
    "consent_in_force": N_("Your consent is in force. To withdraw it, send /privacy and press «Withdraw consent»."),
}
# Forbidden, by its detail, where the reason is the person's own scope (statistics, issue 14).
WHY_FORBIDDEN: dict[str, str] = {
    "stats": N_("Statistics are not available to you: they need a statistics role (analyst, block head, leadership…)."),
    "another_block": N_("You can see the statistics of your own block only."),
    "another_agency": N_("You can see the statistics of your own agency only."),
    "access_log": N_("The access log is for administrators only."),
}
# NotYours, by the refused action (the services' and the card's names for it): who may do it.
COORDINATORS_ONLY = N_("Only the Regional Management Center can do this.")
AGENCY_ONLY = N_("Only the agency the appeal is assigned to can do this.")
WHO_MAY: dict[str, str] = {
    "route": N_("Only the Regional Management Center routes appeals."),
    "route_to": N_("Only the Regional Management Center routes appeals."),
    "change": N_("Only the Regional Management Center can change the category or the kind of an appeal."),
    "category": N_("Only the Regional Management Center can change the category or the kind of an appeal."),
    "kind": N_("Only the Regional Management Center can change the category or the kind of an appeal."),
    "reject": N_("Only the Regional Management Center can reject an appeal."),
    "duplicate": N_("Only the Regional Management Center can close an appeal as a duplicate."),
    "review": N_("Only the Regional Management Center checks the answers."),
    "approve": N_("Only the Regional Management Center checks the answers."),
    "send_back": N_("Only the Regional Management Center checks the answers."),
    "decide": N_("Only the Regional Management Center decides the agencies' requests."),
    **dict.fromkeys(("take", "clarify", "interim", "redirect", "extension", "answer"), AGENCY_ONLY),
}


def refusal(error: ServiceError) -> str:
    """The localized sentence for a refusal (in the current locale)."""
    if isinstance(error, NotYours):
        return _(WHO_MAY.get(error.detail, COORDINATORS_ONLY))
    if type(error) is Forbidden and error.detail in WHY_FORBIDDEN:
        return _(WHY_FORBIDDEN[error.detail])
    if isinstance(error, InvalidInput) and error.detail in WHY_NOT:
        return _(WHY_NOT[error.detail])
    for kind in type(error).__mro__:
        if kind in BY_TYPE:
            return _(BY_TYPE[kind])
    return _(DEFAULT)


class ServiceErrorMiddleware(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            return await handler(event, data)
        except (ServiceError, UnknownIntent, OutdatedIntent) as error:
            # A stale dialog button is mostly refused before any handler (see handlers/resident/filing.py
            # stale_button); one that goes stale while its update is handled ends here, answered once like the rest.
            if isinstance(error, ServiceError):
                logger.info("refused: %s %s", type(error).__name__, error.detail)
                text = refusal(error)
            else:
                text = _("This button is no longer active.")
            answer: CallbackAnswer | None = data.get("callback_answer")
            if isinstance(event, ReplyCallbackQuery):  # a reply-keyboard button aiogram-dialog made into a press
                await event.original_message.answer(text)
            elif isinstance(event, CallbackQuery) and answer is not None and not answer.answered:
                answer.text = text
                answer.show_alert = True
            elif isinstance(event, CallbackQuery):
                await event.answer(text, show_alert=True)
            elif isinstance(event, Message):
                await event.answer(text)
            return None
