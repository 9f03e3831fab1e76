from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import LOCALES
from bot.services.errors import InvalidInput
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
    block_id: int | None = None  # the thematic block of a block head
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
    """Who a person is, read from the database on every update.

    There is no in-process cache of actors: with several instances a role revoked, a language chosen or a consent
    given on one of them must count on the others at once. Identifying costs one indexed query (UserRepo.actor_rows);
    on the intake benchmark that is within the noise of the 60 s cache it replaced (see the ops report)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, consent_version: str) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.consent_version = consent_version

    async def identify(self, tg_id: int, language_code: str | None = None, *, reachable: bool = True) -> Actor:
        """The actor behind a Telegram id; the user row is created on first contact.

        An update from a person shows the bot can reach them again (`reachable`, the default): one marked inactive
        after a 403 is marked active. Only `my_chat_member`, which may say they just blocked the bot, passes False
        and lets its handler decide."""
        fallback = guess_locale(language_code)
        async with self.sessionmaker() as session:
            repo = UserRepo(session)
            rows = await repo.actor_rows(tg_id)
            if not rows:
                # First contact: a new person has no consent and no roles, nothing more to read.
                try:
                    user_id = await repo.insert(tg_id, self.clock.now())
                    await session.commit()
                except IntegrityError:  # created meanwhile by another instance (or a concurrent update)
                    await session.rollback()
                    rows = await repo.actor_rows(tg_id)
                else:
                    return Actor(id=user_id, tg_id=tg_id, locale=None, has_consent=False, fallback_locale=fallback)
            user_id, locale, active, version, accepted, _role, _agency, _block, withdrawn = rows[0]
            if reachable and not active:
                await repo.set_active(user_id, True)
                await session.commit()
                active = True
            current = version == self.consent_version
            return Actor(
                id=user_id,
                tg_id=tg_id,
                locale=locale,
                has_consent=current and bool(accepted),
                # A withdrawal (/privacy) is no "no": the next /start asks for the consent again.
                consent_declined=current and not accepted and not withdrawn,
                roles=frozenset(row[5] for row in rows if row[5] is not None),
                agency_id=next((row[6] for row in rows if row[6] is not None), None),
                block_id=next((row[7] for row in rows if row[7] is not None), None),
                fallback_locale=fallback,
                active=active,
            )

    async def staff(self) -> list[Actor]:
        """Everyone who holds a role, as actors (their roles, agency and language); reachability left as it is."""
        async with self.sessionmaker() as session:
            tg_ids = await UserRepo(session).staff_tg_ids()
        return [await self.identify(tg_id, reachable=False) for tg_id in tg_ids]

    async def set_reachable(self, actor: Actor, reachable: bool) -> Actor:
        """Record that the bot can (or cannot) write to the person: Telegram's `my_chat_member` of a private chat.

        Notifications that failed while they were unreachable stay failed (they are stale); new ones go out."""
        async with self.sessionmaker() as session:
            await UserRepo(session).set_active(actor.id, reachable)
            await session.commit()
        return replace(actor, active=reachable)

    async def set_locale(self, actor: Actor, locale: str) -> Actor:
        if locale not in LOCALES:
            raise ValueError(f"unknown locale {locale!r}")
        async with self.sessionmaker() as session:
            await UserRepo(session).set_locale(actor.id, locale)
            await session.commit()
        return replace(actor, locale=locale)

    async def answer_consent(self, actor: Actor, accepted: bool) -> Actor:
        """Store the answer with its time and the version of the text shown, then report it. A "no" from someone
        whose consent is in force is refused: that is a withdrawal, which /privacy does with its consequences
        (bot/services/privacy.py), not a row saying "declined" (an old consent message's button, QA)."""
        if actor.has_consent and not accepted:
            raise InvalidInput("consent_in_force")
        async with self.sessionmaker() as session:
            await UserRepo(session).add_consent(actor.id, self.consent_version, accepted, self.clock.now())
            await session.commit()
        return replace(actor, has_consent=accepted, consent_declined=not accepted)
