"""ratings of answers, "is it fixed?" follow-ups, re-opening counts, physical categories

`appeals.answered_at` is backfilled from the status history (the latest move to "answered"), so the re-opening
window of appeals answered before this revision counts from their real answer.

Appeals answered before this revision were never asked for a rating, and nothing would ever close them: each gets
the rating reminder (with the buttons) 3 days after the upgrade and the closing without a rating 7 days after it
(the defaults of `[ratings]`), both at 09:00 UTC (noon in the region, outside any quiet hours); one answered more
than 30 days ago (past the default re-opening window) gets only the closing, which still offers to rate.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD/DROP COLUMN (SQLite has both), not a batch: a batch copies the table and drops the old
    # one, which the rows that reference it (appeals → categories, history → appeals) refuse with foreign keys on.
    op.add_column("categories", sa.Column("physical", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("appeals", sa.Column("answered_at", sa.DateTime(), nullable=True))
    op.add_column("appeals", sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE appeals SET answered_at = (SELECT max(h.at) FROM status_history h "
        "WHERE h.appeal_id = appeals.id AND h.to_status = 'answered')"
    )
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("note_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("official_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["note_id"], ["appeal_messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"]),
        sa.ForeignKeyConstraint(["official_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("note_id"),
    )
    op.create_index("ix_ratings_appeal_id", "ratings", ["appeal_id"])
    op.create_index("ix_ratings_agency_created", "ratings", ["agency_id", "created_at"])
    op.create_index("ix_ratings_created_score", "ratings", ["created_at", "score"])
    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("asked_at", sa.DateTime(), nullable=False),
        sa.Column("answer", sa.String(16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appeal_id"),
    )
    op.create_index("ix_followups_answer_at", "followups", ["answer", "answered_at"])

    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0, tzinfo=None)
    reminders = sa.table(
        "reminders",
        sa.column("appeal_id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("seq", sa.Integer()),
        sa.column("due_at", sa.DateTime()),
    )
    answered = op.get_bind().execute(sa.text("SELECT id, answered_at FROM appeals WHERE status = 'answered'")).all()
    # Answered longer ago than the re-opening window (30 days by default): no reminder "answered a few days ago",
    # only the closing (whose message still offers to rate).
    window = today - timedelta(days=30)
    rows = []
    for appeal_id, answered_at in answered:
        recent = answered_at is not None and (
            answered_at if isinstance(answered_at, datetime) else datetime.fromisoformat(str(answered_at))
        ) >= window
        plans = (("rate_reminder", 3), ("rate_close", 7)) if recent else (("rate_close", 7),)
        rows += [
            {"appeal_id": appeal_id, "kind": kind, "seq": 0, "due_at": today + timedelta(days=days)}
            for kind, days in plans
        ]
    if rows:
        op.bulk_insert(reminders, rows)


# What this revision's code writes that the code before it cannot read.
NEW_TEMPLATES = (
    "rate_request", "rate_reminder", "closed_unrated", "reopened", "followup_question",
    "digest_official_rated", "digest_agency_rating", "digest_coordinator_rated", "low_ratings",
)


def downgrade() -> None:
    op.execute("DELETE FROM reminders WHERE kind IN ('rate_reminder', 'rate_close', 'followup')")
    templates = ", ".join(f"'{name}'" for name in NEW_TEMPLATES)
    op.execute(f"DELETE FROM outbox WHERE status = 'pending' AND template IN ({templates})")
    op.execute("UPDATE status_history SET event = 'closed' WHERE event = 'closed_unrated'")
    # A resident's words sending an appeal back (a note kind of this revision): its photos stay with the appeal.
    op.execute(
        "UPDATE attachments SET message_id = NULL WHERE message_id IN "
        "(SELECT id FROM appeal_messages WHERE kind = 'reopen')"
    )
    op.execute("DELETE FROM appeal_messages WHERE kind = 'reopen'")
    op.drop_index("ix_followups_answer_at", table_name="followups")
    op.drop_table("followups")
    op.drop_index("ix_ratings_created_score", table_name="ratings")
    op.drop_index("ix_ratings_agency_created", table_name="ratings")
    op.drop_index("ix_ratings_appeal_id", table_name="ratings")
    op.drop_table("ratings")
    op.drop_column("appeals", "reopen_count")
    op.drop_column("appeals", "answered_at")
    op.drop_column("categories", "physical")
