"""Statistics presets (issue 14): a slice of /stats saved under a name by its owner, opened again later (for the same
named period relative to that day), renamed, deleted, and scheduled weekly or monthly to chosen people. The
scheduler (another module) reads `schedule` and `recipients` of the stored rows and builds each recipient's report
within the recipient's own scope.

Every call checks the actor: only a person with a statistics role has presets (`StatsService.scope`), and only the
owner reaches a preset: another person's id and an unknown one are both "not found". The spec is stored as the
owner's scope holds it (a block head's block, a supervisor's agency written in as a filter), so a recipient reads the
slice the owner meant; only people whose own scope allows that slice may be chosen as recipients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain import STATS_ALL_ROLES, STATS_ROLES, PeriodKind, ReportSchedule, SliceSpec
from bot.services.errors import Gone, InvalidInput, PresetNotFound, ServiceError
from bot.services.stats import StatsService
from bot.services.users import Actor
from storage.models import StatPreset
from storage.repositories.presets import PresetRepo

NAME_CHARS = 64


class PresetRefused(InvalidInput):
    """A preset name or change that cannot be taken; `detail`: name_empty, name_long, name_taken, no_recipients, preset_spec
    (the stored spec no longer reads)."""

    code = "preset_refused"


@dataclass(frozen=True)
class Preset:
    id: int
    owner_id: int
    name: str
    spec: SliceSpec | None  # None: the stored spec no longer reads (a forged or outdated row)
    schedule: ReportSchedule | None
    recipients: tuple[int, ...]


@dataclass(frozen=True)
class Candidate:
    """A person a scheduled preset may go to: they hold a statistics role whose scope allows the preset's slice."""

    user_id: int
    tg_id: int
    roles: tuple[str, ...]
    full_name: str | None
    username: str | None
    chosen: bool
    owner: bool


def read_spec(value: Any) -> SliceSpec | None:
    """The stored spec, or None when it does not read (SliceSpec.from_json raises on anything that does not fit)."""
    if not isinstance(value, dict):
        return None
    try:
        return SliceSpec.from_json(value)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise PresetRefused("name_empty")
    if len(name) > NAME_CHARS:
        raise PresetRefused("name_long")
    return name


def view(row: StatPreset) -> Preset:
    schedule = row.schedule if row.schedule in ReportSchedule.__members__ else None
    recipients = tuple(int(r) for r in (row.recipients or []) if isinstance(r, int))
    return Preset(
        row.id,
        row.owner_id,
        row.name,
        read_spec(row.spec),
        ReportSchedule(schedule) if schedule else None,
        recipients,
    )


class PresetService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, stats: StatsService) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.stats = stats

    async def presets(self, actor: Actor) -> list[Preset]:
        """The actor's own presets, by name."""
        await self.stats.scope(actor)
        async with self.sessionmaker() as session:
            return [view(row) for row in await PresetRepo(session).owned(actor.id)]

    async def preset(self, actor: Actor, preset_id: int) -> Preset:
        await self.stats.scope(actor)
        async with self.sessionmaker() as session:
            return view(await self._own(session, actor, preset_id))

    def spec(self, preset: Preset) -> SliceSpec:
        """The preset's slice, or PresetRefused("spec") when its stored spec no longer reads."""
        if preset.spec is None:
            raise PresetRefused("preset_spec")
        return preset.spec

    async def save(self, actor: Actor, name: str, spec: SliceSpec) -> Preset:
        """Store the slice (held to the actor's scope, as they see it) under a name unique among their presets."""
        scope = await self.stats.scope(actor)
        held = self.stats.allowed(scope, spec)
        if held.period == PeriodKind.custom:
            self.stats.period(held)  # typed dates are checked again: a forged pair is not stored
        name = check_name(name)
        async with self.sessionmaker() as session:
            repo = PresetRepo(session)
            if await repo.name_taken(actor.id, name):
                raise PresetRefused("name_taken")
            try:
                row = await repo.add(actor.id, name, held.to_json(), self.clock.now())
                await session.commit()
            except IntegrityError as error:  # the same name saved at the same moment (a second press, an instance)
                await session.rollback()
                raise PresetRefused("name_taken") from error
            return view(row)

    async def rename(self, actor: Actor, preset_id: int, name: str) -> Preset:
        await self.stats.scope(actor)
        name = check_name(name)
        async with self.sessionmaker() as session:
            repo = PresetRepo(session)
            row = await self._own(session, actor, preset_id)
            if await repo.name_taken(actor.id, name, but=row.id):
                raise PresetRefused("name_taken")
            try:
                await repo.change(row.id, self.clock.now(), name=name)
                await session.commit()
            except IntegrityError as error:
                await session.rollback()
                raise PresetRefused("name_taken") from error
            await session.refresh(row)
            return view(row)

    async def delete(self, actor: Actor, preset_id: int) -> None:
        await self.stats.scope(actor)
        async with self.sessionmaker() as session:
            row = await self._own(session, actor, preset_id)
            await PresetRepo(session).remove(row.id)
            await session.commit()

    async def set_schedule(self, actor: Actor, preset_id: int, schedule: ReportSchedule | None) -> Preset:
        """Weekly (Monday morning), monthly (the 1st) or off; a preset whose spec no longer reads is not scheduled."""
        await self.stats.scope(actor)
        async with self.sessionmaker() as session:
            row = await self._own(session, actor, preset_id)
            if schedule is not None:
                self.spec(view(row))
            await PresetRepo(session).change(row.id, self.clock.now(), schedule=schedule.value if schedule else None)
            await session.commit()
            await session.refresh(row)
            return view(row)

    async def candidates(self, actor: Actor, preset_id: int) -> list[Candidate]:
        """The people the preset may be sent to (the owner first, then by name): each holds a statistics role whose
        scope allows the preset's slice, as it would be checked for them when the report is made."""
        await self.stats.scope(actor)
        async with self.sessionmaker() as session:
            row = await self._own(session, actor, preset_id)
            preset = view(row)
            spec = self.spec(preset)
            return await self._candidates(session, actor, preset, spec)

    async def toggle_recipient(self, actor: Actor, preset_id: int, user_id: int) -> Preset:
        """Add or remove one recipient (only a candidate may be added; at least one recipient stays)."""
        await self.stats.scope(actor)
        async with self.sessionmaker() as session:
            row = await self._own(session, actor, preset_id)
            preset = view(row)
            spec = self.spec(preset)
            chosen = list(preset.recipients)
            if user_id in chosen:
                if len(chosen) == 1:
                    raise PresetRefused("no_recipients")
                chosen.remove(user_id)
            else:
                eligible = {c.user_id for c in await self._candidates(session, actor, preset, spec)}
                if user_id not in eligible:
                    raise Gone("recipient")
                chosen.append(user_id)
            await PresetRepo(session).change(row.id, self.clock.now(), recipients=chosen)
            await session.commit()
            await session.refresh(row)
            return view(row)

    async def _own(self, session: AsyncSession, actor: Actor, preset_id: int) -> StatPreset:
        row = await PresetRepo(session).get(actor.id, preset_id)
        if row is None:
            raise PresetNotFound("preset")
        return row

    async def _candidates(
        self, session: AsyncSession, actor: Actor, preset: Preset, spec: SliceSpec
    ) -> list[Candidate]:
        people: dict[int, dict[str, Any]] = {}
        for user_id, tg_id, role, agency_id, block_id, full_name, username in await PresetRepo(session).holders(
            STATS_ROLES
        ):
            person = people.setdefault(
                user_id,
                {"tg_id": tg_id, "roles": [], "agency_id": None, "block_id": None, "name": full_name, "user": username},
            )
            person["roles"].append(role)
            person["agency_id"] = person["agency_id"] or agency_id
            person["block_id"] = person["block_id"] or block_id
        found = []
        # Only those who read the whole region send a slice to others: a block head's, a supervisor's or an official's
        # report goes to themselves (they may not even list who else reads statistics).
        whole_region = actor.has(*STATS_ALL_ROLES)
        for user_id, person in people.items():
            if not whole_region and user_id != actor.id:
                continue
            someone = Actor(
                id=user_id,
                tg_id=person["tg_id"],
                locale=None,
                has_consent=True,
                roles=frozenset(person["roles"]),
                agency_id=person["agency_id"],
                block_id=person["block_id"],
            )
            if not await self._may_read(someone, spec):
                continue
            found.append(
                Candidate(
                    user_id,
                    person["tg_id"],
                    tuple(person["roles"]),
                    person["name"],
                    person["user"],
                    user_id in preset.recipients,
                    user_id == actor.id,
                )
            )
        # The owner first, then by name; people whose name was never seen (a config admin) last.
        found.sort(key=lambda c: (not c.owner, not (c.full_name or c.username), (c.full_name or c.username or "").lower(), c.user_id))
        return found

    async def _may_read(self, person: Actor, spec: SliceSpec) -> bool:
        """As `StatsService` would check them: their scope, then the slice held to it (a role without its block or
        agency, another block or agency, ids no longer in the directory: no)."""
        try:
            held = self.stats.allowed(await self.stats.scope(person), spec)
        except ServiceError:
            return False
        # Their scope must cover the slice as it is: one it would narrow (a supervisor's agency in a region-wide
        # slice) would send them another report under the preset's name.
        return dict(held.filters) == dict(spec.filters)
