"""Personal data under 152-ФЗ (issue 16): withdrawing the consent, anonymizing appeals, the retention sweep.

A withdrawal erases the person's profile and anonymizes their closed appeals in one transaction. Their open
appeals are either withdrawn too (closed through the state machine, staff told, then anonymized) or answered as
59-ФЗ requires: the applicant's name and contact go at once, the Telegram chat (the person's users row) stays to
deliver the answer, the problem's place and files stay while the agency needs them to consider it, and the next
retention sweep anonymizes the appeal once it is closed, whatever its age. The person's users row stays (its
Telegram id is how a later /start finds them), with no language and a consent answer that is a withdrawal, so the
next /start asks for the language and the consent as for someone new; their anonymized appeals belong to the
anonymous applicant (bot.domain.ANONYMOUS_TG_ID) and are no longer theirs.

What anonymizing takes away and what it keeps is decided in one place, storage.repositories.privacy.PrivacyRepo."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import notices
from bot.domain import AGENCY_ROLES, CLOSED, AppealKind, AppealStatus, HistoryEvent
from bot.services.access import audit
from bot.services.errors import ServiceError
from bot.services.lifecycle import UseCase
from bot.services.users import Actor
from storage.models import Appeal
from storage.repositories.outbox import LeaseRepo
from storage.repositories.privacy import PrivacyRepo

# The lease the retention sweep holds while it works (one instance at a time), renewed at every batch.
RETENTION_LEASE = "retention"
LEASE_TIME = timedelta(minutes=10)


class PrivacyRefused(ServiceError):
    """A withdrawal refused; `detail` says why: "staff" (staff work without a consent to withdraw), "no_consent"
    (none given, or declined), "already_withdrawn"."""

    code = "privacy_refused"


@dataclass(frozen=True)
class WithdrawalPreview:
    """What the confirmation tells: how many of the person's appeals are still open, and how many of them are
    обращения under 59-ФЗ (the law that obliges an answer; a сообщение of the ПОС track is answered all the same)."""

    open_appeals: int
    under_59fz: int = 0


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did: closed appeals anonymized, open ones withdrawn (and anonymized), open ones kept to be
    answered (anonymized once closed)."""

    anonymized: int
    withdrawn: int
    kept_open: int


class PrivacyService(UseCase):
    async def _check(self, session: AsyncSession, actor: Actor) -> None:
        """Whether the actor has a consent in force to withdraw; a refusal is audited (no personal data) and raised.

        Read from the database in the caller's transaction, never from the button pressed: a forged or replayed
        confirmation is refused here."""
        repo = PrivacyRepo(session)
        reason = None
        if actor.is_staff:
            reason = "staff"
        else:
            latest = await repo.latest_consent(actor.id)
            if latest is not None and latest.withdrawn:
                reason = "already_withdrawn"
            elif latest is None or not latest.accepted:
                reason = "no_consent"
        if reason is not None:
            await session.rollback()
            audit(session, actor.id, "refused", self.clock.now(), refused="withdraw_consent", reason=reason)
            await session.commit()
            raise PrivacyRefused(reason)

    async def preview(self, actor: Actor) -> WithdrawalPreview:
        """The confirmation's facts, after the same check as the withdrawal itself."""
        async with self.sessionmaker() as session:
            await self._check(session, actor)
            counts = await PrivacyRepo(session).open_counts(actor.id)
        return WithdrawalPreview(open_appeals=sum(counts.values()), under_59fz=counts.get(AppealKind.appeal, 0))

    async def withdraw(self, actor: Actor, *, withdraw_open: bool) -> Withdrawal:
        """Withdraw the actor's consent: in one transaction, the withdrawal recorded (a consents row, accepted False
        and `withdrawn`, with the current version), the profile erased, the closed appeals anonymized, the open
        ones withdrawn and anonymized (`withdraw_open`) or kept to be answered, and one audit entry."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            repo = PrivacyRepo(session)
            await repo.lock_user(actor.id)
            await self._check(session, actor)
            anonymous = await repo.anonymous_id(now)
            appeals = await repo.appeals_of(actor.id)
            still_open = [a for a in appeals if a.status not in CLOSED]
            closed = [a for a in appeals if a.status in CLOSED]
            if withdraw_open:
                coordinators = await self._coordinators(session)
                for appeal in still_open:
                    await self._withdraw_appeal(session, appeal, actor, coordinators)
                anonymize, kept = [*closed, *still_open], []
            else:
                anonymize, kept = closed, still_open
                await repo.request_erasure([a.id for a in kept], now)
            anonymized = await repo.anonymize([a.id for a in anonymize], anonymous, now)
            await repo.erase_profile(actor.id, keep_about=[a.id for a in kept])
            await repo.add_withdrawal(actor.id, self.settings.consent.version, now)
            withdrawn = len(still_open) if withdraw_open else 0
            # Counts only: the audit log holds no personal data.
            audit(
                session,
                actor.id,
                "consent_withdrawn",
                now,
                target=actor.id,
                anonymized=anonymized,
                withdrawn=withdrawn,
                kept_open=len(kept),
            )
            await self._commit(session)
        return Withdrawal(anonymized=anonymized - withdrawn, withdrawn=withdrawn, kept_open=len(kept))

    async def _withdraw_appeal(
        self, session: AsyncSession, appeal: Appeal, actor: Actor, coordinators: list[int]
    ) -> None:
        """Close an open appeal as withdrawn by its applicant, through the state machine; the coordinators and the
        agency's staff are told, and those whose duplicates follow it get the usual status notice."""
        now = self.clock.now()
        await self.lifecycle.transition(
            session, appeal, AppealStatus.closed, actor, now, notify_resident=False, event=HistoryEvent.withdrawn
        )
        await self.lifecycle.tell_followers(session, appeal, now)
        staff = [*coordinators, *await self._staff_of(session, appeal.agency_id, AGENCY_ROLES)]
        if appeal.official_id is not None:
            staff.append(appeal.official_id)
        self._notify(session, staff, notices.Withdrawn(appeal.id, appeal.number), now)

    async def retention_sweep(self) -> int:
        """Anonymize the closed appeals due (closed more than privacy.retention_days ago, or whose applicant withdrew
        the consent), and delete the settled notifications older than privacy.outbox_keep_days, in batches of
        privacy.retention_batch, each its own transaction; how many appeals were anonymized.

        Idempotent (an anonymized appeal is never chosen again) and one instance at a time: the work is done under
        the named lease "retention" (storage.models.Lease), renewed at every batch and released at the end; an
        instance that finds it held does nothing, and a lease left by a crashed instance expires by itself."""
        config = self.settings.privacy
        holder = uuid.uuid4().hex
        total = 0
        while True:
            now = self.clock.now()
            async with self.sessionmaker() as session:
                leases = LeaseRepo(session)
                try:
                    taken = await leases.take(RETENTION_LEASE, holder, now, now + LEASE_TIME)
                    await session.flush()
                except IntegrityError:  # another instance created the lease row at the same moment
                    await session.rollback()
                    return total
                if not taken:
                    await session.rollback()
                    return total
                repo = PrivacyRepo(session)
                requested = await repo.erasure_due(config.retention_batch)
                old = await repo.retention_due(
                    now - timedelta(days=config.retention_days), config.retention_batch - len(requested)
                )
                done = 0
                if requested or old:
                    anonymous = await repo.anonymous_id(now)
                    # Closed since the applicant withdrew the consent: the closing notice (a rejection's reason, say)
                    # may still be on its way to them, and it is theirs by law, so their pending notifications stay.
                    done = await repo.anonymize(requested, anonymous, now, cancel_pending=False)
                    done += await repo.anonymize(old, anonymous, now)
                pruned = await repo.prune_outbox(now - timedelta(days=config.outbox_keep_days), config.retention_batch)
                last = len(requested) + len(old) < config.retention_batch and pruned < config.retention_batch
                if last:
                    await leases.release(RETENTION_LEASE, holder)
                await session.commit()
            total += done
            if last:
                return total
