from __future__ import annotations

import time
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError
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
    # False once a notification met "bot was blocked" (or Telegram said so): the outbox does not try them.
    active: bool = True

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
    # Every update needs its actor: kept in memory, dropped on every change made through the services
    # (language, consent, roles). The TTL bounds what another instance's change could leave stale.
    CACHE_TTL = 60.0

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, consent_version: str) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.consent_version = consent_version
        self._cache: dict[int, tuple[float, str, Actor]] = {}  # tg_id -> (expires, consent version, actor)
        self._tg_ids: dict[int, int] = {}  # user id -> tg_id

    def forget(self, user_id: int) -> None:
        """Drop a cached actor after a change to their rows (e.g. a role granted or revoked)."""
        tg_id = self._tg_ids.pop(user_id, None)
        if tg_id is not None:
            self._cache.pop(tg_id, None)

    def _remember(self, actor: Actor) -> Actor:
        if len(self._cache) > 50_000:
            self._cache.clear()
            self._tg_ids.clear()
        self._cache[actor.tg_id] = (time.monotonic() + self.CACHE_TTL, self.consent_version, actor)
        self._tg_ids[actor.id] = actor.tg_id
        return actor

    def _update_cached(self, tg_id: int, **changes: object) -> None:
        """Apply one's own change to the cached actor (not to the caller's copy, which may be older)."""
        cached = self._cache.get(tg_id)
        if cached is not None:
            self._cache[tg_id] = (cached[0], cached[1], replace(cached[2], **changes))  # type: ignore[arg-type]

    async def identify(self, tg_id: int, language_code: str | None = None, *, reachable: bool = True) -> Actor:
        """The actor behind a Telegram id; the user row is created on first contact.

        An update from a person shows the bot can reach them again (`reachable`, the default): one marked inactive
        after a 403 is marked active. Only `my_chat_member`, which may say they just blocked the bot, passes False
        and lets its handler decide. A change made by another instance's outbox sender is seen once the cached
        actor expires (CACHE_TTL); the `my_chat_member` update Telegram sends on unblocking writes through at once.
        """
        fallback = guess_locale(language_code)
        cached = self._cache.get(tg_id)
        if cached is not None and cached[0] > time.monotonic() and cached[1] == self.consent_version:
            actor = cached[2]
            if reachable and not actor.active:
                actor = await self.set_reachable(actor, True)
            return actor if actor.fallback_locale == fallback else replace(actor, fallback_locale=fallback)
        return self._remember(await self._load(tg_id, fallback, reachable))

    async def set_reachable(self, actor: Actor, reachable: bool) -> Actor:
        """Record that the bot can (or cannot) write to the person: Telegram's `my_chat_member` of a private chat.

        Notifications that failed while they were unreachable stay failed (they are stale); new ones go out."""
        async with self.sessionmaker() as session:
            await UserRepo(session).set_active(actor.id, reachable)
            await session.commit()
        self._update_cached(actor.tg_id, active=reachable)
        return replace(actor, active=reachable)

    async def _load(self, tg_id: int, fallback: str, reachable: bool) -> Actor:
        async with self.sessionmaker() as session:
            repo = UserRepo(session)
            row = await repo.identity(tg_id)
            if row is None:
                # First contact: a new person has no consent and no roles, nothing more to read.
                try:
                    user_id = await repo.insert(tg_id, self.clock.now())
                    await session.commit()
                except IntegrityError:  # created meanwhile by another instance
                    await session.rollback()
                    row = await repo.identity(tg_id)
                else:
                    return Actor(id=user_id, tg_id=tg_id, locale=None, has_consent=False, fallback_locale=fallback)
            assert row is not None
            user_id, locale, active = row
            if reachable and not active:
                await repo.set_active(user_id, True)
                await session.commit()
                active = True
            consent = await repo.latest_consent_answer(user_id)
            roles = await repo.role_pairs(user_id)
            current = consent is not None and consent[0] == self.consent_version
            return Actor(
                id=user_id,
                tg_id=tg_id,
                locale=locale,
                has_consent=current and bool(consent and consent[1]),
                consent_declined=current and not bool(consent and consent[1]),
                roles=frozenset(role for role, _agency in roles),
                agency_id=next((agency for _role, agency in roles if agency is not None), None),
                fallback_locale=fallback,
                active=active,
            )

    async def set_locale(self, actor: Actor, locale: str) -> Actor:
        if locale not in LOCALES:
            raise ValueError(f"unknown locale {locale!r}")
        async with self.sessionmaker() as session:
            await UserRepo(session).set_locale(actor.id, locale)
            await session.commit()
        self._update_cached(actor.tg_id, locale=locale)
        return replace(actor, locale=locale)

    async def answer_consent(self, actor: Actor, accepted: bool) -> Actor:
        """Store the answer with its time and the version of the text shown, then report it."""
        async with self.sessionmaker() as session:
            await UserRepo(session).add_consent(actor.id, self.consent_version, accepted, self.clock.now())
            await session.commit()
        self._update_cached(actor.tg_id, has_consent=accepted, consent_declined=not accepted)
        return replace(actor, has_consent=accepted, consent_declined=not accepted)
