"""assessments, diagnoses, medications, notes, consent

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:27:10.747533
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessment_responses",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("instrument_id", sa.String(length=32), nullable=False),
        sa.Column("instrument_version", sa.String(length=32), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("derived_score", sa.Float(), nullable=True),
        sa.Column("severity", sa.String(length=64), nullable=True),
        sa.Column("safety_signal", sa.Boolean(), nullable=False),
        sa.Column("administered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_assessment_responses_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_assessment_responses_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_responses")),
    )
    with op.batch_alter_table("assessment_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assessment_responses_administered_at"), ["administered_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assessment_responses_instrument_id"), ["instrument_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assessment_responses_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assessment_responses_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "consent_records",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_consent_records_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_consent_records_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records")),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_records_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_records_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_records_recorded_at"), ["recorded_at"], unique=False
        )

    op.create_table(
        "diagnoses",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("onset", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_diagnoses_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_diagnoses_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnoses")),
    )
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_diagnoses_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_diagnoses_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "medication_statements",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("drug", sa.String(length=100), nullable=False),
        sa.Column("drug_class", sa.String(length=64), nullable=False),
        sa.Column("rxcui", sa.String(length=16), nullable=True),
        sa.Column("dose", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("stop", sa.Date(), nullable=True),
        sa.Column("prescriber", sa.String(length=200), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_medication_statements_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_medication_statements_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_statements")),
    )
    with op.batch_alter_table("medication_statements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_medication_statements_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_medication_statements_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "notes",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_notes_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_notes_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notes_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_notes_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "note_versions",
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("amendment_reason", sa.Text(), nullable=True),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["notes.id"],
            name=op.f("fk_note_versions_note_id_notes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_note_versions_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("note_id", "version", name=op.f("pk_note_versions")),
    )
    with op.batch_alter_table("note_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_note_versions_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("note_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_note_versions_organization_id"))

    op.drop_table("note_versions")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notes_patient_id"))
        batch_op.drop_index(batch_op.f("ix_notes_organization_id"))

    op.drop_table("notes")
    with op.batch_alter_table("medication_statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_medication_statements_patient_id"))
        batch_op.drop_index(batch_op.f("ix_medication_statements_organization_id"))

    op.drop_table("medication_statements")
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diagnoses_patient_id"))
        batch_op.drop_index(batch_op.f("ix_diagnoses_organization_id"))

    op.drop_table("diagnoses")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_records_recorded_at"))
        batch_op.drop_index(batch_op.f("ix_consent_records_patient_id"))
        batch_op.drop_index(batch_op.f("ix_consent_records_organization_id"))

    op.drop_table("consent_records")
    with op.batch_alter_table("assessment_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_responses_patient_id"))
        batch_op.drop_index(batch_op.f("ix_assessment_responses_organization_id"))
        batch_op.drop_index(batch_op.f("ix_assessment_responses_instrument_id"))
        batch_op.drop_index(batch_op.f("ix_assessment_responses_administered_at"))

    op.drop_table("assessment_responses")
