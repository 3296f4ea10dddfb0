"""The rules in force for an organization: the default pack, with the clinic's own rules.

A stored rule with a pack rule's id replaces that pack rule for the clinic (that is how a
clinic tunes or disables one); other stored rules are added. Every stored rule is
validated again when read, since the rule format may have changed since it was saved: an
invalid stored rule is left out and reported (:attr:`Ruleset.invalid`); if it overrode a
pack rule, the pack rule stays in force, so that a broken override can never silently
switch off a safety rule.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts.models import StoredRule
from clarity.logging import get_logger
from clarity.rules import FieldError, Rule, default_pack, validate_rule

log = get_logger(__name__)

Origin = Literal["pack", "override", "custom"]


@dataclass(frozen=True)
class Entry:
    """One rule in force, where it comes from, and the stored row behind it (if any)."""

    rule: Rule
    origin: Origin
    stored: StoredRule | None = None


@dataclass
class Ruleset:
    entries: list[Entry] = field(default_factory=list)
    invalid: list[tuple[StoredRule, list[FieldError]]] = field(default_factory=list)

    @property
    def rules(self) -> list[Rule]:
        return [e.rule for e in self.entries]

    def get(self, rule_id: str) -> Entry | None:
        return next((e for e in self.entries if e.rule.id == rule_id), None)


def pack_rule(rule_id: str) -> Rule | None:
    return next((r for r in default_pack() if r.id == rule_id), None)


def combine(stored: list[StoredRule]) -> Ruleset:
    """The pack with ``stored`` applied (pure given the rows; see the module doc)."""
    result = Ruleset()
    valid: dict[str, tuple[Rule, StoredRule]] = {}
    for row in stored:
        checked = validate_rule(row.definition)
        if isinstance(checked, Rule) and checked.id == row.rule_id:
            valid[row.rule_id] = (checked, row)
            continue
        problems = (
            checked
            if not isinstance(checked, Rule)
            else [FieldError("id", "does not match the stored rule id", "id_mismatch")]
        )
        log.warning("alerts.stored_rule_invalid", rule_id=row.rule_id, problems=len(problems))
        result.invalid.append((row, problems))
    for rule in default_pack():
        replaced = valid.pop(rule.id, None)
        if replaced is None:
            result.entries.append(Entry(rule, "pack"))
        else:
            result.entries.append(Entry(replaced[0], "override", replaced[1]))
    for rule_id in sorted(valid):
        rule, row = valid[rule_id]
        result.entries.append(Entry(rule, "custom", row))
    return result


async def ruleset(session: AsyncSession, organization_id: uuid.UUID) -> Ruleset:
    """The rules in force for one organization (filtered explicitly, so that a system
    session, which sees every organization, may ask too)."""
    rows = await session.scalars(
        select(StoredRule)
        .where(StoredRule.organization_id == organization_id)
        .order_by(StoredRule.rule_id)
    )
    return combine(list(rows))
