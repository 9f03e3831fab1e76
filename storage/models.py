"""SQLAlchemy 2 models. The schema itself is owned by the Alembic migrations in storage/migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false, text
from sqlalchemy.types import TypeDecorator

from bot.domain import (
    AGENCY_ROLES,
    AppealKind,
    AppealStatus,
    AttachmentKind,
    AttachmentSource,
    OutboxState,
    RequestState,
    Role,
    Visibility,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, PostgreSQL gets the same values."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, dict[str, str]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tg_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Staff only (kept from Telegram when they join and on /staff), for the admins' list of people; residents'
    # names are not stored.
    full_name: Mapped[str | None] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(64))


class Consent(Base):
    """Every answer to the personal-data consent (152-ФЗ), with the version of the text that was shown."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    accepted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime]
    # A withdrawal of a consent given (/privacy, bot/services/privacy.py), written with accepted False: unlike a
    # "no" at onboarding, the next /start asks for the consent again.
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Block(Base):
    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    names: Mapped[dict[str, str]]
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    categories: Mapped[list[Category]] = relationship(back_populates="block", order_by="Category.position")


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    block_id: Mapped[int] = mapped_column(ForeignKey("blocks.id"), index=True)
    names: Mapped[dict[str, str]]
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A physical problem (a road, a lamp, a dump, a pipe): the resident is asked later whether it is actually fixed.
    physical: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    block: Mapped[Block] = relationship(back_populates="categories")


class District(Base):
    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    names: Mapped[dict[str, str]]
    centers: Mapped[dict[str, str]]
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    names: Mapped[dict[str, str]]
    short_names: Mapped[dict[str, str]]
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Appeal(Base):
    __tablename__ = "appeals"
    __table_args__ = (
        Index("ix_appeals_user_created", "user_id", "created_at"),
        Index("ix_appeals_status_created", "status", "created_at"),
        Index("ix_appeals_agency_status_deadline", "agency_id", "status", "deadline_at"),
        # The coordinators' digest: overdue open appeals by agency, without visiting the ones not yet due.
        Index("ix_appeals_status_deadline_agency", "status", "deadline_at", "agency_id"),
        # Statistics (bot/services/stats.py): one covering index per event a metric is read at, so that a slice
        # reads only its period's entries and never the table (every dimension and value is in the index).
        Index(
            "ix_appeals_stats_created",
            "created_at",
            "category_id",
            "district_id",
            "agency_id",
            "official_id",
            "kind",
            "status",
            "reject_reason",
        ),
        Index(
            "ix_appeals_stats_answered",
            "answered_at",
            "category_id",
            "district_id",
            "agency_id",
            "official_id",
            "kind",
            "status",
            "answer_seconds",
            "answered_on_time",
            "reopen_count",
        ),
        Index(
            "ix_appeals_stats_first_action",
            "first_action_at",
            "category_id",
            "district_id",
            "agency_id",
            "official_id",
            "kind",
            "status",
            "first_action_seconds",
        ),
        # The retention sweep (bot/services/privacy.py): closed appeals by closing time, the anonymized ones left out.
        Index(
            "ix_appeals_retention",
            "closed_at",
            "status",
            sqlite_where=text("anonymized_at IS NULL"),
            postgresql_where=text("anonymized_at IS NULL"),
        ),
        # The few closed appeals whose applicant withdrew the consent, anonymized by the next sweep whatever their age.
        Index(
            "ix_appeals_erasure",
            "erasure_requested_at",
            sqlite_where=text("erasure_requested_at IS NOT NULL AND anonymized_at IS NULL"),
            postgresql_where=text("erasure_requested_at IS NOT NULL AND anonymized_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    # The filing dialog's id: a second Confirm or a re-delivered update finds the appeal it made.
    draft_id: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    applicant_name: Mapped[str | None] = mapped_column(String(200))
    applicant_contact: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deadline_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id", name="fk_appeals_duplicate_of"))
    official_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_appeals_official"))
    assigned_at: Mapped[datetime | None]
    extension_used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The deadline clock stops while the resident is asked for a clarification (issue: SLA clocks).
    paused_at: Mapped[datetime | None]
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the (latest) answer was approved and sent to the resident; the re-opening window counts from it.
    answered_at: Mapped[datetime | None]
    # How many times the resident sent the appeal back (ratings.max_reopens).
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by the state machine (bot/services/lifecycle.py) for the statistics: the first move made by staff after
    # filing (routing, rejection, taking into work…) and how long after filing it came; the (latest) answer's
    # working time in seconds (from filing, or from the latest re-opening, less the clarification pauses) and
    # whether it came by the deadline in force at that moment.
    first_action_at: Mapped[datetime | None]
    first_action_seconds: Mapped[int | None] = mapped_column(Integer)
    answer_seconds: Mapped[int | None] = mapped_column(Integer)
    answered_on_time: Mapped[bool | None] = mapped_column(Boolean)
    # Personal data (issue 16): when it entered bot.domain.CLOSED (None while open; retention counts from it); when
    # it was anonymized (bot/services/privacy.py); and when its applicant withdrew the consent while it was open, to
    # be anonymized once it is closed.
    closed_at: Mapped[datetime | None]
    anonymized_at: Mapped[datetime | None]
    erasure_requested_at: Mapped[datetime | None]

    category: Mapped[Category] = relationship()
    district: Mapped[District] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="appeal", order_by="Attachment.position", cascade="all, delete-orphan"
    )
    history: Mapped[list[StatusHistory]] = relationship(
        back_populates="appeal", order_by="StatusHistory.id", cascade="all, delete-orphan"
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str] = mapped_column(String(255))
    file_unique_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    # Who added it: the resident at filing, the resident answering a clarification, or an official's answer.
    source: Mapped[str] = mapped_column(
        String(16), default=AttachmentSource.resident, server_default=AttachmentSource.resident.value
    )
    message_id: Mapped[int | None] = mapped_column(ForeignKey("appeal_messages.id", name="fk_attachments_message"))

    appeal: Mapped[Appeal] = relationship(back_populates="attachments")


class StatusHistory(Base):
    """One step of an appeal's life: a move (from → to) or an event in the same status (an extension).

    `event` and `params` say what happened (bot.domain.HistoryEvent, HistoryDetails) and are rendered as a
    localized sentence; `visibility` says whether the resident reads the entry; `comment` is staff's own words
    (a return for rework, a request's reason) and is shown to staff only, whatever the entry's visibility."""

    __tablename__ = "status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    # bot.domain.HistoryEvent
    event: Mapped[str] = mapped_column(String(32))
    # bot.domain.Visibility
    visibility: Mapped[str] = mapped_column(
        String(16), default=Visibility.resident, server_default=Visibility.resident.value
    )
    # bot.domain.HistoryDetails.params()
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    appeal: Mapped[Appeal] = relationship(back_populates="history")


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role", name="uq_user_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), index=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    # The thematic block of a block head (bot.domain.Role.block_head).
    block_id: Mapped[int | None] = mapped_column(ForeignKey("blocks.id", name="fk_user_roles_block"))
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime]


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    block_id: Mapped[int | None] = mapped_column(ForeignKey("blocks.id", name="fk_invites_block"))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Role changes and refusals: who did what to whom, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    details: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class AccessEntry(Base):
    """The access log (152-ФЗ): a staff member was shown an appeal's card, its files, its place or the resident's
    contact (bot.domain.AccessKind), or read the log itself. Ids only: who, what, whose, when."""

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_appeal", "appeal_id", "at"),
        Index("ix_access_log_subject", "subject_user_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(24))  # bot.domain.AccessKind
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"))
    # The resident whose data was shown (or asked for, on a read of the log). Should a withdrawal of consent delete
    # the person's row, the log keeps its rows (the appeal still names whose data it was).
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime]


class Route(Base):
    """The routing matrix: category × district → the agency the coordinator is offered."""

    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("category_id", "district_id", name="uq_route"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AppealMessage(Base):
    """What people write on an appeal after filing: questions, replies, interim and final answers."""

    __tablename__ = "appeal_messages"
    # Statistics: the answers submitted in a period and how the ЦУР's check judged them (the agency index).
    __table_args__ = (Index("ix_appeal_messages_stats", "kind", "created_at", "status", "appeal_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    # bot.domain.NoteKind
    kind: Mapped[str] = mapped_column(String(24))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    # For answers: bot.domain.NoteStatus; the review comment when returned.
    status: Mapped[str | None] = mapped_column(String(16))
    review_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class AppealRequest(Base):
    """An official's request the coordinator decides: a redirect to another agency or an extension."""

    __tablename__ = "appeal_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # bot.domain.RequestKind
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    days: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=RequestState.pending, index=True)  # RequestState
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Rating(Base):
    """The resident's judgement of one approved answer (an `answer` note), kept with who and what it rates.

    One per answer: a re-opened appeal's new answer gets a rating of its own. The score may be changed for
    `ratings.edit_hours` after `created_at`, never after."""

    __tablename__ = "ratings"
    __table_args__ = (
        # Agencies' averages over a period (digests, statistics).
        Index("ix_ratings_agency_created", "agency_id", "created_at"),
        Index("ix_ratings_created_score", "created_at", "score"),
        # Statistics: ratings given in a period, with what a slice is cut by, without reading the table.
        Index("ix_ratings_stats", "created_at", "appeal_id", "agency_id", "official_id", "score"),
        # The coordinators' daily list of low ratings reads them by when their score was last set.
        Index("ix_ratings_updated_score", "updated_at", "score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("appeal_messages.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    official_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    score: Mapped[int] = mapped_column(Integer)  # 1..5
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Followup(Base):
    """ "Is the problem actually fixed?", asked once per appeal some days after it closed with a rating of 3–5."""

    __tablename__ = "followups"
    __table_args__ = (
        Index("ix_followups_answer_at", "answer", "answered_at"),
        Index("ix_followups_stats", "answered_at", "appeal_id", "answer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    asked_at: Mapped[datetime]
    # bot.domain.FollowupAnswer; None while unanswered.
    answer: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]


class Outbox(Base):
    """A notification that must reach a person, written in the transaction of the change that causes it.

    It holds a notification class's template code and its fields (bot/notices.py), rendered in the
    recipient's language when sent."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The sender lists each lane's due rows: equality on status and lane, a range on next_attempt_at.
        Index("ix_outbox_due", "status", "lane", "next_attempt_at"),
        # A broadcast's counts by state, and its due items in order (the bulk lane is listed broadcast by broadcast).
        Index("ix_outbox_broadcast", "broadcast_id", "status", "next_attempt_at"),
        # The few items sent again after a sender died with them in flight (a broadcast's "possibly twice").
        Index(
            "ix_outbox_lost",
            "broadcast_id",
            sqlite_where=text("lost_leases > 0"),
            postgresql_where=text("lost_leases > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    template: Mapped[str] = mapped_column(String(48))
    params: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=OutboxState.pending)  # bot.domain.OutboxState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    tg_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(255))
    # Makes a notification idempotent where the cause may repeat (reminders: one per appeal and point).
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # bot.domain.Lane: personal rows go out before any bulk row (broadcast items, poll invitations).
    lane: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The broadcast a bulk item belongs to: sent only while it is running, cancelled with it. (A broadcasts.id with no
    # foreign key: migration 0011 added it to a live table, which SQLite cannot do with one; broadcasts are never
    # deleted.)
    broadcast_id: Mapped[int | None] = mapped_column(Integer)
    # Times a lease on the row expired with no outcome recorded: the sender died (kill -9) while the call was in
    # flight, so the message may have reached the person before it is sent again (counted in the reports).
    lost_leases: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Reminder(Base):
    """A reminder or escalation that falls due at `due_at` (already moved out of quiet hours).

    The scheduler's sweep claims due rows by setting `sent_at` in the same transaction that writes their
    outbox rows, so each is sent once and none is skipped, whatever restarts happen."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("appeal_id", "kind", "seq", name="uq_reminder"),
        # Only the pending ones are ever searched: the sweep's cost follows what is due, not the table's size.
        Index(
            "ix_reminders_pending",
            "due_at",
            sqlite_where=text("sent_at IS NULL"),
            postgresql_where=text("sent_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    # bot.domain.ReminderKind
    kind: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer, default=0)  # escalations repeat daily: 0, 1, 2…
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Digest(Base):
    """A digest or summary claimed for one period: `daily` for a local date, `weekly` for an ISO week.

    The claim is this row's primary key, inserted in the transaction that writes the digest's outbox rows:
    the cron job at digest time and the catch-up of every sweep after it (a bot down at 09:00) race for it,
    and whoever inserts first sends; a restart never repeats a period nor skips one of the same day."""

    __tablename__ = "digests"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    sent_at: Mapped[datetime]


class Counter(Base):
    """Monotonic counters (e.g. the registration number of a year): incremented, never reused."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class HandledUpdate(Base):
    """A Telegram update whose handlers have run: a redelivery of it (after a crash, before Telegram heard that
    it was handled) is skipped. Written after the handlers, so a crash between the two handles it again, which
    the handlers that matter tolerate (filing's Confirm is idempotent by its draft id). Pruned after a few days."""

    __tablename__ = "handled_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handled_at: Mapped[datetime] = mapped_column(index=True)


class InboxUpdate(Base):
    """An update fetched by long polling, not handled yet: written before the getUpdates offset that confirms it to
    Telegram, deleted in the transaction that writes its HandledUpdate. A restart handles what is left here."""

    __tablename__ = "update_inbox"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


FSM_KEY = String(255).with_variant(String(255, collation="C"), "postgresql")


class FsmRecord(Base):
    """Persistent aiogram FSM state: a dialog survives a restart of the bot."""

    __tablename__ = "fsm_state"

    # Byte order ("C" collation) on PostgreSQL: a person's rows are read as the key range [key + ":", key + ";"),
    # which a linguistic collation (en_US, ICU), ignoring punctuation, would not keep together. SQLite compares bytes.
    key: Mapped[str] = mapped_column(FSM_KEY, primary_key=True)
    state: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class Poll(Base):
    """A sociological poll (опрос) of residents: written by an admin or editor, published now or at `publish_at`.

    `status` (bot.services.polls.PollStatus): scheduled → publishing → open → closed. Publishing is claimed in the
    database (`claim`, `locked_until`) and materializes the recipients in batches after `cursor` (the last users.id
    done), so a restart resumes it and two instances never publish one poll twice."""

    __tablename__ = "polls"
    __table_args__ = (
        Index("ix_polls_status_publish", "status", "publish_at"),
        Index("ix_polls_status_closes", "status", "closes_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_other: Mapped[bool] = mapped_column(Boolean, default=False)
    # bot.services.polls.Audience; its parameters (district ids, a language, a block id) in `audience_params`.
    audience: Mapped[str] = mapped_column(String(16))
    audience_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    publish_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    claim: Mapped[str | None] = mapped_column(String(36))
    locked_until: Mapped[datetime | None]
    cursor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Broadcast(Base):
    """A message from the ЦУР to residents (информирование): texts per language (`texts`, "ru" always), an optional
    photo or document and URL button, an audience (`audience`: districts, block_id, language; empty = everyone who
    consented), sent at `start_at`.

    `status` is bot.domain.BroadcastStatus. Starting is claimed like a poll's publishing (`claim`, `locked_until`)
    and materializes the recipients as outbox rows of the bulk lane in batches after `cursor` (the last users.id
    done); `recipients` counts them, `listed` says all are. `draft_key` makes a confirmation pressed twice create one broadcast."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_start", "status", "start_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_key: Mapped[str] = mapped_column(String(36), unique=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    texts: Mapped[dict[str, str]] = mapped_column(JSON)
    media_kind: Mapped[str | None] = mapped_column(String(16))  # bot.domain.AttachmentKind: photo or document
    media_file_id: Mapped[str | None] = mapped_column(String(255))
    button_text: Mapped[str | None] = mapped_column(String(64))
    button_url: Mapped[str | None] = mapped_column(String(512))
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    planned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # the audience counted at confirm
    start_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    reported_at: Mapped[datetime | None]  # the final report queued (once every item had settled)
    claim: Mapped[str | None] = mapped_column(String(36))
    locked_until: Mapped[datetime | None]
    cursor: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    listed: Mapped[bool] = mapped_column(Boolean, default=False)  # every recipient is materialized
    # Flood-control pauses (429) met while it was sending.
    flood_waits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The author's progress message, edited every few seconds; and when and at which count it was edited last.
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_at: Mapped[datetime | None]
    progress_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class NewsPrefs(Base):
    """A resident's choice of news (/subscriptions). No row: the defaults (every block, the district of their latest
    appeal). `stopped`: no broadcasts at all. `districts_chosen`: the districts are those of NewsDistrict, not the
    latest appeal's."""

    __tablename__ = "news_prefs"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    districts_chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class NewsBlockOff(Base):
    """A thematic block a resident does not want news about (every block is on by default)."""

    __tablename__ = "news_blocks_off"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    block_id: Mapped[int] = mapped_column(ForeignKey("blocks.id", ondelete="CASCADE"), primary_key=True)


class NewsDistrict(Base):
    """A district a resident chose to get news about (read when NewsPrefs.districts_chosen)."""

    __tablename__ = "news_districts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    district_id: Mapped[int] = mapped_column(
        ForeignKey("districts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Lease(Base):
    """A named lease several instances compete for (e.g. "bulk": who sends broadcast items). Taken with a conditional
    UPDATE, so the database arbitrates."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    until: Mapped[datetime | None]


class PollOption(Base):
    __tablename__ = "poll_options"
    __table_args__ = (UniqueConstraint("poll_id", "position", name="uq_poll_option_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class PollRecipient(Base):
    """A resident a poll was sent to, with the district of their latest appeal at publishing (the breakdown's
    snapshot) and, for multiple choice, the options ticked but not yet submitted (`draft`)."""

    __tablename__ = "poll_recipients"

    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    answered_at: Mapped[datetime | None]


class PollAnswer(Base):
    """One chosen option of a resident's answer (several rows for multiple choice), or the "other" free text
    (`option_id` None). Replaced whole when the resident changes the answer."""

    __tablename__ = "poll_answers"
    __table_args__ = (
        Index("ix_poll_answers_poll_option", "poll_id", "option_id"),
        Index("ix_poll_answers_poll_user", "poll_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    option_id: Mapped[int | None] = mapped_column(ForeignKey("poll_options.id", ondelete="CASCADE"))
    other_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


__all__ = [
    "AGENCY_ROLES",
    "AccessEntry",
    "Agency",
    "Appeal",
    "AppealKind",
    "AppealMessage",
    "AppealRequest",
    "AppealStatus",
    "Attachment",
    "AttachmentKind",
    "AuditEntry",
    "Base",
    "Block",
    "Broadcast",
    "Category",
    "Consent",
    "Counter",
    "District",
    "FsmRecord",
    "HandledUpdate",
    "InboxUpdate",
    "Invite",
    "Lease",
    "NewsBlockOff",
    "NewsDistrict",
    "NewsPrefs",
    "Outbox",
    "Poll",
    "PollAnswer",
    "PollOption",
    "PollRecipient",
    "Reminder",
    "Role",
    "Route",
    "StatusHistory",
    "User",
    "UserRole",
]


class StatPreset(Base):
    """A slice saved under a name by its owner (bot.domain.SliceSpec.to_json()); optionally sent on a schedule
    (`weekly` on Monday morning, `monthly` on the 1st) to chosen people, each claim recorded in `digests`."""

    __tablename__ = "stat_presets"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_stat_preset_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # bot.domain.ReportSchedule, or None: not scheduled.
    schedule: Mapped[str | None] = mapped_column(String(16), index=True)
    # The users' ids the scheduled report goes to (the owner among them unless removed).
    recipients: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StatReport(Base):
    """A report made by the scheduler (a preset's, the leadership's weekly "state of the region", the monthly
    rating) for one period and one language, kept so that the outbox sends exactly what was computed at claim time:
    the text, the chart (PNG) and the spreadsheet (XLSX) go as three notifications that read this row."""

    __tablename__ = "stat_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # bot.domain.ReportKind
    preset_id: Mapped[int | None] = mapped_column(ForeignKey("stat_presets.id", ondelete="SET NULL"))
    period: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    chart: Mapped[bytes | None] = mapped_column(LargeBinary)
    sheet: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)
