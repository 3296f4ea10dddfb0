"""Dead letters: events a worker handler kept failing on, set aside until retried.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("handler", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_events")),
        sa.UniqueConstraint("handler", "event_id", name=op.f("uq_dead_events_handler")),
    )


def downgrade() -> None:
    op.drop_table("dead_events")
