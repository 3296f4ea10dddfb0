"""Alert-rule endpoints (thin): the clinic's rules with the default pack's, their changes,
and the dry run ("what would this rule have fired for this patient over N days")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response, status

from clarity.alerts import rules_service
from clarity.alerts.schemas import DryRunIn, DryRunOut, RuleList, RuleOut
from clarity.auth.dependencies import Principal, SessionDep, require
from clarity.auth.permissions import Permission

router = APIRouter(prefix="/alert-rules", tags=["alert rules"])

RuleReader = Annotated[Principal, require(Permission.rules_read)]
RuleManager = Annotated[Principal, require(Permission.rules_manage)]
RuleId = Annotated[str, Path(max_length=64)]
RuleBody = Annotated[
    dict[str, Any],
    Body(
        description="A rule: id, name, severity, condition, cooldown, and optionally "
        "description, dedup_key, scope, enabled, source, rationale, overrides."
    ),
]


@router.get("", response_model=RuleList)
async def list_rules(principal: RuleReader, session: SessionDep) -> RuleList:
    """The rules in force (the default pack's, marked ``pack`` or ``override``, and the
    clinic's own, ``custom``), then any stored rule that no longer validates."""
    return RuleList(items=await rules_service.list_rules(session, principal))


@router.post("", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
async def create_rule(principal: RuleManager, session: SessionDep, body: RuleBody) -> RuleOut:
    """Add a rule (or, with a pack rule's id, override that rule); 422 lists each faulty
    field as ``{field, code, message}``."""
    return await rules_service.create_rule(session, principal, body)


@router.post("/dry-run", response_model=DryRunOut)
async def dry_run(principal: RuleReader, session: SessionDep, body: DryRunIn) -> DryRunOut:
    """Evaluate a rule (given, or one of the clinic's by ``rule_id``) over the patient's
    last ``days`` days: what it would have fired, and when. Needs access to the patient."""
    return await rules_service.dry_run_rule(session, principal, body)


@router.get("/{rule_id}", response_model=RuleOut)
async def read_rule(rule_id: RuleId, principal: RuleReader, session: SessionDep) -> RuleOut:
    return await rules_service.read_rule(session, principal, rule_id)


@router.put("/{rule_id}", response_model=RuleOut)
async def replace_rule(
    rule_id: RuleId,
    principal: RuleManager,
    session: SessionDep,
    body: RuleBody,
    response: Response,
) -> RuleOut:
    """Replace a clinic rule, or override a pack rule (201 when that creates it)."""
    out, created = await rules_service.replace_rule(session, principal, rule_id, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return out


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: RuleId, principal: RuleManager, session: SessionDep) -> None:
    """Delete a clinic rule or override (409 ``pack_rule`` for a pack rule itself)."""
    await rules_service.delete_rule(session, principal, rule_id)
