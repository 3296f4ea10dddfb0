"""A clinic's alert rules: list (the pack's too), create, replace, delete, and dry-run.

A submitted rule is validated by :func:`clarity.rules.validate_rule`; a 422 lists every
problem as ``{field, code, message}`` without repeating the value. On top of the rule
format, a clinic's rule may only name its own organization and its own patients.

A stored rule with a pack rule's id overrides that pack rule for the clinic (PUT on a pack
rule's id creates the override; DELETE removes it and the pack rule is back). Versions are
kept by the server: 1 for a new rule, the pack rule's version plus one for an override,
plus one on every change; alerts record the version that fired.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts import raising
from clarity.alerts.models import StoredRule
from clarity.alerts.needs import Needs, leaves
from clarity.alerts.rulesets import Entry, Ruleset, pack_rule, ruleset
from clarity.alerts.schemas import DryRunFiring, DryRunIn, DryRunOut, FieldErrorOut, RuleOut
from clarity.alerts.signals_loader import load
from clarity.audit.service import record
from clarity.auth.dependencies import Principal
from clarity.biometrics.streams import stream_types
from clarity.database import utcnow
from clarity.errors import AppError, not_found
from clarity.patients.access import patient_context
from clarity.patients.models import Patient
from clarity.patients.service import audit_patient
from clarity.rules import FieldError, Rule, dry_run, validate_rule
from clarity.rules.conditions import ANY_STREAM, MissingData
from clarity.rules.durations import duration_seconds
from clarity.rules.signals import epoch


def invalid_rule(errors: list[FieldError], prefix: str = "") -> AppError:
    fields = sorted({prefix + e.field for e in errors})
    return AppError(
        422,
        "invalid_rule",
        "The rule is invalid: check " + ", ".join(fields) + ".",
        extra={
            "errors": [
                {"field": prefix + e.field, "code": e.code, "message": e.message} for e in errors
            ]
        },
    )


def _entry_out(entry: Entry) -> RuleOut:
    stored = entry.stored
    pack = pack_rule(entry.rule.id) if entry.origin == "override" else None
    return RuleOut(
        id=entry.rule.id,
        origin=entry.origin,
        valid=True,
        enabled=entry.rule.enabled,
        definition=entry.rule.model_dump(mode="json"),
        pack_definition=None if pack is None else pack.model_dump(mode="json"),
        version=entry.rule.version,
        created_at=None if stored is None else stored.created_at,
        created_by=None if stored is None else stored.created_by,
        updated_at=None if stored is None else stored.updated_at,
        updated_by=None if stored is None else stored.updated_by,
    )


def _invalid_out(row: StoredRule, errors: list[FieldError]) -> RuleOut:
    return RuleOut(
        id=row.rule_id,
        origin="override" if pack_rule(row.rule_id) else "custom",
        valid=False,
        enabled=False,
        definition=dict(row.definition),
        errors=[FieldErrorOut(field=e.field, code=e.code, message=e.message) for e in errors],
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def outs(rules: Ruleset) -> list[RuleOut]:
    return [_entry_out(e) for e in rules.entries] + [
        _invalid_out(row, errors) for row, errors in rules.invalid
    ]


async def list_rules(session: AsyncSession, principal: Principal) -> list[RuleOut]:
    rules = await ruleset(session, principal.organization_id)
    record(
        session,
        "alert_rule.list",
        resource_type="alert_rule",
        details={"count": len(rules.entries)},
    )
    await session.commit()
    return outs(rules)


async def read_rule(session: AsyncSession, principal: Principal, rule_id: str) -> RuleOut:
    for out in outs(await ruleset(session, principal.organization_id)):
        if out.id == rule_id:
            return out
    raise not_found("rule")


async def _org_errors(session: AsyncSession, rule: Rule, org: uuid.UUID) -> list[FieldError]:
    """Problems only the clinic can know: other organizations, patients not its own."""
    errors: list[FieldError] = []
    scope = rule.scope
    if scope.organization_id is not None and scope.organization_id != org:
        errors.append(
            FieldError("scope.organization_id", "is not your organization", "other_organization")
        )
    named = [("scope.patient_id", scope.patient_id)] + [
        (f"overrides[{n}].patient_id", o.patient_id) for n, o in enumerate(rule.overrides)
    ]
    for field, patient_id in named:
        if patient_id is not None and await session.get(Patient, patient_id) is None:
            errors.append(
                FieldError(field, "is not a patient of your organization", "unknown_patient")
            )
    return errors


async def _checked(session: AsyncSession, body: dict[str, Any], org: uuid.UUID) -> Rule:
    result = validate_rule(body)
    if not isinstance(result, Rule):
        raise invalid_rule(result)
    problems = await _org_errors(session, result, org)
    if problems:
        raise invalid_rule(problems)
    return result


def _versioned(rule: Rule, version: int) -> dict[str, Any]:
    return {**rule.model_dump(mode="json"), "version": version}


async def _stored(session: AsyncSession, rule_id: str) -> StoredRule | None:
    row: StoredRule | None = await session.scalar(
        select(StoredRule).where(StoredRule.rule_id == rule_id)
    )
    return row


def _audit(session: AsyncSession, action: str, rule_id: str, version: int | None) -> None:
    record(
        session,
        action,
        resource_type="alert_rule",
        resource_id=rule_id,
        details={"version": version},
    )


async def create_rule(session: AsyncSession, principal: Principal, body: dict[str, Any]) -> RuleOut:
    rule = await _checked(session, body, principal.organization_id)
    if await _stored(session, rule.id) is not None:
        raise AppError(409, "rule_exists", "A rule with this id exists; PUT it to change it.")
    pack = pack_rule(rule.id)
    version = 1 if pack is None else pack.version + 1
    now = utcnow()
    row = StoredRule(
        rule_id=rule.id,
        definition=_versioned(rule, version),
        version=version,
        created_by=principal.user_id,
        created_at=now,
        updated_by=principal.user_id,
        updated_at=now,
    )
    session.add(row)
    _audit(session, "alert_rule.create", rule.id, version)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise AppError(
            409, "rule_exists", "A rule with this id exists; PUT it to change it."
        ) from None
    return await read_rule(session, principal, rule.id)


async def replace_rule(
    session: AsyncSession, principal: Principal, rule_id: str, body: dict[str, Any]
) -> tuple[RuleOut, bool]:
    """Change a stored rule, or override a pack rule; answers whether it was created."""
    if body.get("id", rule_id) != rule_id:
        raise invalid_rule([FieldError("id", "must equal the rule id in the path", "id_mismatch")])
    row = await _stored(session, rule_id)
    pack = pack_rule(rule_id)
    if row is None and pack is None:
        raise not_found("rule")
    rule = await _checked(session, {**body, "id": rule_id}, principal.organization_id)
    now = utcnow()
    created = row is None
    if row is None:
        assert pack is not None
        version = pack.version + 1
        row = StoredRule(
            rule_id=rule_id,
            definition=_versioned(rule, version),
            version=version,
            created_by=principal.user_id,
            created_at=now,
            updated_by=principal.user_id,
            updated_at=now,
        )
        session.add(row)
    else:
        version = row.version + 1
        row.definition = _versioned(rule, version)
        row.version = version
        row.updated_by = principal.user_id
        row.updated_at = now
    _audit(session, "alert_rule.create" if created else "alert_rule.update", rule_id, version)
    await session.commit()
    return await read_rule(session, principal, rule_id), created


async def delete_rule(session: AsyncSession, principal: Principal, rule_id: str) -> None:
    row = await _stored(session, rule_id)
    if row is None:
        if pack_rule(rule_id) is not None:
            raise AppError(
                409,
                "pack_rule",
                "A pack rule cannot be deleted; PUT it with enabled false to switch it off.",
            )
        raise not_found("rule")
    await session.delete(row)
    _audit(session, "alert_rule.delete", rule_id, row.version)
    await session.commit()


def _missing_streams_needs(rule: Rule, start: float) -> Any:
    """A dry run shows past gaps too, so it reads the watched streams' sample times."""

    def add(needs: Needs) -> None:
        for leaf in leaves(rule.condition):
            if isinstance(leaf, MissingData):
                names = stream_types() if leaf.streams == (ANY_STREAM,) else leaf.streams
                since = start - duration_seconds(leaf.duration)
                for name in names:
                    current = needs.streams.get(name)
                    needs.streams[name] = since if current is None else min(current, since)

    return add


async def _dry_run_rule(session: AsyncSession, org: uuid.UUID, body: DryRunIn) -> Rule:
    if (body.rule is None) == (body.rule_id is None):
        raise AppError(
            422,
            "invalid_request",
            "Give either rule (a rule to try) or rule_id (one of the clinic's rules).",
            extra={
                "errors": [{"field": "rule", "code": "one_of", "message": "give rule or rule_id"}]
            },
        )
    if body.rule is not None:
        result = validate_rule(body.rule)
        if not isinstance(result, Rule):
            raise invalid_rule(result, prefix="rule.")
        return result
    assert body.rule_id is not None
    entry = (await ruleset(session, org)).get(body.rule_id)
    if entry is None:
        raise not_found("rule")
    return entry.rule


async def dry_run_rule(
    session: AsyncSession, principal: Principal, body: DryRunIn, now: dt.datetime | None = None
) -> DryRunOut:
    """What the rule would have fired for the patient over the last ``days`` days."""
    rule = await _dry_run_rule(session, principal.organization_id, body)
    ctx = await patient_context(session, principal, body.patient_id)
    end = now or utcnow()
    start = end - dt.timedelta(days=body.days)
    patient = ctx.patient
    subject = raising.Subject(patient.organization_id, patient.id, patient.timezone)
    applies = bool(raising.applicable([rule], patient.id, patient.organization_id))
    effective = rule.for_patient(patient.id)
    needs = Needs()
    needs.add(effective, epoch(start))
    _missing_streams_needs(effective, epoch(start))(needs)
    loaded = await load(
        session,
        patient_id=patient.id,
        organization_id=subject.organization_id,
        timezone=subject.timezone,
        needs=needs,
        now=end,
    )
    audit_patient(session, ctx, "alert_rule.dry_run", {"rule_id": rule.id, "days": body.days})
    await session.commit()  # the audit record; the connection is free while computing
    signals = await asyncio.to_thread(loaded.signals)
    fired = await asyncio.to_thread(dry_run, rule, signals, start, end)
    return DryRunOut(
        rule_id=rule.id,
        patient_id=patient.id,
        start=start,
        end=end,
        applies=applies,
        firings=[
            DryRunFiring(
                rule_id=f.rule_id,
                severity=f.severity,
                dedup_key=f.dedup_key,
                fired_at=f.fired_at,
                episode_start=f.episode_start,
                summary=f.summary,
                evidence=raising.json_safe(f.evidence.as_dict()),
            )
            for f in fired
        ],
    )
