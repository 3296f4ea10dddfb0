"""File import jobs, and the time range of each biometric batch (for cache invalidation).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 21:15:45.260585
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_accepted", sa.BigInteger(), nullable=False),
        sa.Column("rows_duplicate", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("seconds_running", sa.Double(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("failure", sa.String(length=512), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_import_jobs_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_import_jobs_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_import_jobs_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_import_jobs_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_import_jobs_status"), ["status"], unique=False)

    with op.batch_alter_table("biometric_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_ts", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_ts", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_biometric_batches_patient_last_ts", ["patient_id", "last_ts"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("biometric_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_biometric_batches_patient_last_ts")
        batch_op.drop_column("last_ts")
        batch_op.drop_column("first_ts")

    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_jobs_status"))
        batch_op.drop_index(batch_op.f("ix_import_jobs_patient_id"))
        batch_op.drop_index(batch_op.f("ix_import_jobs_organization_id"))

    op.drop_table("import_jobs")
