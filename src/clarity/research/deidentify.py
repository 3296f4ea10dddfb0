"""De-identification for research exports (pure: no database, no web).

Follows the HIPAA Safe Harbor list (45 CFR 164.514(b)(2)): no names, geography below the
state, contact details, record numbers or other direct identifiers leave; ages over 89
are grouped as "90+". Dates are moved by a per-patient offset so that intervals within a
patient are preserved while calendar dates are not disclosed; the offset and the
pseudonym are derived with a keyed hash, so they are stable across exports (a patient
keeps the same pseudonym and shift) but cannot be recomputed without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date, datetime, timedelta

MAX_SHIFT_DAYS = 365
AGE_CEILING = 89


def _digest(key: bytes, label: str, patient_id: uuid.UUID) -> bytes:
    return hmac.new(key, f"{label}:{patient_id}".encode(), hashlib.sha256).digest()


def pseudonym(key: bytes, patient_id: uuid.UUID) -> str:
    """A stable research id that reveals nothing about the record id."""
    return "R-" + _digest(key, "pseudonym", patient_id)[:10].hex()


def date_shift(key: bytes, patient_id: uuid.UUID) -> timedelta:
    """A per-patient shift between -365 and +365 days (never zero)."""
    value = int.from_bytes(_digest(key, "shift", patient_id)[:4], "big")
    days = value % (2 * MAX_SHIFT_DAYS) - MAX_SHIFT_DAYS
    return timedelta(days=days if days != 0 else MAX_SHIFT_DAYS)


def shift(value: date | datetime | None, offset: timedelta) -> str | None:
    """The shifted date (datetimes are reduced to their shifted date)."""
    if value is None:
        return None
    day = value.date() if isinstance(value, datetime) else value
    return (day + offset).isoformat()


def age_group(birth_date: date, on: date) -> str:
    """Age in whole years at ``on``; ages over 89 are reported only as "90+"."""
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    return "90+" if years > AGE_CEILING else str(years)
