"""Model registry: versioned model artifacts with metadata, model card and promotion.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ml_model_versions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("promoted_by", sa.String(length=200), nullable=True),
        sa.Column("code_version", sa.String(length=200), nullable=False),
        sa.Column("data_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("card_markdown", sa.Text(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("artifact_bytes", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "status IN ('registered', 'promoted', 'retired')",
            name=op.f("ck_ml_model_versions_status_known"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_ml_model_versions_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ml_model_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_ml_model_versions_name")),
    )
    with op.batch_alter_table("ml_model_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ml_model_versions_one_promoted",
            ["name"],
            unique=True,
            postgresql_where=sa.text("status = 'promoted'"),
            sqlite_where=sa.text("status = 'promoted'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("ml_model_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_ml_model_versions_one_promoted")
    op.drop_table("ml_model_versions")
