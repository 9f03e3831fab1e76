"""status history: what happened (event, params) and who reads it (visibility)

The entries written before this revision kept codes in `comment` ("unreadable", "duplicate:2026-000001",
"extension:20"): they become an event with structured params and no comment. A return for rework becomes a
staff-only entry (its comment was the coordinator's words to the agency). Downgrade puts the codes back.

The codes and statuses are spelled out here (not imported from bot.domain) so that this revision keeps meaning
what it meant when it was written.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = ("obscene", "unreadable", "no_address", "spam", "repeated", "out_of_competence")
# (from, to) → event, as bot.domain.EVENT_OF_MOVE had it at this revision.
MOVES = {
    ("moderation", "assigned"): "routed",
    ("moderation", "rejected"): "rejected",
    ("moderation", "closed"): "closed",
    ("reopened", "assigned"): "routed",
    ("reopened", "rejected"): "rejected",
    ("reopened", "closed"): "closed",
    ("assigned", "in_progress"): "taken",
    ("assigned", "clarification"): "clarification_requested",
    ("assigned", "assigned"): "redirected",
    ("in_progress", "clarification"): "clarification_requested",
    ("in_progress", "answer_review"): "answer_submitted",
    ("in_progress", "assigned"): "redirected",
    ("clarification", "in_progress"): "clarified",
    ("answer_review", "answered"): "answered",
    ("answer_review", "in_progress"): "answer_returned",
    ("answered", "closed"): "closed",
    ("answered", "reopened"): "reopened",
    ("rejected", "reopened"): "reopened",
    ("closed", "reopened"): "reopened",
}
# A row whose move is not above (none should exist) is named after the status it reached.
BY_STATUS = {
    "moderation": "filed",
    "assigned": "routed",
    "in_progress": "taken",
    "clarification": "clarification_requested",
    "answer_review": "answer_submitted",
    "answered": "answered",
    "rejected": "rejected",
    "closed": "closed",
    "reopened": "reopened",
}

history = sa.table(
    "status_history",
    sa.column("id", sa.Integer()),
    sa.column("from_status", sa.String()),
    sa.column("to_status", sa.String()),
    sa.column("comment", sa.Text()),
    sa.column("event", sa.String()),
    sa.column("visibility", sa.String()),
    sa.column("params", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table('status_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('visibility', sa.String(length=16), server_default='resident', nullable=False))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))

    bind = op.get_bind()
    h = history.c
    bind.execute(sa.update(history).where(h.from_status.is_(None)).values(event="filed"))
    for (source, target), event in MOVES.items():
        bind.execute(
            sa.update(history)
            .where(h.event.is_(None), h.from_status == source, h.to_status == target)
            .values(event=event)
        )
    for status, event in BY_STATUS.items():
        bind.execute(sa.update(history).where(h.event.is_(None), h.to_status == status).values(event=event))
    bind.execute(sa.update(history).where(h.event == "answer_returned").values(visibility="staff"))

    # The codes kept in comments become params; the rows are few (rejections, duplicates, extensions).
    coded = sa.select(h.id, h.from_status, h.to_status, h.comment).where(
        h.comment.is_not(None), h.to_status.in_(["rejected", "closed"]) | (h.from_status == h.to_status)
    )
    for row_id, source, target, comment in bind.execute(coded).all():
        values: dict[str, object] | None = None
        if target == "rejected" and comment in REASONS:
            values = {"params": {"reason": comment}}
        elif target == "closed" and comment.startswith("duplicate:"):
            values = {"event": "duplicate", "params": {"original": comment.removeprefix("duplicate:")}}
        elif source == target and comment.startswith("extension:") and comment.removeprefix("extension:").isdigit():
            values = {"event": "extended", "params": {"days": int(comment.removeprefix("extension:"))}}
        if values is not None:
            bind.execute(sa.update(history).where(h.id == row_id).values(comment=None, **values))
    bind.execute(sa.update(history).where(h.params.is_(None)).values(params={}))

    with op.batch_alter_table('status_history', schema=None) as batch_op:
        batch_op.alter_column('event', existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column('params', existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    bind = op.get_bind()
    h = history.c
    coded = sa.select(h.id, h.event, h.params).where(h.event.in_(["rejected", "duplicate", "extended"]))
    for row_id, event, params in bind.execute(coded).all():
        params = params or {}
        comment = None
        if event == "rejected" and params.get("reason"):
            comment = params["reason"]
        elif event == "duplicate" and params.get("original"):
            comment = f"duplicate:{params['original']}"
        elif event == "extended" and params.get("days") is not None:
            comment = f"extension:{params['days']}"
        if comment is not None:
            bind.execute(sa.update(history).where(h.id == row_id).values(comment=comment))

    with op.batch_alter_table('status_history', schema=None) as batch_op:
        batch_op.drop_column('params')
        batch_op.drop_column('visibility')
        batch_op.drop_column('event')
