"""The «/» command menu of Telegram clients.

Everybody gets the residents' commands, in the language of their Telegram app (the default scope, one list per
language). A person who chose a language in the bot, and every member of the staff, gets a menu of their own (the
scope of their chat): in the language they chose (Telegram apps have no Chechen: without this a Chechen speaker
reads the menu in Russian), and for the staff with the commands of their roles first. The menu only shows commands;
each of them still checks the role in the service layer.

The menus are Telegram's state, not ours: they are set when a language is chosen, a role is granted or revoked, and
for all the staff at every start (which also mends a menu whose setting failed). Setting one is best effort: a
failure is logged and never spoils the person's answer.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.types import BotCommand, BotCommandScopeChat
from aiogram.utils.i18n import I18n

from bot.config import LOCALES
from bot.domain import ANONYMOUS_TG_ID, STATS_ROLES, Role
from bot.i18n import N_
from bot.services.broadcasts import AUTHORS as BROADCASTERS
from bot.services.polls import READERS as POLL_READERS
from bot.services.stats import RATING_ROLES
from bot.services.users import Actor, UserService

logger = logging.getLogger(__name__)

RESIDENT_COMMANDS = {
    "new": N_("File an appeal"),
    "my": N_("My appeals"),
    "subscriptions": N_("News I get"),
    "language": N_("Language"),
    "help": N_("Help"),
    "privacy": N_("Personal data"),
    "mydata": N_("My data: what the bot stores about me"),
    "cancel": N_("Cancel the current action"),
}
ALL_ROLES = frozenset(Role)
# The staff's commands, each with the roles it is for (the same sets the services check).
STAFF_COMMANDS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("staff", N_("Staff menu: appeals and work"), ALL_ROLES),
    ("stats", N_("Statistics"), frozenset(STATS_ROLES)),
    ("rating", N_("Agency rating"), frozenset(RATING_ROLES)),
    ("polls", N_("Polls"), frozenset(POLL_READERS)),
    ("broadcasts", N_("Broadcasts"), frozenset(BROADCASTERS)),
    ("accesslog", N_("Access log of personal data"), frozenset({Role.admin})),
)
# Telegram allows about 30 requests a second; the start's pass over the staff sets at most this many menus a second.
STARTUP_RATE = 20


def menu_commands(actor: Actor) -> list[tuple[str, str]]:
    """The (command, untranslated description) pairs of the person's menu: their roles' commands, then a resident's."""
    staff = [(name, text) for name, text, roles in STAFF_COMMANDS if actor.has(*roles)]
    return staff + list(RESIDENT_COMMANDS.items())


class CommandMenus:
    def __init__(self, i18n: I18n, users: UserService, rate: int = STARTUP_RATE) -> None:
        self.i18n = i18n
        self.users = users
        self.rate = rate

    def commands(self, pairs: list[tuple[str, str]], lang: str) -> list[BotCommand]:
        return [BotCommand(command=name, description=self.i18n.gettext(text, locale=lang)) for name, text in pairs]

    async def set_defaults(self, bot: Bot) -> None:
        """The residents' menu in each language, and in Russian for a Telegram app in any other."""
        for lang in LOCALES:
            await bot.set_my_commands(self.commands(list(RESIDENT_COMMANDS.items()), lang), language_code=lang)
        await bot.set_my_commands(self.commands(list(RESIDENT_COMMANDS.items()), "ru"))

    async def apply(self, bot: Bot, actor: Actor) -> None:
        """Set the person's own menu: for their roles, in their language; none (the default's) for a resident who
        has not chosen a language. Telegram's errors are raised."""
        scope = BotCommandScopeChat(chat_id=actor.tg_id)
        if actor.locale is None and not actor.is_staff:
            await bot.delete_my_commands(scope=scope)
        else:
            await bot.set_my_commands(self.commands(menu_commands(actor), actor.lang), scope=scope)

    async def sync(self, bot: Bot, actor: Actor) -> bool:
        """`apply`, best effort: False when Telegram refused (logged; the next start sets it again for the staff)."""
        if actor.tg_id == ANONYMOUS_TG_ID:
            return True
        try:
            await self.apply(bot, actor)
        except TelegramAPIError as error:
            logger.warning("command menu of user %s not set: %s", actor.id, type(error).__name__)
            return False
        return True

    async def sync_staff(self, bot: Bot) -> int:
        """At the start: every member of the staff's menu (roles may have changed while the bot was down, or a
        setting failed). Flood control is waited out once per person. Returns how many menus were set."""
        done = 0
        for n, actor in enumerate(await self.users.staff(), start=1):
            if n % self.rate == 0:
                await asyncio.sleep(1)
            for attempt in range(2):
                try:
                    await self.apply(bot, actor)
                except TelegramRetryAfter as error:
                    if attempt == 0:
                        await asyncio.sleep(error.retry_after)
                        continue
                    logger.warning("command menu of user %s not set: flood control", actor.id)
                except TelegramAPIError as error:
                    logger.warning("command menu of user %s not set: %s", actor.id, type(error).__name__)
                else:
                    done += 1
                break
        return done
