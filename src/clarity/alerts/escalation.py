"""Escalation of alerts left unacknowledged: the policy and the level due (pure).

The policy gives, per severity, how long an open alert may wait for acknowledgement; each
further such period raises its escalation level by one, up to :data:`MAX_LEVEL` (the
receiver of ``alert.escalated`` decides whom each level pages). Severities without a
period never escalate. Time runs from when the alert was raised in Clarity
(``created_at``), not from when its episode happened: an alert backfilled from old data
must not arrive already escalated.

Written as ``critical=15m,high=1h`` (durations as in rules: ``clarity.rules.durations``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from clarity.rules.durations import check_duration, duration_seconds
from clarity.rules.schema import SEVERITY_RANK

MAX_LEVEL: Final = 3
DEFAULT_POLICY: Final = "critical=15m,high=1h"


@dataclass(frozen=True)
class EscalationPolicy:
    after: dict[str, dt.timedelta]

    @classmethod
    def parse(cls, text: str) -> EscalationPolicy:
        """Parse ``severity=duration`` pairs; ValueError naming the faulty part."""
        after: dict[str, dt.timedelta] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            severity, _, duration = (s.strip() for s in part.partition("="))
            if severity not in SEVERITY_RANK:
                raise ValueError(f"escalation policy: unknown severity {severity!r}")
            problem = check_duration(duration, allow_zero=False)
            if problem:
                raise ValueError(f"escalation policy: the duration for {severity} {problem}")
            after[severity] = dt.timedelta(seconds=duration_seconds(duration))
        return cls(after)

    def due_level(self, severity: str, created_at: dt.datetime, now: dt.datetime) -> int:
        """The escalation level an open alert should have at ``now``."""
        period = self.after.get(severity)
        if period is None or now < created_at:
            return 0
        return min(MAX_LEVEL, int((now - created_at) / period))
