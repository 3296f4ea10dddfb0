"""Clinical alert rules: rules as validated data, and a pure engine that evaluates them.

See ``docs/rules.md`` for the rule format, the engine's exact semantics and the default
clinical rule pack with its sources.
"""

from clarity.rules.cooldown import LastFiring, admits
from clarity.rules.engine import Replay, dry_run, evaluate, replay
from clarity.rules.evidence import Evidence, Firing, Observation
from clarity.rules.pack import default_pack
from clarity.rules.schema import FieldError, Rule, validate_rule
from clarity.rules.signals import AssessmentHistory, DailySeries, PatientSignals, Stream

__all__ = [
    "AssessmentHistory",
    "DailySeries",
    "Evidence",
    "FieldError",
    "Firing",
    "LastFiring",
    "Observation",
    "PatientSignals",
    "Replay",
    "Rule",
    "Stream",
    "admits",
    "default_pack",
    "dry_run",
    "evaluate",
    "replay",
    "validate_rule",
]
