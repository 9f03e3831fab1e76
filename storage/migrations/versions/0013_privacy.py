"""personal data: consent withdrawals, the appeal's closing and anonymization times, the retention indexes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# bot.domain.CLOSED, copied: a migration must not change when the code does.
CLOSED = ("closed", "rejected")

APPEALS = sa.table(
    "appeals",
    sa.column("id", sa.Integer()),
    sa.column("status", sa.String()),
    sa.column("updated_at", sa.DateTime()),
    sa.column("closed_at", sa.DateTime()),
)
HISTORY = sa.table(
    "status_history",
    sa.column("appeal_id", sa.Integer()),
    sa.column("to_status", sa.String()),
    sa.column("at", sa.DateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("withdrawn", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("appeals", sa.Column("closed_at", sa.DateTime(), nullable=True))
    op.add_column("appeals", sa.Column("anonymized_at", sa.DateTime(), nullable=True))
    op.add_column("appeals", sa.Column("erasure_requested_at", sa.DateTime(), nullable=True))
    # The closing time of the appeals closed already: their latest move into the status they are in.
    entered = (
        sa.select(sa.func.max(HISTORY.c.at))
        .where(HISTORY.c.appeal_id == APPEALS.c.id, HISTORY.c.to_status == APPEALS.c.status)
        .scalar_subquery()
    )
    op.execute(
        APPEALS.update()
        .where(APPEALS.c.status.in_(CLOSED))
        .values(closed_at=sa.func.coalesce(entered, APPEALS.c.updated_at))
    )
    op.create_index(
        "ix_appeals_retention",
        "appeals",
        ["closed_at", "status"],
        sqlite_where=sa.text("anonymized_at IS NULL"),
        postgresql_where=sa.text("anonymized_at IS NULL"),
    )
    op.create_index(
        "ix_appeals_erasure",
        "appeals",
        ["erasure_requested_at"],
        sqlite_where=sa.text("erasure_requested_at IS NOT NULL AND anonymized_at IS NULL"),
        postgresql_where=sa.text("erasure_requested_at IS NOT NULL AND anonymized_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_appeals_erasure", table_name="appeals")
    op.drop_index("ix_appeals_retention", table_name="appeals")
    op.drop_column("appeals", "erasure_requested_at")
    op.drop_column("appeals", "anonymized_at")
    op.drop_column("appeals", "closed_at")
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("withdrawn")
