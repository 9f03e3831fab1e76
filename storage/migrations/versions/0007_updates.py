"""handled updates and the inbox of long polling: an update is never lost nor handled twice

Telegram delivers an update again when the bot did not confirm it (long polling: the next offset; webhook: the
200 answer), e.g. after a crash. A row here is written once the update's handlers have run; a later delivery of
the same update_id is skipped. Rows are pruned after a few days (Telegram keeps an update at most 24 hours).

update_inbox: in long polling, a fetched update is written here before the getUpdates offset that confirms it
is sent, and deleted (with its handled_updates row written) once handled; a restart handles what is left.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handled_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )
    op.create_index("ix_handled_updates_handled_at", "handled_updates", ["handled_at"])
    op.create_table(
        "update_inbox",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )


def downgrade() -> None:
    op.drop_table("update_inbox")
    op.drop_index("ix_handled_updates_handled_at", table_name="handled_updates")
    op.drop_table("handled_updates")
