"""What a firing carries: the observations and numbers that made the condition true.

Evidence is for the clinicians who receive the alert (inside the authenticated API), so it
holds values and times; it must never be written to logs. ``summary`` is one line built
from the rule's own parameters and the decisive values, e.g. "PHQ-9 item phq9_9 answered
2 (threshold >= 1)".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Fact = float | int | str


@dataclass(frozen=True)
class Observation:
    """One reading, answer or daily value the decision used."""

    label: str
    at: dt.datetime
    value: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "at": self.at.isoformat(), "value": self.value}


@dataclass(frozen=True)
class Evidence:
    kind: str
    summary: str
    facts: Mapping[str, Fact] = field(default_factory=dict)
    observations: tuple[Observation, ...] = ()
    parts: tuple[Evidence, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "facts": dict(self.facts),
            "observations": [o.as_dict() for o in self.observations],
            "parts": [p.as_dict() for p in self.parts],
        }


@dataclass(frozen=True)
class Firing:
    """A rule that fired (or, in a dry run, would have fired) for one patient.

    ``episode_start`` is when the condition became true; ``fired_at`` is later when a
    cooldown held the firing back. One episode fires at most once.
    """

    rule_id: str
    rule_version: int
    rule_name: str
    severity: str
    patient_id: uuid.UUID
    organization_id: uuid.UUID | None
    dedup_key: str
    fired_at: dt.datetime
    episode_start: dt.datetime
    summary: str
    evidence: Evidence

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "rule_name": self.rule_name,
            "severity": self.severity,
            "patient_id": str(self.patient_id),
            "organization_id": str(self.organization_id) if self.organization_id else None,
            "dedup_key": self.dedup_key,
            "fired_at": self.fired_at.isoformat(),
            "episode_start": self.episode_start.isoformat(),
            "summary": self.summary,
            "evidence": self.evidence.as_dict(),
        }
