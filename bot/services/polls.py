"""Polls (социология): admins and editors ask the region a question, residents answer in Telegram, admins, editors
and analysts read the aggregated results.

Native Telegram polls are not used: an answer is tied to a consented resident the poll was sent to, and stored here.
Publishing is claimed in the database (a lease on the poll row) and materializes the recipients in batches after a
cursor, in the transaction that queues their outbox rows: a restart resumes it, two instances never publish one poll
twice, and delivery goes through the rate-limited outbox sender. Results are aggregated in SQL and never say who
answered what, under these rules (SMALL_CELL = 5):
- nothing at all (totals, breakdown, chart, CSV, the free-text answers) while fewer than SMALL_CELL residents
  answered; the readers are not told the exact number under it either;
- in the breakdown by district a district is listed only if every one of its cells is 0 or at least SMALL_CELL;
  every other district (and the residents with no appeal) joins one "Other districts" row that shows only its
  number of respondents, and is itself left out when that number is 1..SMALL_CELL-1. Subtracting the listed
  districts from the totals then yields only the merged group, never a district's hidden cell.

A resident's answer is stored in a transaction that locks their PollRecipient row (SELECT … FOR UPDATE on
PostgreSQL) before reading it, and replaces whatever answer rows exist: two presses handled at once by two
instances leave one answer set."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Row as DbRow
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import notices
from bot.clock import Clock
from bot.config import LOCALES, Settings
from bot.domain import Lane, Role
from bot.services.access import refuse
from bot.services.calendar import next_allowed_time
from bot.services.errors import Gone, InvalidInput
from bot.services.listing import list_in_batches
from bot.services.users import Actor
from storage.models import (
    Appeal,
    Category,
    Consent,
    Outbox,
    Poll,
    PollAnswer,
    PollOption,
    PollRecipient,
    User,
    UserRole,
)
from storage.repositories.broadcasts import latest_district
from storage.repositories.outbox import OutboxRepo


class PollStatus(StrEnum):
    scheduled = "scheduled"
    publishing = "publishing"
    open = "open"
    closed = "closed"


class Audience(StrEnum):
    """Who a poll goes to: every resident who consented, or those of chosen districts (the district of their latest
    appeal), of a language, or who filed an appeal in a thematic block."""

    all = "all"
    districts = "districts"
    language = "language"
    block = "block"


AUTHORS = (Role.admin, Role.editor)
READERS = (Role.admin, Role.editor, Role.analyst)
MIN_OPTIONS = 2
MAX_OPTIONS = 10
QUESTION_CHARS = 300
OPTION_CHARS = 60  # an option is a button's label
OTHER_CHARS = 500
# Fewer respondents than this: no results; a district with a cell of 1..SMALL_CELL-1 is merged: nobody is singled out.
SMALL_CELL = 5
# Recipients materialized (and their outbox rows written) per transaction: the writer lock stays brief.
PUBLISH_BATCH = 1000
LEASE = timedelta(minutes=2)
# Answering goes on while the rest of the recipients are materialized.
ANSWERABLE = (PollStatus.publishing, PollStatus.open)
# Polls whose question and options a process keeps (they never change): the open ones are a handful.
SHAPES = 256


class PollRefused(InvalidInput):
    """A resident's answer that cannot be taken; `detail` says why: not_recipient (a forged poll id, or a poll not
    sent to them), closed, unknown_option (a forged option), no_other, empty, too_long."""

    code = "poll_refused"


@dataclass(frozen=True, slots=True)
class PollDraft:
    question: str
    options: tuple[str, ...]
    multiple: bool
    allow_other: bool
    audience: Audience
    closes_at: datetime
    districts: tuple[int, ...] = ()
    language: str | None = None
    block_id: int | None = None

    def params(self) -> dict[str, Any]:
        if self.audience == Audience.districts:
            return {"districts": sorted(set(self.districts))}
        if self.audience == Audience.language:
            return {"language": self.language}
        if self.audience == Audience.block:
            return {"block_id": self.block_id}
        return {}


@dataclass(frozen=True, slots=True)
class Ballot:
    """A resident's view of a poll: the options and their current choice (ticked, for multiple choice, until
    «Submit»)."""

    poll_id: int
    question: str
    options: tuple[tuple[int, str], ...]
    multiple: bool
    allow_other: bool
    closes_at: datetime
    chosen: frozenset[int] = frozenset()
    other: str | None = None
    submitted: bool = False  # the chosen options are the stored answer (not a draft)
    is_open: bool = True


@dataclass(frozen=True, slots=True)
class Shape:
    """What never changes in a poll after it is created: its question and options."""

    id: int
    question: str
    options: tuple[tuple[int, str], ...]
    multiple: bool
    allow_other: bool


@dataclass(frozen=True, slots=True)
class State:
    """A recipient's poll at one moment: open or not, and their choice (a draft, or the stored answer)."""

    shape: Shape
    closes_at: datetime
    is_open: bool
    chosen: frozenset[int]
    other: str | None
    submitted: bool
    answered: bool = False  # an answer is stored (a draft may be shown over it)

    def ballot(self, chosen: frozenset[int], other: str | None, *, submitted: bool) -> Ballot:
        s = self.shape
        return Ballot(
            s.id, s.question, s.options, s.multiple, s.allow_other, self.closes_at, chosen, other, submitted,
            self.is_open,
        )


@dataclass(frozen=True, slots=True)
class PollSummary:
    id: int
    question: str
    status: PollStatus
    publish_at: datetime
    closes_at: datetime
    recipients: int
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """A line of the breakdown: a district whose every cell is 0 or at least SMALL_CELL, with its respondents and
    counts per option; or (district_id None) the other districts and the residents with no appeal together, with
    only their number of respondents (at least SMALL_CELL) and no counts."""

    district_id: int | None
    respondents: int
    counts: dict[int | None, int]


@dataclass(frozen=True, slots=True)
class PollResults:
    """`hidden`: fewer than SMALL_CELL residents answered, so `respondents`, `counts` and `rows` are left empty."""

    poll: PollSummary
    multiple: bool
    options: tuple[tuple[int, str], ...]
    allow_other: bool
    respondents: int
    counts: dict[int | None, int]  # option id (None: the free-text "other") -> answers
    rows: tuple[Row, ...] = field(default_factory=tuple)
    hidden: bool = False

    def percent(self, count: int) -> float:
        return 100.0 * count / self.respondents if self.respondents else 0.0


def merge_small(
    by_district: dict[int | None, dict[int | None, int]], respondents: dict[int | None, int]
) -> tuple[Row, ...]:
    """The breakdown as shown: a district is listed only if every one of its cells is 0 or at least SMALL_CELL;
    the rest (and the residents with no appeal, None) make one row with only their respondents, left out when they
    are fewer than SMALL_CELL."""
    rows = []
    rest = 0
    for district, people in sorted(respondents.items(), key=lambda kv: (-kv[1], kv[0] or 0)):
        cells = {option: count for option, count in by_district.get(district, {}).items() if count}
        if district is not None and cells and all(count >= SMALL_CELL for count in cells.values()):
            rows.append(Row(district, people, cells))
        else:
            rest += people
    if rest >= SMALL_CELL:
        rows.append(Row(None, rest, {}))
    return tuple(rows)


class PollService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        on_commit: Callable[[], None] = lambda: None,
        batch: int = PUBLISH_BATCH,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.on_commit = on_commit
        self.batch = batch
        self._shapes: dict[int, Shape] = {}

    # --- who may -----------------------------------------------------------------------------------------

    async def check_author(self, actor: Actor, action: str = "poll_create") -> None:
        if not actor.has(*AUTHORS):
            raise await refuse(self.sessionmaker, actor, action, self.clock.now())

    async def check_reader(self, actor: Actor, action: str = "poll_results") -> None:
        if not actor.has(*READERS):
            raise await refuse(self.sessionmaker, actor, action, self.clock.now())

    # --- the audience ------------------------------------------------------------------------------------

    def _audience(self, audience: Audience, params: dict[str, Any]) -> Any:
        """(users.id, district of the latest appeal) of the residents a poll goes to: active, consent accepted in
        its current version, holding no staff role."""
        latest_consent = select(func.max(Consent.id)).where(Consent.user_id == User.id).correlate(User).scalar_subquery()
        district = latest_district()
        query = (
            select(User.id, district.label("district_id"))
            .join(Consent, Consent.id == latest_consent)
            .where(
                User.is_active.is_(True),
                Consent.version == self.settings.consent.version,
                Consent.accepted.is_(True),
                ~exists().where(UserRole.user_id == User.id),
            )
        )
        if audience == Audience.districts:
            query = query.where(district.in_([int(d) for d in params.get("districts", [])]))
        elif audience == Audience.language:
            query = query.where(User.locale == str(params.get("language")))
        elif audience == Audience.block:
            query = query.where(
                exists()
                .where(Appeal.user_id == User.id, Appeal.category_id == Category.id)
                .where(Category.block_id == int(params.get("block_id") or 0))
            )
        return query

    def _validate(self, draft: PollDraft, now: datetime, publish_at: datetime | None) -> None:
        question = draft.question.strip()
        if not question or len(question) > QUESTION_CHARS:
            raise InvalidInput("question")
        if not MIN_OPTIONS <= len(draft.options) <= MAX_OPTIONS:
            raise InvalidInput("options")
        if any(not o.strip() or len(o.strip()) > OPTION_CHARS for o in draft.options):
            raise InvalidInput("options")
        if draft.audience == Audience.districts and not draft.districts:
            raise InvalidInput("audience")
        if draft.audience == Audience.language and draft.language not in LOCALES:
            raise InvalidInput("audience")
        if draft.audience == Audience.block and not draft.block_id:
            raise InvalidInput("audience")
        if draft.closes_at <= max(now, publish_at or now):
            raise InvalidInput("closes_at")

    async def audience_size(self, actor: Actor, draft: PollDraft) -> int:
        await self.check_author(actor)
        query = self._audience(draft.audience, draft.params()).subquery()
        async with self.sessionmaker() as session:
            return int((await session.execute(select(func.count()).select_from(query))).scalar_one())

    # --- creating and publishing -------------------------------------------------------------------------

    def allowed(self, moment: datetime) -> datetime:
        """`moment`, or the end of the quiet hours it falls in: residents are not woken by a poll."""
        config = self.settings.scheduler
        return next_allowed_time(moment, quiet_start=config.quiet_start, quiet_end=config.quiet_end, tz=self.settings.tz)

    async def create(self, actor: Actor, draft: PollDraft, publish_at: datetime | None = None) -> int:
        """Store the poll, to be published at `publish_at` (now when None) by `publish` / the scheduler's tick.

        A chosen time inside the quiet hours is refused (InvalidInput "quiet_hours"); "now" inside them becomes
        the end of the quiet hours (the caller sees it in `publish_at` of the poll)."""
        now = self.clock.now()
        await self.check_author(actor)
        if publish_at is not None and self.allowed(publish_at) != publish_at:
            raise InvalidInput("quiet_hours")
        publish_at = publish_at or self.allowed(now)
        self._validate(draft, now, publish_at)
        async with self.sessionmaker() as session:
            poll = Poll(
                question=draft.question.strip(),
                multiple=draft.multiple,
                allow_other=draft.allow_other,
                audience=draft.audience,
                audience_params=draft.params(),
                status=PollStatus.scheduled,
                created_by=actor.id,
                created_at=now,
                publish_at=max(publish_at, now),
                closes_at=draft.closes_at,
                cursor=0,
                recipients=0,
            )
            session.add(poll)
            await session.flush()
            for position, text in enumerate(draft.options):
                session.add(PollOption(poll_id=poll.id, position=position, text=text.strip()))
            await session.commit()
            return poll.id

    async def tick(self) -> int:
        """The scheduler's job: publish the polls whose time has come (or resume one whose publisher died), close
        the ones whose closing time has passed."""
        return await self.publish_due() + await self.close_due()

    async def publish_due(self) -> int:
        now = self.clock.now()
        async with self.sessionmaker() as session:
            ids = (
                await session.execute(
                    select(Poll.id).where(
                        Poll.status.in_([PollStatus.scheduled, PollStatus.publishing]),
                        Poll.publish_at <= now,
                        or_(Poll.locked_until.is_(None), Poll.locked_until < now),
                    )
                )
            ).scalars().all()
        return sum([await self.publish(poll_id) for poll_id in ids])

    async def publish(self, poll_id: int) -> int:
        """Claim the poll (a lease in its row), then materialize its recipients `batch` at a time after its
        cursor, each batch in one transaction with its outbox rows; returns the recipients added. A batch commits only
        while the lease is ours, so a publisher that stalled past it and was replaced adds nothing twice."""
        now = self.clock.now()
        token = uuid.uuid4().hex
        async with self.sessionmaker() as session:
            claimed = await session.execute(
                update(Poll)
                .where(
                    Poll.id == poll_id,
                    Poll.status.in_([PollStatus.scheduled, PollStatus.publishing]),
                    Poll.publish_at <= now,
                    or_(Poll.locked_until.is_(None), Poll.locked_until < now),
                )
                .values(status=PollStatus.publishing, claim=token, locked_until=now + LEASE)
                .returning(Poll.closes_at, Poll.audience, Poll.audience_params, Poll.cursor, Poll.question,
                           Poll.multiple, Poll.allow_other)
            )
            row = claimed.first()
            if row is None:
                return 0
            closes_at, audience, params, cursor, question, multiple, allow_other = row
            if closes_at <= now:  # its time went by before it could be sent (the bot was down): nobody is asked
                await session.execute(
                    update(Poll).where(Poll.id == poll_id).values(status=PollStatus.closed, closed_at=now, claim=None)
                )
                await session.commit()
                return 0
            options = (
                await session.execute(
                    select(PollOption.id, PollOption.text).where(PollOption.poll_id == poll_id).order_by(PollOption.position)
                )
            ).all()
            await session.commit()
        invite = notices.PollInvite(
            poll_id=poll_id,
            question=question,
            options=tuple((int(i), str(t)) for i, t in options),
            multiple=bool(multiple),
            other=bool(allow_other),
            closes_at=closes_at.isoformat(),
        )
        try:
            return await self._materialize(poll_id, token, invite, self._audience(Audience(audience), params or {}), int(cursor))
        except Exception:
            # The lease is given back at once (if the database still answers), so that «Publish now» pressed
            # again, or the next tick, resumes from the cursor without waiting for it to expire.
            with suppress(SQLAlchemyError, OSError):
                async with self.sessionmaker() as session:
                    await session.execute(
                        update(Poll).where(Poll.id == poll_id, Poll.claim == token).values(claim=None, locked_until=None)
                    )
                    await session.commit()
            raise

    async def _materialize(self, poll_id: int, token: str, invite: notices.PollInvite, query: Any, cursor: int) -> int:
        async def write(session: AsyncSession, rows: Sequence[DbRow[Any]], now: datetime) -> None:
            await session.execute(
                insert(PollRecipient.__table__),
                [{"poll_id": poll_id, "user_id": u, "district_id": d, "draft": None, "answered_at": None} for u, d in rows],
            )
            await session.execute(
                insert(Outbox.__table__),
                [OutboxRepo.values(u, invite, now, dedupe_key=f"poll:{poll_id}:{u}", lane=Lane.bulk) for u, _d in rows],
            )

        added = await list_in_batches(
            self.sessionmaker, self.clock, Poll, poll_id, token, query, cursor,
            batch=self.batch, lease=LEASE, write=write,
            done=lambda now: {"status": PollStatus.open, "published_at": now},
            on_commit=self.on_commit,
        )
        return added or 0

    async def close_due(self) -> int:
        now = self.clock.now()
        async with self.sessionmaker() as session:
            closed = await session.execute(
                update(Poll)
                .where(Poll.status == PollStatus.open, Poll.closes_at <= now)
                .values(status=PollStatus.closed, closed_at=now)
            )
            await session.commit()
            return int(closed.rowcount or 0)

    async def close(self, actor: Actor, poll_id: int) -> None:
        """An author closes a poll before its time; answers stop at once."""
        now = self.clock.now()
        await self.check_author(actor, "poll_close")
        async with self.sessionmaker() as session:
            closed = await session.execute(
                update(Poll)
                .where(Poll.id == poll_id, Poll.status != PollStatus.closed)
                .values(status=PollStatus.closed, closed_at=now, claim=None, locked_until=None)
            )
            await session.commit()
            if not closed.rowcount:
                raise InvalidInput("poll_closed")

    # --- residents ---------------------------------------------------------------------------------------
    # The hot path of a poll (thousands of presses in minutes): the poll's question and options are read once per
    # process (they never change after creation, so no instance can hold a stale copy), its status and closing time
    # and the person's row on every press, in one query; a change is two or three statements and one commit.

    async def _shape(self, session: AsyncSession, poll_id: int) -> Shape:
        shape = self._shapes.get(poll_id)
        if shape is None:
            poll = (
                await session.execute(
                    select(Poll.question, Poll.multiple, Poll.allow_other).where(Poll.id == poll_id)
                )
            ).one()
            options = tuple(
                (int(i), str(t))
                for i, t in await session.execute(
                    select(PollOption.id, PollOption.text).where(PollOption.poll_id == poll_id).order_by(PollOption.position)
                )
            )
            if len(self._shapes) >= SHAPES:
                self._shapes.clear()
            shape = self._shapes[poll_id] = Shape(poll_id, poll[0], options, bool(poll[1]), bool(poll[2]))
        return shape

    async def _state(self, session: AsyncSession, actor: Actor, poll_id: int, *, answerable: bool = True) -> State:
        """The poll as this recipient sees it; PollRefused if it was not sent to them (or does not exist), or (when
        `answerable`) is closed. When `answerable` (a change follows) their PollRecipient row is locked until the
        transaction ends (FOR UPDATE: another instance's press of the same person waits, then reads the result)."""
        query = (
            select(Poll.status, Poll.closes_at, PollRecipient.draft, PollRecipient.answered_at)
            .join(PollRecipient, and_(PollRecipient.poll_id == Poll.id, PollRecipient.user_id == actor.id))
            .where(Poll.id == poll_id)
        )
        if answerable:
            query = query.with_for_update(of=PollRecipient)
        row = (await session.execute(query)).first()
        if row is None:
            raise PollRefused("not_recipient")
        status, closes_at, draft, answered_at = row
        is_open = status in ANSWERABLE and self.clock.now() < closes_at
        if answerable and not is_open:
            raise PollRefused("closed")
        shape = await self._shape(session, poll_id)
        if draft is not None:
            chosen = frozenset(int(o) for o in draft.get("options", []))
            other = draft.get("other")
            return State(shape, closes_at, is_open, chosen, other, submitted=False, answered=answered_at is not None)
        if answered_at is None:
            return State(shape, closes_at, is_open, frozenset(), None, submitted=False)
        answers = (
            await session.execute(
                select(PollAnswer.option_id, PollAnswer.other_text).where(
                    PollAnswer.poll_id == poll_id, PollAnswer.user_id == actor.id
                )
            )
        ).all()
        chosen = frozenset(int(o) for o, _t in answers if o is not None)
        other = next((t for o, t in answers if o is None), None)
        return State(shape, closes_at, is_open, chosen, other, submitted=True, answered=True)

    async def _store(
        self, session: AsyncSession, actor: Actor, state: State, chosen: frozenset[int], other: str | None
    ) -> Ballot:
        now = self.clock.now()
        poll_id = state.shape.id
        # Their PollRecipient row is locked since `_state` (PostgreSQL); whatever answer rows exist are replaced, not
        # only when `state.answered` said so: where the lock is not available (SQLite serializes the writers instead)
        # a press that read "not answered" before another's commit still leaves one answer set.
        await session.execute(delete(PollAnswer).where(PollAnswer.poll_id == poll_id, PollAnswer.user_id == actor.id))
        rows = [{"option_id": o, "other_text": None} for o in sorted(chosen)]
        if other is not None:
            rows.append({"option_id": None, "other_text": other})
        await session.execute(
            insert(PollAnswer.__table__),
            [{"poll_id": poll_id, "user_id": actor.id, "created_at": now, **row} for row in rows],
        )
        await session.execute(
            update(PollRecipient)
            .where(PollRecipient.poll_id == poll_id, PollRecipient.user_id == actor.id)
            .values(draft=None, answered_at=now)
        )
        await session.commit()
        return state.ballot(chosen, other, submitted=True)

    async def _keep_draft(
        self, session: AsyncSession, actor: Actor, state: State, chosen: frozenset[int], other: str | None
    ) -> Ballot:
        await session.execute(
            update(PollRecipient)
            .where(PollRecipient.poll_id == state.shape.id, PollRecipient.user_id == actor.id)
            .values(draft={"options": sorted(chosen), "other": other})
        )
        await session.commit()
        return state.ballot(chosen, other, submitted=False)

    async def ballot(self, actor: Actor, poll_id: int) -> Ballot:
        async with self.sessionmaker() as session:
            state = await self._state(session, actor, poll_id, answerable=False)
            return state.ballot(state.chosen, state.other, submitted=state.submitted)

    async def choose(self, actor: Actor, poll_id: int, option_id: int) -> Ballot:
        """Single choice: the answer is this option (replacing any earlier one). Multiple: the option is ticked or
        unticked in the draft, stored by `submit`."""
        async with self.sessionmaker() as session:
            state = await self._state(session, actor, poll_id)
            if option_id not in {o for o, _t in state.shape.options}:
                raise PollRefused("unknown_option")
            if state.shape.multiple:
                return await self._keep_draft(session, actor, state, state.chosen ^ {option_id}, state.other)
            return await self._store(session, actor, state, frozenset({option_id}), None)

    async def other_wanted(self, actor: Actor, poll_id: int) -> Ballot | None:
        """«Other» pressed: None when the free text is to be asked for; for multiple choice with a text already
        ticked, the text is unticked instead and the new ballot returned."""
        async with self.sessionmaker() as session:
            state = await self._state(session, actor, poll_id)
            if not state.shape.allow_other:
                raise PollRefused("no_other")
            if not state.shape.multiple or state.other is None:
                return None
            return await self._keep_draft(session, actor, state, state.chosen, None)

    async def answer_other(self, actor: Actor, poll_id: int, text: str) -> Ballot:
        """The free-text «Other»: the answer (single choice) or ticked with the options (multiple)."""
        text = text.strip()
        if not text:
            raise PollRefused("empty")
        if len(text) > OTHER_CHARS:
            raise PollRefused("too_long")
        async with self.sessionmaker() as session:
            state = await self._state(session, actor, poll_id)
            if not state.shape.allow_other:
                raise PollRefused("no_other")
            if state.shape.multiple:
                return await self._keep_draft(session, actor, state, state.chosen, text)
            return await self._store(session, actor, state, frozenset(), text)

    async def submit(self, actor: Actor, poll_id: int) -> Ballot:
        """Multiple choice: the ticked options (and text) become the answer, replacing any earlier one."""
        async with self.sessionmaker() as session:
            state = await self._state(session, actor, poll_id)
            if not state.shape.multiple:
                raise PollRefused("unknown_option")
            if not state.chosen and state.other is None:
                raise PollRefused("empty")
            return await self._store(session, actor, state, state.chosen, state.other)

    # --- reading -----------------------------------------------------------------------------------------

    @staticmethod
    def _summary(poll: Poll) -> PollSummary:
        return PollSummary(
            poll.id,
            poll.question,
            PollStatus(poll.status),
            poll.publish_at,
            poll.closes_at,
            poll.recipients,
            poll.closed_at,
        )

    async def polls(self, actor: Actor, limit: int = 50) -> list[PollSummary]:
        await self.check_reader(actor, "poll_list")
        async with self.sessionmaker() as session:
            found = (await session.execute(select(Poll).order_by(Poll.id.desc()).limit(limit))).scalars().all()
            return [self._summary(p) for p in found]

    async def results(self, actor: Actor, poll_id: int) -> PollResults:
        """Counts per option and per district, aggregated in SQL; nothing while fewer than SMALL_CELL residents
        answered (`hidden`), small districts merged (merge_small)."""
        await self.check_reader(actor)
        async with self.sessionmaker() as session:
            poll = await session.get(Poll, poll_id)
            if poll is None:  # a forged or stale button
                raise Gone("poll")
            options = tuple(
                (int(i), str(t))
                for i, t in await session.execute(
                    select(PollOption.id, PollOption.text).where(PollOption.poll_id == poll_id).order_by(PollOption.position)
                )
            )
            cells = await session.execute(
                select(PollRecipient.district_id, PollAnswer.option_id, func.count())
                .select_from(PollAnswer)
                .join(
                    PollRecipient,
                    and_(PollRecipient.poll_id == PollAnswer.poll_id, PollRecipient.user_id == PollAnswer.user_id),
                )
                .where(PollAnswer.poll_id == poll_id)
                .group_by(PollRecipient.district_id, PollAnswer.option_id)
            )
            by_district: dict[int | None, dict[int | None, int]] = {}
            counts: dict[int | None, int] = {}
            for district, option, count in cells:
                by_district.setdefault(district, {})[option] = int(count)
                counts[option] = counts.get(option, 0) + int(count)
            people = await session.execute(
                select(PollRecipient.district_id, func.count())
                .where(PollRecipient.poll_id == poll_id, PollRecipient.answered_at.is_not(None))
                .group_by(PollRecipient.district_id)
            )
            respondents = {district: int(count) for district, count in people}
            if sum(respondents.values()) < SMALL_CELL:
                return PollResults(self._summary(poll), poll.multiple, options, poll.allow_other, 0, {}, (), hidden=True)
            return PollResults(
                self._summary(poll),
                poll.multiple,
                options,
                poll.allow_other,
                sum(respondents.values()),
                counts,
                merge_small(by_district, respondents),
            )

    async def other_answers(self, actor: Actor, poll_id: int) -> list[str]:
        """The free-text «Other» answers in random order, without who, where or when; none while fewer than
        SMALL_CELL residents answered."""
        await self.check_reader(actor)
        async with self.sessionmaker() as session:
            if await session.get(Poll, poll_id) is None:
                raise Gone("poll")
            answered = (
                await session.execute(
                    select(func.count()).where(PollRecipient.poll_id == poll_id, PollRecipient.answered_at.is_not(None))
                )
            ).scalar_one()
            if answered < SMALL_CELL:
                return []
            texts = list(
                (
                    await session.execute(
                        select(PollAnswer.other_text).where(
                            PollAnswer.poll_id == poll_id, PollAnswer.option_id.is_(None), PollAnswer.other_text.is_not(None)
                        )
                    )
                ).scalars()
            )
        random.SystemRandom().shuffle(texts)
        return [str(t) for t in texts]
