"""Imports every model module so that ``Base.metadata`` knows all tables (for Alembic)."""

from clarity.alerts import models as alert_models
from clarity.assessments import models as assessment_models
from clarity.audit import models as audit_models
from clarity.auth import models as auth_models
from clarity.biometrics import models as biometric_models
from clarity.clinical import models as clinical_models
from clarity.consent import models as consent_models
from clarity.imports import models as import_models
from clarity.ml.registry import models as ml_registry_models
from clarity.notes import models as note_models
from clarity.organizations import models as organization_models
from clarity.outbox import models as outbox_models
from clarity.patients import models as patient_models
from clarity.predictions import models as prediction_models
from clarity.worker import models as worker_models

__all__ = [
    "alert_models",
    "assessment_models",
    "audit_models",
    "auth_models",
    "biometric_models",
    "clinical_models",
    "consent_models",
    "import_models",
    "ml_registry_models",
    "note_models",
    "organization_models",
    "outbox_models",
    "patient_models",
    "prediction_models",
    "worker_models",
]
