"""Demo data for `clarity seed-demo`: accounts of every role and two SYNTHETIC patients.

Everything goes through the same services as the API (encryption, audit, scoring), so the
demo shows the real behaviour. The patients are invented and labelled as such; the
command refuses to run in production.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from clarity.assessments import service as assessments
from clarity.assessments.schemas import AssessmentSubmit
from clarity.audit.service import AuditActor, bind_actor
from clarity.auth import profiles
from clarity.auth.dependencies import Principal
from clarity.auth.models import Role, User
from clarity.database import scope_session
from clarity.errors import AppError
from clarity.organizations.service import get_or_create
from clarity.patients import service as patients
from clarity.patients.access import PatientContext
from clarity.patients.schemas import PatientCreate, SexAtBirth
from clarity.runtime import Runtime
from clarity.users.service import create_user

DEMO_ORGANIZATION = "Clarity demo clinic"
DEMO_USERS: list[tuple[str, str, Role]] = [
    ("admin@demo.clarity.example", "Harbor-Lantern-42", Role.admin),
    ("clinician@demo.clarity.example", "Willow-Compass-42", Role.clinician),
    ("researcher@demo.clarity.example", "Granite-Meadow-42", Role.researcher),
    ("patient@demo.clarity.example", "Saffron-Orbit-42", Role.patient),
]
DEMO_PATIENTS = [
    PatientCreate(
        mrn="DEMO-0001",
        given_name="Synthetic",
        family_name="Patient One",
        birth_date=date(1988, 4, 12),
        sex_at_birth=SexAtBirth.female,
        timezone="Europe/Oslo",
        flags=["SYNTHETIC DEMO RECORD"],
    ),
    PatientCreate(
        mrn="DEMO-0002",
        given_name="Synthetic",
        family_name="Patient Two",
        birth_date=date(1975, 9, 30),
        sex_at_birth=SexAtBirth.male,
        timezone="America/New_York",
        flags=["SYNTHETIC DEMO RECORD"],
    ),
]
# Weekly PHQ-9 totals of the first demo patient, improving: (weeks ago, item answers).
PHQ9_COURSE = [
    (6, [2, 2, 3, 2, 2, 2, 1, 1, 0]),
    (3, [2, 1, 2, 2, 1, 1, 1, 1, 0]),
    (0, [1, 1, 1, 1, 1, 0, 0, 1, 0]),
]


async def seed_users(runtime: Runtime) -> list[tuple[str, str, Role, bool]]:
    created: list[tuple[str, str, Role, bool]] = []
    for email, password, role in DEMO_USERS:
        async with runtime.db.session(system=True) as session:
            org = await get_or_create(session, DEMO_ORGANIZATION)
            scope_session(session, org.id)
            bind_actor(session, AuditActor(organization_id=org.id, request_id="seed-demo"))
            try:
                await create_user(runtime, session, email=email, password=password, role=role)
                await session.commit()
                created.append((email, password, role, True))
            except AppError as exc:
                if exc.code != "email_taken":
                    raise
                created.append((email, password, role, False))
    return created


async def seed_patients(runtime: Runtime) -> int:
    """Create the synthetic patients once (skipped when their MRNs exist)."""
    async with runtime.db.session(system=True) as session:
        users = {
            u.email: u
            for u in (
                await session.scalars(select(User).where(User.email.like("%@demo.clarity.example")))
            ).all()
        }
    clinician = users["clinician@demo.clarity.example"]
    principal = Principal(
        user_id=clinician.id,
        organization_id=clinician.organization_id,
        role=Role.clinician,
        session_id=uuid.uuid4(),
        token_id=uuid.uuid4(),
    )
    made = 0
    for body in DEMO_PATIENTS:
        async with runtime.db.session(principal.organization_id) as session:
            bind_actor(
                session,
                AuditActor(
                    clinician.id, Role.clinician, principal.organization_id, None, "seed-demo"
                ),
            )
            if await patients.find_by_mrn(runtime, session, principal.organization_id, body.mrn):
                continue
            patient = await patients.create_patient(runtime, session, principal, body)
            made += 1
            ctx = PatientContext(principal, patient, via_break_glass=False)
            if body.mrn == "DEMO-0001":
                await patients.link_account(
                    runtime, session, ctx, users["patient@demo.clarity.example"].id
                )
                for weeks_ago, answers in PHQ9_COURSE:
                    await assessments.submit(
                        runtime.outbox,
                        session,
                        ctx,
                        AssessmentSubmit(
                            instrument_id="phq9",
                            answers={f"phq9_{i}": v for i, v in enumerate(answers, start=1)},
                            administered_at=datetime.now(UTC) - timedelta(weeks=weeks_ago),
                        ),
                    )
    await profiles.touch(runtime.cache, users["patient@demo.clarity.example"].id)
    return made
