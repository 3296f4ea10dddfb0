"""Biometric samples and batches. On PostgreSQL samples are partitioned by month on ts.

Monthly partitions live in the ``biometric_partitions`` schema (so that they are not
mistaken for tables of the model), from PAST_MONTHS before the migration runs to
AHEAD_MONTHS after it; a default partition takes anything outside that range.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 19:15:04.566865
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITION_SCHEMA = "biometric_partitions"
PAST_MONTHS = 24
AHEAD_MONTHS = 24


def _month(year: int, month: int) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def _create_partitions() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTITION_SCHEMA}")
    op.execute(
        f"CREATE TABLE {PARTITION_SCHEMA}.biometric_samples_default "
        "PARTITION OF biometric_samples DEFAULT"
    )
    now = datetime.now(UTC)
    for offset in range(-PAST_MONTHS, AHEAD_MONTHS + 1):
        start = _month(now.year, now.month + offset)
        end = _month(now.year, now.month + offset + 1)
        op.execute(
            f"CREATE TABLE {PARTITION_SCHEMA}.biometric_samples_{start:%Y_%m} "
            f"PARTITION OF biometric_samples FOR VALUES FROM ('{start.isoformat()}') "
            f"TO ('{end.isoformat()}')"
        )


def upgrade() -> None:
    op.create_table(
        "biometric_batches",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("client_batch_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicate", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_biometric_batches_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_biometric_batches_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_biometric_batches")),
        sa.UniqueConstraint(
            "patient_id", "client_batch_id", name=op.f("uq_biometric_batches_patient_id")
        ),
    )
    with op.batch_alter_table("biometric_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_biometric_batches_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "biometric_samples",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_biometric_samples_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_biometric_samples_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "patient_id", "stream", "ts", "source", name=op.f("pk_biometric_samples")
        ),
        postgresql_partition_by="RANGE (ts)",
    )
    with op.batch_alter_table("biometric_samples", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_biometric_samples_organization_id"), ["organization_id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        _create_partitions()


def downgrade() -> None:
    with op.batch_alter_table("biometric_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_biometric_samples_organization_id"))

    op.drop_table("biometric_samples")  # its partitions go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {PARTITION_SCHEMA}")
    with op.batch_alter_table("biometric_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_biometric_batches_organization_id"))

    op.drop_table("biometric_batches")
