"""broadcasts and subscriptions: broadcasts, residents' news choices, the outbox's lanes, named leases

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_key", sa.String(36), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("media_kind", sa.String(16), nullable=True),
        sa.Column("media_file_id", sa.String(255), nullable=True),
        sa.Column("button_text", sa.String(64), nullable=True),
        sa.Column("button_url", sa.String(512), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("reported_at", sa.DateTime(), nullable=True),
        sa.Column("claim", sa.String(36), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("cursor", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("recipients", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("flood_waits", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("progress_message_id", sa.BigInteger(), nullable=True),
        sa.Column("progress_at", sa.DateTime(), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("draft_key"),
    )
    op.create_index("ix_broadcasts_status_start", "broadcasts", ["status", "start_at"])
    op.create_table(
        "news_prefs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("districts_chosen", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "news_blocks_off",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("block_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["block_id"], ["blocks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "block_id"),
    )
    op.create_table(
        "news_districts",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["district_id"], ["districts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "district_id"),
    )
    op.create_index("ix_news_districts_district_id", "news_districts", ["district_id"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    # Plain ADD COLUMN (no batch copy of the outbox, which may be large and is written to while the bot runs).
    op.add_column("outbox", sa.Column("lane", sa.Integer(), nullable=False, server_default="0"))
    # No foreign key: SQLite cannot add one to an existing table without copying it (broadcasts are never deleted).
    op.add_column("outbox", sa.Column("broadcast_id", sa.Integer(), nullable=True))
    op.add_column("outbox", sa.Column("lost_leases", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["status", "lane", "next_attempt_at"])
    op.create_index("ix_outbox_broadcast", "outbox", ["broadcast_id", "status", "next_attempt_at"])
    op.create_index(
        "ix_outbox_lost", "outbox", ["broadcast_id"],
        sqlite_where=sa.text("lost_leases > 0"), postgresql_where=sa.text("lost_leases > 0"),
    )
    # Poll invitations still queued join the bulk lane, as new ones do (the sent ones are history).
    op.execute("UPDATE outbox SET lane = 1 WHERE template = 'poll' AND status = 'pending'")


def downgrade() -> None:
    # Items of broadcasts mean nothing to older code: the ones still pending would be rendered as unknown notices.
    op.execute("DELETE FROM outbox WHERE broadcast_id IS NOT NULL OR template IN ('broadcast', 'broadcast_report')")
    op.drop_index("ix_outbox_lost", table_name="outbox")
    op.drop_index("ix_outbox_broadcast", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_column("outbox", "lost_leases")
    op.drop_column("outbox", "broadcast_id")
    op.drop_column("outbox", "lane")
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.drop_table("leases")
    op.drop_index("ix_news_districts_district_id", table_name="news_districts")
    op.drop_table("news_districts")
    op.drop_table("news_blocks_off")
    op.drop_table("news_prefs")
    op.drop_index("ix_broadcasts_status_start", table_name="broadcasts")
    op.drop_table("broadcasts")
