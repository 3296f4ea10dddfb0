"""Imports every model module so that ``Base.metadata`` knows all tables (for Alembic)."""

from clarity.audit import models as audit_models
from clarity.auth import models as auth_models
from clarity.organizations import models as organization_models
from clarity.patients import models as patient_models

__all__ = ["audit_models", "auth_models", "organization_models", "patient_models"]
