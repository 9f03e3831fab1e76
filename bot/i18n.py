"""gettext catalogs (locales/<lang>/LC_MESSAGES/messages.po), the locale of each update, button matching."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot.config import LOCALES, Settings
from bot.services.users import Actor, guess_locale


def create_i18n(settings: Settings) -> I18n:
    i18n = I18n(path=settings.locales_dir, default_locale="ru", domain="messages")
    missing = [lang for lang in LOCALES if lang != "en" and lang not in i18n.available_locales]
    if missing:
        raise RuntimeError(f"locales not compiled: {', '.join(missing)} (run `make install`)")
    return i18n


class ActorI18nMiddleware(I18nMiddleware):
    """The language the person chose in the bot; until they choose, Telegram's language_code."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        actor: Actor | None = data.get("actor")
        if actor is not None:
            return actor.lang
        user = data.get("event_from_user")
        return guess_locale(user.language_code if user else None)


def N_(msgid: str) -> str:
    """Marks a string for the catalog without translating it now; translate it with `_()` when shown."""
    return msgid


@lru_cache(maxsize=256)
def _variants(i18n_id: int, i18n: I18n, msgid: str) -> frozenset[str]:
    return frozenset({msgid, *(i18n.gettext(msgid, locale=lang) for lang in LOCALES)})


def variants(msgid: str) -> frozenset[str]:
    """Every translation of a button label: a reply button works whatever language the person uses."""
    i18n = I18n.get_current(no_error=True)
    if i18n is None:
        return frozenset({msgid})
    return _variants(id(i18n), i18n, msgid)
