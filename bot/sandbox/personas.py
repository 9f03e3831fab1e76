"""The sandbox's demo people and the demo data they start with, set up through the real services.

Every persona is synthetic: made-up names, Telegram ids far from real ones' ranges used in tests, phone numbers of
the form +7 900 000-00-0N. Roles are granted the way production grants them (the admin's invites, redeemed), so the
sandbox shows the bot exactly as it behaves for these roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import ManualClock
from bot.config import Settings
from bot.domain import Role
from bot.i18n import N_
from bot.services import Services, build_services
from bot.services.appeals import AppealDraft


@dataclass(frozen=True)
class DemoPerson:
    key: str
    tg_id: int
    first_name: str
    last_name: str | None
    label: str  # the role as the page names it (N_: translated when shown; {agency}: the housing agency's name)
    phone: str
    role: Role | None = None  # None: a resident
    consented: bool = True  # a resident who already accepted the consent (the new resident has not)


ADMIN = DemoPerson("admin", 7_000_001, "Магомед", "Админов", N_("Administrator"), "+79000000001", Role.admin)
COORDINATOR = DemoPerson(
    "coordinator", 7_000_002, "Зарема", "Координаторова", N_("ЦУР coordinator"), "+79000000002", Role.coordinator
)
OFFICIAL = DemoPerson(
    "official", 7_000_003, "Руслан", "Исполнителев", N_("Official, {agency}"), "+79000000003", Role.official
)
HEAD = DemoPerson(
    "head", 7_000_004, "Хава", "Руководителева", N_("Head of agency, {agency}"), "+79000000004", Role.supervisor
)
ANALYST = DemoPerson("analyst", 7_000_005, "Лейла", "Аналитикова", N_("Analyst"), "+79000000005", Role.analyst)
RESIDENT = DemoPerson("resident", 7_000_011, "Аминат", "Жительница", N_("Resident"), "+79000000011")
RESIDENT_2 = DemoPerson("resident2", 7_000_012, "Ибрагим", "Житель", N_("Resident"), "+79000000012")
NEWCOMER = DemoPerson(
    "newcomer", 7_000_099, "Новый", "Житель", N_("New resident: starts from /start"), "+79000000099", consented=False
)

# In the switcher's order: the residents first, then the ЦУР, the agency and the office.
PEOPLE = (RESIDENT, RESIDENT_2, NEWCOMER, COORDINATOR, OFFICIAL, HEAD, ADMIN, ANALYST)
STAFF = (COORDINATOR, OFFICIAL, HEAD, ANALYST)

# The demo appeal's category and district: the housing agency the official and the head belong to is the one the
# routing matrix names for them, so what a trainee files there reaches these two.
HOUSING_CATEGORY = "housing_water"
HOUSING_DISTRICT = "grozny"
DEMO_AGE = timedelta(days=8)  # a сообщение (10 working days) filed 8 days ago: a few days of time travel make it overdue


async def housing_agency(services: Services) -> tuple[int, int, int]:
    """(category id, district id, agency id) of the demo's housing appeals."""
    directory = services.directory
    category = next(
        c for block in directory.blocks() for c in directory.categories(block.id) if c.code == HOUSING_CATEGORY
    )
    district = next(d for d in directory.districts() if d.code == HOUSING_DISTRICT)
    agency = await services.views.suggest(category.id, district.id)
    if agency is None:  # the routing matrix resolves every pair (storage/data/routing.toml)
        raise RuntimeError("the routing matrix names no agency for the demo's housing appeals")
    return category.id, district.id, agency


async def seed(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], now: ManualClock) -> None:
    """Give the demo people their roles and file the demo appeal, on a clock set `DEMO_AGE` in the past (the demo
    appeal is then 8 days old when the sandbox opens). `settings.bot.admins` names the admin persona."""
    services = build_services(settings, sessionmaker, now)
    await services.directory.reload()
    start = now.now()
    now.set(start - DEMO_AGE)
    await services.access.bootstrap_admins([ADMIN.tg_id])
    admin = await services.users.identify(ADMIN.tg_id)
    await services.access.remember_name(admin, f"{ADMIN.first_name} {ADMIN.last_name}", None)
    category_id, district_id, agency_id = await housing_agency(services)
    for person in STAFF:
        assert person.role is not None
        agency = agency_id if person.role in (Role.official, Role.supervisor) else None
        link = await services.access.create_invite(admin, person.role, agency)
        actor = await services.users.identify(person.tg_id)
        await services.access.redeem(actor, link.token, f"{person.first_name} {person.last_name}", None)
    for person in (RESIDENT, RESIDENT_2):
        actor = await services.users.identify(person.tg_id)
        actor = await services.users.set_locale(actor, "ru")
        await services.users.answer_consent(actor, True)
    # The demo appeal: routed and taken 8 days ago, so its deadline is near (the "overdue appeal" exercise).
    resident = await services.users.identify(RESIDENT_2.tg_id)
    filed = await services.appeals.file(
        resident,
        AppealDraft(
            draft_id="sandbox-demo-0001",
            category_id=category_id,
            district_id=district_id,
            kind="message",
            text="Третью неделю во дворе дома нет холодной воды по вечерам, управляющая компания не отвечает.",
            address="Грозный, ул. Примерная, 1 (учебный адрес)",
        ),
    )
    coordinator = await services.users.identify(COORDINATOR.tg_id)
    now.set(start - DEMO_AGE + timedelta(hours=2))
    await services.coordination.route(coordinator, filed.id)
    official = await services.users.identify(OFFICIAL.tg_id)
    now.set(start - DEMO_AGE + timedelta(hours=5))
    await services.agency.take(official, filed.id)
