"""statistics: the answer and first-action figures kept on the appeal (backfilled from the history), covering
indexes per metric event, block heads' block, presets and stored reports

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

APPEALS = sa.table(
    "appeals",
    sa.column("id", sa.Integer()),
    sa.column("user_id", sa.Integer()),
    sa.column("created_at", sa.DateTime()),
    sa.column("answered_at", sa.DateTime()),
    sa.column("deadline_at", sa.DateTime()),
    sa.column("paused_seconds", sa.Integer()),
    sa.column("reopen_count", sa.Integer()),
    sa.column("first_action_at", sa.DateTime()),
    sa.column("first_action_seconds", sa.Integer()),
    sa.column("answer_seconds", sa.Integer()),
    sa.column("answered_on_time", sa.Boolean()),
)
HISTORY = sa.table(
    "status_history",
    sa.column("appeal_id", sa.Integer()),
    sa.column("to_status", sa.String()),
    sa.column("actor_id", sa.Integer()),
    sa.column("event", sa.String()),
    sa.column("at", sa.DateTime()),
)


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch copy of the appeals table: rows reference it).
    op.add_column("appeals", sa.Column("first_action_at", sa.DateTime(), nullable=True))
    op.add_column("appeals", sa.Column("first_action_seconds", sa.Integer(), nullable=True))
    op.add_column("appeals", sa.Column("answer_seconds", sa.Integer(), nullable=True))
    op.add_column("appeals", sa.Column("answered_on_time", sa.Boolean(), nullable=True))
    # SQLite adds no foreign key to an existing table: these two are small and referenced by no other table, so a
    # batch copy is safe for them.
    with op.batch_alter_table("user_roles") as batch:
        batch.add_column(sa.Column("block_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_user_roles_block", "blocks", ["block_id"], ["id"])
    with op.batch_alter_table("invites") as batch:
        batch.add_column(sa.Column("block_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_invites_block", "blocks", ["block_id"], ["id"])
    _backfill()
    op.create_index(
        "ix_appeals_stats_created",
        "appeals",
        ["created_at", "category_id", "district_id", "agency_id", "official_id", "kind", "status", "reject_reason"],
    )
    op.create_index(
        "ix_appeals_stats_answered",
        "appeals",
        [
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
        ],
    )
    op.create_index(
        "ix_appeals_stats_first_action",
        "appeals",
        [
            "first_action_at",
            "category_id",
            "district_id",
            "agency_id",
            "official_id",
            "kind",
            "status",
            "first_action_seconds",
        ],
    )
    op.create_index("ix_ratings_stats", "ratings", ["created_at", "appeal_id", "agency_id", "official_id", "score"])
    op.create_index("ix_ratings_updated_score", "ratings", ["updated_at", "score"])
    op.create_index("ix_followups_stats", "followups", ["answered_at", "appeal_id", "answer"])
    op.create_index("ix_appeal_messages_stats", "appeal_messages", ["kind", "created_at", "status", "appeal_id"])
    op.create_table(
        "stat_presets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.String(16), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name", name="uq_stat_preset_name"),
    )
    op.create_index("ix_stat_presets_owner_id", "stat_presets", ["owner_id"])
    op.create_index("ix_stat_presets_schedule", "stat_presets", ["schedule"])
    op.create_table(
        "stat_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("preset_id", sa.Integer(), nullable=True),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("chart", sa.LargeBinary(), nullable=True),
        sa.Column("sheet", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["preset_id"], ["stat_presets.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stat_reports_created_at", "stat_reports", ["created_at"])


def _backfill() -> None:
    """The figures the state machine keeps from now on, for the appeals of before, from their status history:
    the first move by staff (an entry after filing whose actor is not the resident), the latest answer's working
    time (from filing, or from the latest re-opening before it, less the pauses recorded on the appeal) and
    whether it came by the deadline on the appeal. Written in batches by id, so a big table is never one statement
    held in memory."""
    bind = op.get_bind()
    first = (
        sa.select(sa.func.min(HISTORY.c.at))
        .where(
            HISTORY.c.appeal_id == APPEALS.c.id,
            HISTORY.c.event != "filed",
            HISTORY.c.actor_id.is_not(None),
            HISTORY.c.actor_id != APPEALS.c.user_id,
        )
        .scalar_subquery()
    )
    bind.execute(sa.update(APPEALS).values(first_action_at=first))
    bind.execute(
        sa.update(APPEALS)
        .where(APPEALS.c.answered_at.is_not(None))
        .values(
            answered_on_time=sa.or_(APPEALS.c.deadline_at.is_(None), APPEALS.c.answered_at <= APPEALS.c.deadline_at)
        )
    )
    reopened = (
        sa.select(sa.func.max(HISTORY.c.at))
        .where(
            HISTORY.c.appeal_id == APPEALS.c.id,
            HISTORY.c.to_status == "reopened",
            HISTORY.c.at <= APPEALS.c.answered_at,
        )
        .scalar_subquery()
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(
                APPEALS.c.id,
                APPEALS.c.created_at,
                APPEALS.c.first_action_at,
                APPEALS.c.answered_at,
                APPEALS.c.paused_seconds,
                sa.case((APPEALS.c.reopen_count > 0, reopened), else_=None),
            )
            .where(
                APPEALS.c.id > last, sa.or_(APPEALS.c.first_action_at.is_not(None), APPEALS.c.answered_at.is_not(None))
            )
            .order_by(APPEALS.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        values = []
        for appeal_id, created, first_at, answered, paused, reopened_at in rows:
            answer = None
            if answered is not None:
                answer = max(0, int((answered - (reopened_at or created)).total_seconds()) - int(paused or 0))
            values.append(
                {
                    "key": appeal_id,
                    "first": max(0, int((first_at - created).total_seconds())) if first_at is not None else None,
                    "answer": answer,
                }
            )
        bind.execute(
            sa.update(APPEALS)
            .where(APPEALS.c.id == sa.bindparam("key"))
            .values(first_action_seconds=sa.bindparam("first"), answer_seconds=sa.bindparam("answer")),
            values,
        )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_stat_reports_created_at", table_name="stat_reports")
    op.drop_table("stat_reports")
    op.drop_index("ix_stat_presets_schedule", table_name="stat_presets")
    op.drop_index("ix_stat_presets_owner_id", table_name="stat_presets")
    op.drop_table("stat_presets")
    op.drop_index("ix_appeal_messages_stats", table_name="appeal_messages")
    op.drop_index("ix_followups_stats", table_name="followups")
    op.drop_index("ix_ratings_updated_score", table_name="ratings")
    op.drop_index("ix_ratings_stats", table_name="ratings")
    op.drop_index("ix_appeals_stats_first_action", table_name="appeals")
    op.drop_index("ix_appeals_stats_answered", table_name="appeals")
    op.drop_index("ix_appeals_stats_created", table_name="appeals")
    # The roles this revision introduced cannot be held under the older code.
    op.execute("DELETE FROM user_roles WHERE role IN ('block_head', 'leadership')")
    op.execute("DELETE FROM invites WHERE role IN ('block_head', 'leadership')")
    with op.batch_alter_table("invites") as batch:
        batch.drop_constraint("fk_invites_block", type_="foreignkey")
        batch.drop_column("block_id")
    with op.batch_alter_table("user_roles") as batch:
        batch.drop_constraint("fk_user_roles_block", type_="foreignkey")
        batch.drop_column("block_id")
    op.drop_column("appeals", "answered_on_time")
    op.drop_column("appeals", "answer_seconds")
    op.drop_column("appeals", "first_action_seconds")
    op.drop_column("appeals", "first_action_at")
