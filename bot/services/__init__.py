"""Services: one use case each. They take plain values and an actor, check what the actor may do,
run one transaction and commit once. They know nothing of aiogram."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.services.access import AccessService
from bot.services.access_log import AccessLogService
from bot.services.agency import AgencyService
from bot.services.appeals import AppealService
from bot.services.broadcast_delivery import BroadcastDelivery
from bot.services.broadcasts import BroadcastService
from bot.services.calendar import ProductionCalendar
from bot.services.coordination import CoordinationService
from bot.services.data_export import DataExportService
from bot.services.deadlines import ReminderService
from bot.services.directory import DirectoryService
from bot.services.lifecycle import Lifecycle, Workbench
from bot.services.polls import PollService
from bot.services.presets import PresetService
from bot.services.privacy import PrivacyService
from bot.services.ratings import RatingService
from bot.services.replies import ReplyService
from bot.services.routing import RoutingService
from bot.services.rules import DeadlinePolicy
from bot.services.stats import StatsService
from bot.services.subscriptions import SubscriptionService
from bot.services.updates import UpdateLedger
from bot.services.users import UserService
from bot.services.views import Views


@dataclass
class Services:
    users: UserService
    directory: DirectoryService
    appeals: AppealService
    access: AccessService
    reminders: ReminderService
    # The life of an appeal after filing, by who acts (status changes all go through `lifecycle`).
    lifecycle: Lifecycle
    coordination: CoordinationService
    agency: AgencyService
    replies: ReplyService
    routing: RoutingService
    views: Views
    # The resident's judgement of an answer: ratings, sending back, "is it fixed?".
    ratings: RatingService
    # Telegram updates already handled: a redelivery changes nothing twice.
    updates: UpdateLedger
    # Sociological polls of residents (issue 12).
    polls: PollService
    # Broadcasts being delivered: started, listed, ended, their progress (issue 13).
    delivery: BroadcastDelivery
    # Residents' choice of news: blocks, districts, stop (issue 13).
    subscriptions: SubscriptionService
    # Broadcasts to residents, the authors' side (issue 13).
    broadcasts: BroadcastService
    # Statistics in slices, the agency index, problem spots (issue 14).
    stats: StatsService
    # Saved slices of /stats, their schedules and recipients (issue 14).
    presets: PresetService
    # Personal data: withdrawing the consent, anonymization, retention (issue 16).
    privacy: PrivacyService
    # Who was shown which resident's data, and the admins' reading of it (issue 16).
    access_log: AccessLogService
    # /mydata: everything stored about a person (152-ФЗ art. 14, issue 16).
    data_export: DataExportService


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
    lifecycle = Lifecycle(reminders)
    bench = Workbench(
        sessionmaker, clock, settings, directory, lifecycle, DeadlinePolicy(settings, directory, calendar), on_commit
    )
    ratings = RatingService(bench)
    stats = StatsService(sessionmaker, clock, settings, directory)
    return Services(
        users=users,
        directory=directory,
        appeals=AppealService(sessionmaker, clock, directory, settings, reminders),
        access=AccessService(sessionmaker, clock),
        reminders=reminders,
        lifecycle=lifecycle,
        coordination=CoordinationService(bench, ratings),
        agency=AgencyService(bench),
        replies=ReplyService(bench),
        routing=RoutingService(bench),
        views=Views(bench),
        ratings=ratings,
        updates=UpdateLedger(sessionmaker, clock, settings.scheduler.updates_keep_days),
        polls=PollService(sessionmaker, clock, settings, on_commit),
        delivery=BroadcastDelivery(sessionmaker, clock, settings, on_commit),
        subscriptions=SubscriptionService(sessionmaker, clock, directory),
        broadcasts=BroadcastService(sessionmaker, clock, settings, directory, on_commit),
        stats=stats,
        presets=PresetService(sessionmaker, clock, stats),
        privacy=PrivacyService(bench),
        access_log=AccessLogService(sessionmaker, clock),
        data_export=DataExportService(sessionmaker, clock, settings, directory),
    )
