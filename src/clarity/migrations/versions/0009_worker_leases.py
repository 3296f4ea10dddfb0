"""Event worker heartbeats and partition leases (`clarity worker`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 21:58:24.588240
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_partition_leases",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_event_partition_leases")),
    )
    op.create_table(
        "event_workers",
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("instance", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_event_workers")),
    )


def downgrade() -> None:
    op.drop_table("event_workers")
    op.drop_table("event_partition_leases")
