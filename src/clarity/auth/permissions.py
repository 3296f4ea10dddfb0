"""Permissions per role (pure data). Deny by default: a role has only what is listed."""

from __future__ import annotations

from enum import StrEnum

from clarity.auth.models import Role


class Permission(StrEnum):
    # Any signed-in user, about their own account (profile, sessions, password, MFA).
    own_account = "account:own"
    users_read = "users:read"
    users_manage = "users:manage"
    audit_read = "audit:read"
    organization_read = "organization:read"
    # Patient data: the record, and the de-identified view researchers get.
    patients_read = "patients:read"
    patients_write = "patients:write"
    # Submitting an assessment: staff for any patient they reach, a patient for themself.
    assessments_submit = "assessments:submit"
    deidentified_read = "deidentified:read"
    care_team_manage = "care_team:manage"
    break_glass_use = "break_glass:use"
    break_glass_review = "break_glass:review"
    # Recording a consent decision: staff, and a patient about their own record.
    consent_record = "consent:record"
    # Uploading wearable data: staff for any patient they reach, a patient for themself.
    biometrics_write = "biometrics:write"
    # Clinical alerts of reachable patients: see them; acknowledge and resolve them.
    alerts_read = "alerts:read"
    alerts_manage = "alerts:manage"
    # Alert rules: read the clinic's rules and dry-run them; create, change, delete them.
    rules_read = "rules:read"
    rules_manage = "rules:manage"
    # Webhook receivers of the clinic's alerts: register, list, remove, see and retry deliveries.
    webhooks_manage = "webhooks:manage"
    # The model registry: versions, their metrics and model cards (no patient data).
    models_read = "models:read"
    # Stored model predictions of reachable patients: decision support for staff, not shown
    # to patients directly (a risk estimate needs a clinician to put it in context).
    predictions_read = "predictions:read"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(
        {
            Permission.own_account,
            Permission.users_read,
            Permission.users_manage,
            Permission.audit_read,
            Permission.organization_read,
            Permission.patients_read,
            Permission.patients_write,
            Permission.assessments_submit,
            Permission.deidentified_read,
            Permission.care_team_manage,
            Permission.break_glass_review,
            Permission.consent_record,
            Permission.biometrics_write,
            Permission.alerts_read,
            Permission.alerts_manage,
            Permission.rules_read,
            Permission.rules_manage,
            Permission.webhooks_manage,
            Permission.models_read,
            Permission.predictions_read,
        }
    ),
    Role.clinician: frozenset(
        {
            Permission.own_account,
            Permission.organization_read,
            Permission.patients_read,
            Permission.patients_write,
            Permission.assessments_submit,
            Permission.break_glass_use,
            Permission.consent_record,
            Permission.biometrics_write,
            Permission.alerts_read,
            Permission.alerts_manage,
            Permission.rules_read,
            Permission.models_read,
            Permission.predictions_read,
        }
    ),
    Role.researcher: frozenset(
        {
            Permission.own_account,
            Permission.organization_read,
            Permission.deidentified_read,
            Permission.models_read,
        }
    ),
    Role.patient: frozenset(
        {
            Permission.own_account,
            Permission.patients_read,
            Permission.assessments_submit,
            Permission.consent_record,
            Permission.biometrics_write,
        }
    ),
}


def role_has(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
