"""fsm_state.key in byte order on PostgreSQL (the "C" collation)

The SQL FSM storage reads a person's rows as one key range, [key + ":", key + ";"). Under a linguistic collation
(a database created under en_US.UTF-8, or ICU), ":" and ";" are ignorable punctuation and the range misses the
dialogs' rows: the dialogs lose their state on every update. Nothing changes on SQLite, which compares bytes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("fsm_state", "key", type_=sa.String(255, collation="C"), existing_type=sa.String(255), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("fsm_state", "key", type_=sa.String(255), existing_type=sa.String(255, collation="C"), existing_nullable=False)
