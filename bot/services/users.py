from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import LOCALES
from storage.repositories.users import UserRepo


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: what every service call is checked against."""

    id: int
    tg_id: int
    locale: str | None
    has_consent: bool
    consent_declined: bool = False
    roles: frozenset[str] = frozenset()
    agency_id: int | None = None  # the agency of an official or a supervisor
    # Until a language is chosen: the one guessed from Telegram's language_code.
    fallback_locale: str = "ru"

    @property
    def lang(self) -> str:
        return self.locale or self.fallback_locale

    def has(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)


def guess_locale(language_code: str | None) -> str:
    """Telegram's language_code preselects the language; Russian otherwise."""
    code = (language_code or "").split("-")[0].lower()
    return code if code in LOCALES else "ru"


class UserService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, consent_version: str) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.consent_version = consent_version

    async def identify(self, tg_id: int, language_code: str | None = None) -> Actor:
        """The actor behind a Telegram id; the user row is created on first contact."""
        async with self.sessionmaker() as session:
            repo = UserRepo(session)
            user = await repo.by_tg_id(tg_id)
            if user is None:
                user = await repo.add(tg_id, None, self.clock.now())
                await session.commit()
            consent = await repo.latest_consent(user.id)
            roles = await repo.roles(user.id)
            current = consent is not None and consent.version == self.consent_version
            return Actor(
                id=user.id,
                tg_id=user.tg_id,
                locale=user.locale,
                has_consent=current and bool(consent and consent.accepted),
                consent_declined=current and not bool(consent and consent.accepted),
                roles=frozenset(r.role for r in roles),
                agency_id=next((r.agency_id for r in roles if r.agency_id is not None), None),
                fallback_locale=guess_locale(language_code),
            )

    async def set_locale(self, actor: Actor, locale: str) -> Actor:
        if locale not in LOCALES:
            raise ValueError(f"unknown locale {locale!r}")
        async with self.sessionmaker() as session:
            user = await UserRepo(session).by_id(actor.id)
            assert user is not None
            user.locale = locale
            await session.commit()
        return replace(actor, locale=locale)

    async def answer_consent(self, actor: Actor, accepted: bool) -> Actor:
        """Store the answer with its time and the version of the text shown, then report it."""
        async with self.sessionmaker() as session:
            await UserRepo(session).add_consent(actor.id, self.consent_version, accepted, self.clock.now())
            await session.commit()
        return replace(actor, has_consent=accepted, consent_declined=not accepted)
