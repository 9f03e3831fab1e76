"""Rules the use cases share: who may act on an appeal, how long texts may be, how long the body has."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import Settings
from bot.domain import AGENCY_ROLES, COORDINATING_ROLES, AppealKind, Role
from bot.services.calendar import ProductionCalendar, compute_deadline, extend, shift_by_pause
from bot.services.directory import DirectoryService
from bot.services.errors import InvalidInput
from bot.services.users import Actor


def is_coordinator(actor: Actor) -> bool:
    return actor.has(*COORDINATING_ROLES)


def in_agency(actor: Actor, agency_id: int | None) -> bool:
    """An official or supervisor of the agency that holds the appeal."""
    return actor.has(*AGENCY_ROLES) and actor.agency_id is not None and agency_id == actor.agency_id


def in_block(actor: Actor, block_id: int | None) -> bool:
    """The head of the thematic block the appeal's category belongs to: reads it, never acts on it."""
    return actor.has(Role.block_head) and actor.block_id is not None and block_id == actor.block_id


def check_text(text: str | None, limit: int, minimum: int) -> str:
    """The text stripped, if its length is within [minimum, limit]; InvalidInput("text_length") otherwise."""
    text = (text or "").strip()
    if not minimum <= len(text) <= limit:
        raise InvalidInput("text_length")
    return text


class DeadlinePolicy:
    """How long the body has: by kind (сообщение 10 days, обращение 30 days) or by the category's override,
    from registration, in calendar or working days (production calendar), to the end of the last day."""

    def __init__(
        self, settings: Settings, directory: DirectoryService, calendar: ProductionCalendar | None = None
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.calendar = calendar or ProductionCalendar.load()

    def days_for(self, kind: str, category_id: int) -> int:
        config = self.settings.deadlines
        category = self.directory.category(category_id)
        if category is not None and category.code in config.category_days:
            return config.category_days[category.code]
        return config.appeal_days if kind == AppealKind.appeal else config.message_days

    def initial(self, created_at: datetime, kind: str, category_id: int) -> datetime:
        return compute_deadline(
            created_at,
            self.days_for(kind, category_id),
            working_days=self.settings.deadlines.working_days,
            calendar=self.calendar,
            tz=self.settings.tz,
        )

    def extended(self, deadline: datetime, days: int) -> datetime:
        return extend(
            deadline,
            days,
            working_days=self.settings.deadlines.working_days,
            calendar=self.calendar,
            tz=self.settings.tz,
        )

    def after_pause(self, deadline: datetime, paused: timedelta, counted: timedelta) -> datetime:
        """The deadline moved by the whole days of a pause (see calendar.shift_by_pause and README)."""
        return shift_by_pause(deadline, paused, calendar=self.calendar, tz=self.settings.tz, counted=counted)
