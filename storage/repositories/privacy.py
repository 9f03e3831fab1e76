"""Personal data (issue 16): what anonymizing an appeal and erasing a profile change, as set-based statements.

`PrivacyRepo.anonymize` is the one place that decides what of an appeal goes and what stays; the service
(bot/services/privacy.py) decides when. Queries only: the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import notices
from bot.domain import ANONYMOUS_TG_ID, CLOSED, NoteKind, OutboxState
from storage.models import (
    AccessEntry,
    Appeal,
    AppealMessage,
    Attachment,
    Consent,
    Followup,
    NewsBlockOff,
    NewsDistrict,
    NewsPrefs,
    Outbox,
    PollRecipient,
    Rating,
    Reminder,
    StatusHistory,
    User,
)

NO_SYNC = {"synchronize_session": False}
# Notifications about an appeal whose parameters carry the applicant's data or words (the card's text, address and
# coordinates with the reopening reason; a clarification's reply; the reason of a reopening): dropped, pending or
# not, when the appeal is anonymized. The rest about it (a status, a number, a staff member's text) carry none.
PERSONAL_NOTICES = (notices.Assigned.template, notices.ClarificationReply.template, notices.Reopened.template)
# Settled notifications: sent or given up; deleted after privacy.outbox_keep_days, or with the data they carry.
SETTLED = (OutboxState.sent, OutboxState.blocked, OutboxState.failed, OutboxState.cancelled)
# The applicant's own words on an appeal (a reply to a clarification, the reason of a reopening): blanked.
APPLICANT_NOTES = (NoteKind.clarification_reply, NoteKind.reopen)
# Outbox rows deleted by id in one statement.
ID_CHUNK = 500


class PrivacyRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def anonymous_id(self, now: datetime) -> int:
        """The users row of the anonymous applicant (bot.domain.ANONYMOUS_TG_ID), made the first time it is needed
        (not by the migration: a fresh database keeps its users' ids from 1 for the people)."""
        query = select(User.id).where(User.tg_id == ANONYMOUS_TG_ID)
        found = (await self.session.execute(query)).scalar_one_or_none()
        if found is not None:
            return int(found)
        try:
            # A savepoint: when another transaction created the row first, read theirs.
            async with self.session.begin_nested():
                created = await self.session.execute(
                    insert(User)
                    .values(tg_id=ANONYMOUS_TG_ID, locale=None, is_active=False, created_at=now)
                    .returning(User.id)
                )
                return int(created.scalar_one())
        except IntegrityError:
            return int((await self.session.execute(query)).scalar_one())

    async def lock_user(self, user_id: int) -> User | None:
        """The person's row, locked for the transaction where the database can: a second withdrawal waits, then
        reads the first one's consent row."""
        query = select(User).where(User.id == user_id).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def latest_consent(self, user_id: int) -> Consent | None:
        query = select(Consent).where(Consent.user_id == user_id).order_by(Consent.id.desc()).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_withdrawal(self, user_id: int, version: str, now: datetime) -> None:
        await self.session.execute(
            insert(Consent).values(user_id=user_id, version=version, accepted=False, withdrawn=True, at=now)
        )

    async def appeals_of(self, user_id: int) -> Sequence[Appeal]:
        """The person's appeals not anonymized yet, locked (FOR UPDATE where the database can)."""
        query = (
            select(Appeal)
            .where(Appeal.user_id == user_id, Appeal.anonymized_at.is_(None))
            .order_by(Appeal.id)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalars().all()

    async def prune_outbox(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` settled notifications queued before `before` (not broadcast items: their broadcast's
        report counts them); how many went."""
        chosen = (
            select(Outbox.id)
            .where(Outbox.status.in_(list(SETTLED)), Outbox.broadcast_id.is_(None), Outbox.created_at < before)
            .order_by(Outbox.id)
            .limit(limit)
        )
        ids = list((await self.session.execute(chosen)).scalars())
        if ids:
            await self.session.execute(delete(Outbox).where(Outbox.id.in_(ids)).execution_options(synchronize_session=False))
        return len(ids)

    async def open_counts(self, user_id: int) -> dict[str, int]:
        """The person's open appeals, counted by kind (AppealKind)."""
        query = (
            select(Appeal.kind, func.count(Appeal.id))
            .where(Appeal.user_id == user_id, Appeal.anonymized_at.is_(None), Appeal.status.not_in(list(CLOSED)))
            .group_by(Appeal.kind)
        )
        return {str(kind): int(n) for kind, n in await self.session.execute(query)}

    async def request_erasure(self, appeal_ids: Sequence[int], now: datetime) -> None:
        """Open appeals the applicant keeps to be answered after withdrawing the consent: their name and contact go
        now (the answer goes to the Telegram chat, which stays until closing); the rest goes once they are closed."""
        if not appeal_ids:
            return
        await self.session.execute(
            update(Appeal)
            .where(Appeal.id.in_(list(appeal_ids)))
            .values(erasure_requested_at=now, applicant_name=None, applicant_contact=None)
            .execution_options(**NO_SYNC)
        )

    async def anonymize(
        self, appeal_ids: Sequence[int], anonymous_id: int, now: datetime, *, cancel_pending: bool = True
    ) -> int:
        """Anonymize these appeals (those not anonymized yet); how many were.

        Goes: the applicant's name, contact and address, the exact coordinates (NULL: the district stays, and the
        directory knows no coordinates of district centres to round to), every file (the rows: their Telegram file
        ids and the answer's letter, addressed to the applicant, alike; no statistic reads attachments), the links to
        the person (the appeal, its ratings, the follow-up, the applicant's own history entries and messages, the access
        log's rows about it now belong to the anonymous applicant), the applicant's own words (their replies to
        clarifications and reasons for reopening made empty, the ratings' and the follow-up's comments NULL), the
        reminders still to be sent, the outbox rows about it already settled or carrying the applicant's data
        (PERSONAL_NOTICES), and (`cancel_pending`) the applicant's notifications about it still pending. Stays: the
        text, category, district, agency, kind, dates, statuses, deadlines, the answer figures, the history, the
        staff's notes and answers, the ratings' scores, the pending notices to staff holding only ids and numbers."""
        if not appeal_ids:
            return 0
        rows = (
            await self.session.execute(
                select(Appeal.id, Appeal.user_id).where(Appeal.id.in_(list(appeal_ids)), Appeal.anonymized_at.is_(None))
            )
        ).all()
        ids = [row.id for row in rows]
        authors = sorted({row.user_id for row in rows} - {anonymous_id})
        if not ids:
            return 0
        about = func.coalesce(Outbox.params["appeal_id"].as_integer(), 0)
        # Notifications about these appeals: the settled ones go (outbox rows are never pruned), and so do the
        # pending ones carrying the applicant's data (an assignment's card to an official not delivered yet). Those
        # carrying only an id and a number stay: a withdrawal's notice to staff, the closing notice to the applicant.
        await self.session.execute(
            delete(Outbox)
            .where(about.in_(ids), or_(Outbox.status.in_(list(SETTLED)), Outbox.template.in_(PERSONAL_NOTICES)))
            .execution_options(**NO_SYNC)
        )
        await self._drop_files_sent(ids)
        if authors and cancel_pending:
            await self.session.execute(
                update(Outbox)
                .where(Outbox.status == OutboxState.pending, Outbox.user_id.in_(authors), about.in_(ids))
                .values(status=OutboxState.cancelled, locked_until=None)
                .execution_options(**NO_SYNC)
            )
        # The applicant's own entries and words (filing, a clarification, a sent-back answer) before the appeal's
        # link to them goes: matched by the appeal's applicant, so staff's entries keep their authors.
        applicant_of_entry = select(Appeal.user_id).where(Appeal.id == StatusHistory.appeal_id).scalar_subquery()
        await self.session.execute(
            update(StatusHistory)
            .where(StatusHistory.appeal_id.in_(ids), StatusHistory.actor_id == applicant_of_entry)
            .values(actor_id=anonymous_id)
            .execution_options(**NO_SYNC)
        )
        applicant_of_note = select(Appeal.user_id).where(Appeal.id == AppealMessage.appeal_id).scalar_subquery()
        # Their words go (the column is NOT NULL: an empty text); no statistic reads them. Staff's notes stay.
        await self.session.execute(
            update(AppealMessage)
            .where(
                AppealMessage.appeal_id.in_(ids),
                AppealMessage.author_id == applicant_of_note,
                AppealMessage.kind.in_(list(APPLICANT_NOTES)),
            )
            .values(text="")
            .execution_options(**NO_SYNC)
        )
        await self.session.execute(
            update(AppealMessage)
            .where(AppealMessage.appeal_id.in_(ids), AppealMessage.author_id == applicant_of_note)
            .values(author_id=anonymous_id)
            .execution_options(**NO_SYNC)
        )
        # The ratings' and the follow-up's comments go with the link to the person; the scores and answers stay.
        for model in (Rating, Followup):
            await self.session.execute(
                update(model)
                .where(model.appeal_id.in_(ids))
                .values(user_id=anonymous_id, comment=None)
                .execution_options(**NO_SYNC)
            )
        # The access log keeps who of the staff saw the appeal, no longer whose it was.
        await self.session.execute(
            update(AccessEntry)
            .where(AccessEntry.appeal_id.in_(ids))
            .values(subject_user_id=anonymous_id)
            .execution_options(**NO_SYNC)
        )
        await self.session.execute(delete(Attachment).where(Attachment.appeal_id.in_(ids)).execution_options(**NO_SYNC))
        await self.session.execute(
            delete(Reminder)
            .where(Reminder.appeal_id.in_(ids), Reminder.sent_at.is_(None))
            .execution_options(**NO_SYNC)
        )
        await self.session.execute(
            update(Appeal)
            .where(Appeal.id.in_(ids))
            .values(
                user_id=anonymous_id,
                applicant_name=None,
                applicant_contact=None,
                address=None,
                latitude=None,
                longitude=None,
                anonymized_at=now,
                erasure_requested_at=None,
            )
            .execution_options(**NO_SYNC)
        )
        return len(ids)

    async def _drop_files_sent(self, ids: Sequence[int]) -> None:
        """The outbox rows that send these appeals' files (notices.Files: the file ids only, no appeal id, built where
        the files are read): found by the file ids of the appeals' attachments, before the attachments go. The file
        rows are read once and matched here (a LIKE per file id read the whole outbox again for every few files:
        bench/retention.py), then deleted by id."""
        query = select(Attachment.file_id).where(Attachment.appeal_id.in_(ids)).distinct()
        file_ids = set((await self.session.execute(query)).scalars())
        if not file_ids:
            return
        rows = await self.session.execute(select(Outbox.id, Outbox.params).where(Outbox.template == notices.Files.template))
        doomed = [
            row.id
            for row in rows
            if any(file_id in file_ids for _kind, file_id in (row.params or {}).get("files", ()))
        ]
        for start in range(0, len(doomed), ID_CHUNK):
            chunk = doomed[start : start + ID_CHUNK]
            await self.session.execute(delete(Outbox).where(Outbox.id.in_(chunk)).execution_options(**NO_SYNC))

    async def erase_profile(self, user_id: int, keep_about: Sequence[int]) -> None:
        """The profile of a person who withdrew the consent: language, names, news choices, the polls they were
        invited to and did not answer, and their pending notifications, except those about the open appeals
        `keep_about` that are still to be answered. Answered polls stay in the polls' results (with the person's
        user row, which keeps only its Telegram id)."""
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(locale=None, full_name=None, username=None)
            .execution_options(**NO_SYNC)
        )
        for model in (NewsPrefs, NewsBlockOff, NewsDistrict):
            await self.session.execute(delete(model).where(model.user_id == user_id).execution_options(**NO_SYNC))
        await self.session.execute(
            delete(PollRecipient)
            .where(PollRecipient.user_id == user_id, PollRecipient.answered_at.is_(None))
            .execution_options(**NO_SYNC)
        )
        await self.session.execute(
            update(PollRecipient)
            .where(PollRecipient.user_id == user_id)
            .values(draft=None)
            .execution_options(**NO_SYNC)
        )
        pending = and_(Outbox.user_id == user_id, Outbox.status == OutboxState.pending)
        if keep_about:
            about = Outbox.params["appeal_id"].as_integer()
            pending = and_(pending, or_(about.is_(None), about.not_in(list(keep_about))))
        await self.session.execute(
            update(Outbox)
            .where(pending)
            .values(status=OutboxState.cancelled, locked_until=None)
            .execution_options(**NO_SYNC)
        )
        # Screens resent after flood control (notices.Reply) hold what the bot showed them, their words among it.
        await self.session.execute(
            delete(Outbox)
            .where(Outbox.user_id == user_id, Outbox.template == notices.Reply.template, Outbox.status.in_(list(SETTLED)))
            .execution_options(**NO_SYNC)
        )

    async def erasure_due(self, limit: int) -> list[int]:
        """Closed appeals whose applicant withdrew the consent while they were open: due whatever their age (read
        through their partial index)."""
        query = (
            select(Appeal.id)
            .where(
                Appeal.erasure_requested_at.is_not(None),
                Appeal.anonymized_at.is_(None),
                Appeal.closed_at.is_not(None),  # closed or rejected (AppealLifecycle.move), through the partial index
            )
            .order_by(Appeal.erasure_requested_at, Appeal.id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def retention_due(self, cutoff: datetime, limit: int) -> list[int]:
        """Appeals closed before `cutoff` and not anonymized yet, the oldest first (read through their partial index)."""
        query = (
            select(Appeal.id)
            # Only a closed (or rejected) appeal has a closed_at (AppealLifecycle.move): no test of the status, which
            # would lead SQLite to the status index and a sort of every closed appeal (bench/retention.py).
            .where(Appeal.anonymized_at.is_(None), Appeal.closed_at <= cutoff)
            .order_by(Appeal.closed_at, Appeal.id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())
