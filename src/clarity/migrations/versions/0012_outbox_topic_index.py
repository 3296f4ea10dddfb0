"""Outbox: index by topic then seq, for the processes that follow alert events.

Every API process polls the outbox for alert events above its cursor (and re-reads the
last 30 s for late commits) every ``CLARITY_ALERT_POLL_SECONDS``; without this index each
poll scans every event of that span, biometric batches included.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 03:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_events_topic_seq", ["topic", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_topic_seq")
