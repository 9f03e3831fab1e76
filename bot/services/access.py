"""People and roles: bootstrap admins, single-use invites, listing and revoking roles. Every change is audited."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain import AGENCY_ROLES, Role
from bot.services.errors import AppealHidden, Forbidden, InvalidInput, NotFound, NotYours
from bot.services.rules import in_agency, in_block, is_coordinator
from bot.services.users import Actor
from storage.models import Agency, Appeal, AuditEntry, Block, Category, Invite, User, UserRole

logger = logging.getLogger("tsur.access")
INVITE_TTL = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class InviteLink:
    token: str
    role: str
    agency_id: int | None
    expires_at: datetime
    block_id: int | None = None  # the thematic block of a block head's invite


@dataclass(frozen=True, slots=True)
class Person:
    user_id: int
    tg_id: int
    role: str
    agency_id: int | None
    full_name: str | None = None
    username: str | None = None
    block_id: int | None = None


# The longest name and username kept (Telegram allows 64 + 64 characters of a name, 32 of a username).
NAME_CHARS = 128
USERNAME_CHARS = 64


def audit(
    session: AsyncSession,
    actor_id: int | None,
    action: str,
    now: datetime,
    target: int | None = None,
    **details: object,
) -> None:
    session.add(AuditEntry(actor_id=actor_id, action=action, target_user_id=target, details=details, at=now))


async def refuse(
    sessionmaker: async_sessionmaker[AsyncSession],
    actor: Actor,
    action: str,
    now: datetime,
    session: AsyncSession | None = None,
    **details: object,
) -> Forbidden:
    """Log and audit a refused action, and return the error to raise.

    A refusal on an appeal the person may see (a coordinator, or the agency that holds it) says who may act
    (NotYours); to anyone else the appeal is as if it did not exist (AppealHidden).
    Inside an open session the audit is written there, after rolling back whatever the refused action
    touched: no second connection is needed (SQLite runs on one)."""
    logger.warning("refused action=%s actor=%s", action, actor.id)
    appeal_id = details.get("appeal_id")
    if session is not None:
        await session.rollback()
        visible = await sees(session, actor, appeal_id)
        audit(session, actor.id, "refused", now, refused=action, **details)
        await session.commit()
    else:
        async with sessionmaker() as own:
            visible = await sees(own, actor, appeal_id)
            audit(own, actor.id, "refused", now, refused=action, **details)
            await own.commit()
    if appeal_id is None:
        return Forbidden(action)
    return NotYours(action) if visible else AppealHidden(action)


async def sees(session: AsyncSession, actor: Actor, appeal_id: object) -> bool:
    """Whether the staff card of the appeal is the actor's to see (as `Views.card` decides); residents never. A
    block head reads (only reads) the appeals of their block; the leadership and analysts see none."""
    if not isinstance(appeal_id, int) or not actor.is_staff:
        return False
    found = (
        await session.execute(
            select(Appeal.agency_id, Category.block_id)
            .join(Category, Category.id == Appeal.category_id)
            .where(Appeal.id == appeal_id)
        )
    ).first()
    if found is None:
        return False
    agency_id, block_id = found
    return is_coordinator(actor) or in_agency(actor, agency_id) or in_block(actor, block_id)


class AccessService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock

    async def bootstrap_admins(self, tg_ids: list[int]) -> None:
        """The admins listed in the config get the role on start-up (once; audited)."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            for tg_id in tg_ids:
                user = (await session.execute(select(User).where(User.tg_id == tg_id))).scalar_one_or_none()
                if user is None:
                    user = User(tg_id=tg_id, locale=None, is_active=True, created_at=now)
                    session.add(user)
                    await session.flush()
                has = await session.execute(
                    select(UserRole).where(UserRole.user_id == user.id, UserRole.role == Role.admin)
                )
                if has.scalar_one_or_none() is None:
                    session.add(UserRole(user_id=user.id, role=Role.admin, granted_at=now))
                    audit(session, None, "role_granted", now, target=user.id, role=Role.admin.value, via="config")
            await session.commit()

    async def check_admin(self, actor: Actor, action: str) -> None:
        """For the screens that lead to an admin's use case: refused (and audited) before anything is shown."""
        if not actor.has(Role.admin):
            raise await refuse(self.sessionmaker, actor, action, self.clock.now())

    async def create_invite(
        self, actor: Actor, role: str, agency_id: int | None, block_id: int | None = None
    ) -> InviteLink:
        """An invite link for `role`: an agency role names its agency, a block head the thematic block (one of the
        blocks of the directory); no other role names either (the leadership has neither)."""
        now = self.clock.now()
        if not actor.has(Role.admin):
            raise await refuse(self.sessionmaker, actor, "create_invite", now)
        if role not in Role.__members__:
            raise InvalidInput("role")
        if (role in AGENCY_ROLES) != (agency_id is not None):
            raise InvalidInput("agency")
        if (role == Role.block_head) != (block_id is not None):
            raise InvalidInput("block")
        async with self.sessionmaker() as session:
            if agency_id is not None and await session.get(Agency, agency_id) is None:
                raise InvalidInput("agency")
            if block_id is not None and await session.get(Block, block_id) is None:
                raise InvalidInput("block")
            invite = Invite(
                token=secrets.token_urlsafe(18),
                role=role,
                agency_id=agency_id,
                block_id=block_id,
                created_by=actor.id,
                created_at=now,
                expires_at=now + INVITE_TTL,
            )
            session.add(invite)
            block = {"block_id": block_id} if block_id is not None else {}
            audit(session, actor.id, "invite_created", now, role=role, agency_id=agency_id, **block)
            await session.commit()
            return InviteLink(invite.token, role, agency_id, invite.expires_at, block_id)

    async def remember_name(self, actor: Actor, full_name: str | None, username: str | None) -> None:
        """Keep a staff member's Telegram name and username for the admins' list (written only when changed);
        nothing is kept of residents."""
        if not actor.is_staff:
            return
        async with self.sessionmaker() as session:
            await self._name(session, actor.id, full_name, username)
            await session.commit()

    @staticmethod
    async def _name(session: AsyncSession, user_id: int, full_name: str | None, username: str | None) -> None:
        name, handle = (full_name or "").strip()[:NAME_CHARS] or None, (username or "")[:USERNAME_CHARS] or None
        await session.execute(
            update(User)
            .where(
                User.id == user_id,
                or_(User.full_name.is_distinct_from(name), User.username.is_distinct_from(handle)),
            )
            .values(full_name=name, username=handle)
        )

    async def redeem(
        self, actor: Actor, token: str, full_name: str | None = None, username: str | None = None
    ) -> str:
        """Grant the invite's role to the person who opened it; single use, before it expires. Their Telegram name
        and username are kept for the admins' list of people."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            claimed = await session.execute(
                update(Invite)
                .where(Invite.token == token, Invite.used_by.is_(None), Invite.expires_at > now)
                .values(used_by=actor.id, used_at=now)
                .returning(Invite.role, Invite.agency_id, Invite.block_id, Invite.created_by)
            )
            row = claimed.first()
            if row is None:
                known = (await session.execute(select(Invite.used_by).where(Invite.token == token))).first()
                await session.rollback()
                if known is None:
                    raise NotFound("invite")
                raise InvalidInput("invite_used" if known[0] is not None else "invite_expired")
            role, agency_id, block_id, granted_by = row
            # One agency per person: an agency role replaces any agency role they had.
            if role in AGENCY_ROLES:
                await session.execute(
                    delete(UserRole).where(UserRole.user_id == actor.id, UserRole.role.in_(list(AGENCY_ROLES)))
                )
            await session.execute(delete(UserRole).where(UserRole.user_id == actor.id, UserRole.role == role))
            session.add(
                UserRole(
                    user_id=actor.id,
                    role=role,
                    agency_id=agency_id,
                    block_id=block_id,
                    granted_by=granted_by,
                    granted_at=now,
                )
            )
            await self._name(session, actor.id, full_name, username)
            audit(
                session,
                actor.id,
                "role_granted",
                now,
                target=actor.id,
                role=role,
                agency_id=agency_id,
                via="invite",
                **({"block_id": block_id} if block_id is not None else {}),
            )
            await session.commit()
            return role

    async def people(self, actor: Actor, role: str | None = None) -> list[Person]:
        if not actor.has(Role.admin):
            raise await refuse(self.sessionmaker, actor, "list_people", self.clock.now())
        async with self.sessionmaker() as session:
            query = (
                select(UserRole, User.tg_id, User.full_name, User.username)
                .join(User, User.id == UserRole.user_id)
                .order_by(UserRole.role, UserRole.id)
            )
            if role:
                query = query.where(UserRole.role == role)
            return [
                Person(r.user_id, tg_id, r.role, r.agency_id, name, handle, r.block_id)
                for r, tg_id, name, handle in (await session.execute(query)).all()
            ]

    async def revoke(self, actor: Actor, user_id: int, role: str) -> None:
        now = self.clock.now()
        if not actor.has(Role.admin):
            raise await refuse(self.sessionmaker, actor, "revoke_role", now, user_id=user_id)
        if user_id == actor.id and role == Role.admin:
            raise InvalidInput("self_admin")  # nobody locks the last door behind themselves
        async with self.sessionmaker() as session:
            result = await session.execute(delete(UserRole).where(UserRole.user_id == user_id, UserRole.role == role))
            if result.rowcount == 0:
                raise NotFound("role")
            audit(session, actor.id, "role_revoked", now, target=user_id, role=role)
            await session.commit()
