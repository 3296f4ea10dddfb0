"""Who may reach which patient (pure policy, used by every patient-scoped route).

- admin: any patient of their organization;
- clinician: only patients whose care team includes them (or an active break-the-glass
  grant, which the caller passes as part of ``care_team``);
- patient: only their own record;
- researcher: never identified data; de-identified views only.

A refusal is answered as 404 by the web layer so that existence does not leak.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from clarity.auth.models import Role


def may_reach_patient(
    *,
    role: str,
    user_id: uuid.UUID,
    own_patient_id: uuid.UUID | None,
    patient_id: uuid.UUID,
    care_team: Collection[uuid.UUID],
    identified: bool = True,
) -> bool:
    if role == Role.admin:
        return True
    if role == Role.clinician:
        return user_id in care_team
    if role == Role.patient:
        return own_patient_id is not None and own_patient_id == patient_id
    if role == Role.researcher:
        return not identified
    return False
