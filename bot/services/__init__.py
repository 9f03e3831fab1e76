"""Services: one use case each. They take plain values and an actor, check what the actor may do,
run one transaction and commit once. They know nothing of aiogram."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.services.access import AccessService
from bot.services.appeals import AppealService
from bot.services.calendar import ProductionCalendar
from bot.services.deadlines import ReminderService
from bot.services.directory import DirectoryService
from bot.services.users import UserService
from bot.services.workflow import DeadlinePolicy, WorkflowService


@dataclass
class Services:
    users: UserService
    directory: DirectoryService
    appeals: AppealService
    access: AccessService
    workflow: WorkflowService
    reminders: ReminderService


def build_services(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    on_commit: Callable[[], None] = lambda: None,
) -> Services:
    """`on_commit` is called after a commit that queued notifications (it wakes the outbox sender)."""
    directory = DirectoryService(sessionmaker)
    calendar = ProductionCalendar.load()
    reminders = ReminderService(sessionmaker, clock, settings, calendar, on_commit)
    users = UserService(sessionmaker, clock, consent_version=settings.consent.version)
    return Services(
        users=users,
        directory=directory,
        appeals=AppealService(sessionmaker, clock, directory, settings, reminders),
        access=AccessService(sessionmaker, clock, on_roles_changed=users.forget),
        workflow=WorkflowService(
            sessionmaker, clock, directory, DeadlinePolicy(settings, directory, calendar), reminders, on_commit
        ),
        reminders=reminders,
    )
