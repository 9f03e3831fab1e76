"""the access log of staff views (152-ФЗ): who was shown which appeal's card, files, place or resident's contact,
and who read the log; listed by appeal and by person, newest first

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("subject_user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"]),
        sa.ForeignKeyConstraint(["subject_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_log_appeal", "access_log", ["appeal_id", "at"])
    op.create_index("ix_access_log_subject", "access_log", ["subject_user_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_access_log_subject", table_name="access_log")
    op.drop_index("ix_access_log_appeal", table_name="access_log")
    op.drop_table("access_log")
