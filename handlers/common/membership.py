"""Telegram's `my_chat_member` of a private chat: the person blocked the bot, or unblocked it.

A block makes them inactive at once (the outbox stops trying them); an unblock makes them active again, so new
notifications reach them. Notifications that failed while they had the bot blocked are not resent: they are stale.
"""

from __future__ import annotations

from aiogram import F
from aiogram.enums import ChatType
from aiogram.filters import KICKED, MEMBER, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated

from bot.services import Services
from bot.services.users import Actor
from handlers import Handlers

router = Handlers(__name__)


@router.my_chat_member(F.chat.type == ChatType.PRIVATE, ChatMemberUpdatedFilter(member_status_changed=KICKED))
async def blocked(event: ChatMemberUpdated, services: Services, actor: Actor) -> None:
    await services.users.set_reachable(actor, False)


@router.my_chat_member(F.chat.type == ChatType.PRIVATE, ChatMemberUpdatedFilter(member_status_changed=MEMBER))
async def unblocked(event: ChatMemberUpdated, services: Services, actor: Actor) -> None:
    await services.users.set_reachable(actor, True)
