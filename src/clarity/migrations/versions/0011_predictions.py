"""Depression predictions: each served prediction with its model version, input and output.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "depression_predictions",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("input_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("interval_low", sa.Float(), nullable=False),
        sa.Column("interval_high", sa.Float(), nullable=False),
        sa.Column("interval_level", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["ml_model_versions.id"],
            name=op.f("fk_depression_predictions_model_version_id_ml_model_versions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_depression_predictions_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_depression_predictions_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_depression_predictions")),
    )
    with op.batch_alter_table("depression_predictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_depression_predictions_model_version_id"),
            ["model_version_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_depression_predictions_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_depression_predictions_patient_created",
            ["patient_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("depression_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_depression_predictions_patient_created")
        batch_op.drop_index(batch_op.f("ix_depression_predictions_organization_id"))
        batch_op.drop_index(batch_op.f("ix_depression_predictions_model_version_id"))
    op.drop_table("depression_predictions")
