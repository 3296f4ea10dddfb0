"""Alert rules as data: the :class:`Rule` model and :func:`validate_rule`.

A rule is JSON validated here, so that a clinic can review and change its rules without
code. :func:`validate_rule` answers either a :class:`Rule` or a list of
:class:`FieldError`, each naming the faulty field (``condition.duration``,
``overrides[0].params.condition.value``) with a stable code and a message that never
repeats the submitted value (rules may carry patient identifiers).

The deduplication key is a template over :data:`PLACEHOLDERS`; it must contain
``{patient_id}`` so that one patient's alert can never suppress another's. Overrides
replace single parameters for one patient; each effective rule is validated like any
other, so an override cannot produce a rule that would be refused on its own.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from clarity.rules.conditions import Condition, Cooldown
from clarity.rules.paths import field_path, parse_path, resolve

Severity = Literal["info", "warning", "high", "critical"]
SEVERITY_RANK: Final[dict[str, int]] = {"info": 0, "warning": 1, "high": 2, "critical": 3}
PLACEHOLDERS: Final = ("rule_id", "patient_id", "organization_id", "severity")
DEFAULT_DEDUP_KEY: Final = "{rule_id}:{patient_id}"
#: Fields outside ``condition`` that an override may set.
OVERRIDABLE: Final = frozenset({"enabled", "severity", "cooldown"})


def _dedup_template(template: str) -> str:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise PydanticCustomError(
            "invalid_template", "has an unbalanced brace; write placeholders as {name}"
        ) from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            raise PydanticCustomError(
                "invalid_template", "placeholders take no format spec or conversion"
            )
        if name not in PLACEHOLDERS:
            raise PydanticCustomError(
                "unknown_placeholder",
                "uses an unknown placeholder; allowed: " + ", ".join(PLACEHOLDERS),
            )
        names.add(name)
    if "patient_id" not in names:
        raise PydanticCustomError("missing_placeholder", "must contain the patient_id placeholder")
    return template


RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")]
DedupTemplate = Annotated[str, Field(max_length=200), AfterValidator(_dedup_template)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scope(_Model):
    """Whom a rule watches: every patient, one organization's, or one patient."""

    level: Literal["all", "organization", "patient"]
    organization_id: uuid.UUID | None = Field(default=None, validate_default=True)
    patient_id: uuid.UUID | None = Field(default=None, validate_default=True)

    @field_validator("organization_id")
    @classmethod
    def _organization(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        level = info.data.get("level")
        if level == "organization" and value is None:
            raise PydanticCustomError("missing", "is required when level is organization")
        if level == "all" and value is not None:
            raise PydanticCustomError("not_allowed", "must be empty when level is all")
        return value

    @field_validator("patient_id")
    @classmethod
    def _patient(cls, value: uuid.UUID | None, info: ValidationInfo) -> uuid.UUID | None:
        level = info.data.get("level")
        if level == "patient" and value is None:
            raise PydanticCustomError("missing", "is required when level is patient")
        if level in ("all", "organization") and value is not None:
            raise PydanticCustomError("not_allowed", "must be empty unless level is patient")
        return value

    def covers(self, patient_id: uuid.UUID, organization_id: uuid.UUID | None) -> bool:
        if self.level == "patient":
            return patient_id == self.patient_id and (
                self.organization_id is None or organization_id == self.organization_id
            )
        if self.level == "organization":
            return organization_id == self.organization_id
        return True


class Override(_Model):
    """Parameters replaced for one patient, by path (``condition.value``, ``cooldown``)."""

    patient_id: uuid.UUID
    params: Annotated[dict[str, JsonValue], Field(min_length=1, max_length=20)]


class Rule(_Model):
    id: RuleId
    name: Annotated[str, Field(min_length=1, max_length=120)]
    description: Annotated[str, Field(max_length=2000)] = ""
    severity: Severity
    condition: Condition
    cooldown: Cooldown
    dedup_key: DedupTemplate = DEFAULT_DEDUP_KEY
    scope: Scope = Scope(level="all")
    enabled: StrictBool = True
    version: Annotated[StrictInt, Field(ge=1)] = 1
    source: Annotated[str, Field(max_length=1000)] | None = None
    rationale: Annotated[str, Field(max_length=2000)] | None = None
    overrides: Annotated[tuple[Override, ...], Field(max_length=500)] = ()

    _effective: dict[uuid.UUID, Rule] = PrivateAttr(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _valid_overrides(
        cls, overrides: tuple[Override, ...], info: ValidationInfo
    ) -> tuple[Override, ...]:
        if not overrides or "condition" not in info.data:
            return overrides
        base = {k: _plain(v) for k, v in info.data.items()}
        errors = _override_errors(base, overrides)
        if errors:
            raise ValidationError.from_exception_data("Rule", errors)
        return overrides

    def model_post_init(self, context: Any, /) -> None:
        base = self.model_dump(mode="json", exclude={"overrides"})
        for override in self.overrides:
            effective = _apply(base, override.params)
            self._effective[override.patient_id] = Rule.model_validate(effective)

    def for_patient(self, patient_id: uuid.UUID) -> Rule:
        """The rule as it applies to one patient, with that patient's overrides."""
        if not self.overrides:
            return self
        return self._effective.get(patient_id, self)

    def dedup_for(self, patient_id: uuid.UUID, organization_id: uuid.UUID | None) -> str:
        return self.dedup_key.format(
            rule_id=self.id,
            patient_id=patient_id,
            organization_id=organization_id or "",
            severity=self.severity,
        )


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _apply(base: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each path in ``params`` replaced (paths pre-checked)."""
    document: dict[str, Any] = _copy(base)
    for path, value in params.items():
        parts = parse_path(path)
        assert parts is not None
        container, key = resolve(document, parts)
        container[key] = _copy(value)
    return document


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _error(loc: tuple[int | str, ...], code: str, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=None)


def _overridable(base: dict[str, Any], path: str) -> bool:
    parts = parse_path(path)
    if parts is None or not (
        parts[0] == "condition" or (len(parts) == 1 and parts[0] in OVERRIDABLE)
    ):
        return False
    try:
        resolve(base, parts)
    except KeyError:
        return False
    return True


def _override_errors(
    base: dict[str, Any], overrides: tuple[Override, ...]
) -> list[InitErrorDetails]:
    errors: list[InitErrorDetails] = []
    scope = base.get("scope") or {}
    seen: set[uuid.UUID] = set()
    for n, override in enumerate(overrides):
        if override.patient_id in seen:
            errors.append(_error((n, "patient_id"), "duplicate_override", "appears twice"))
        seen.add(override.patient_id)
        if scope.get("level") == "patient" and str(override.patient_id) != scope.get("patient_id"):
            errors.append(_error((n, "patient_id"), "outside_scope", "is not the patient in scope"))
        bad = [p for p in override.params if not _overridable(base, p)]
        for path in bad:
            errors.append(
                _error(
                    (n, "params", path),
                    "unknown_parameter",
                    "is not a parameter of this rule that an override may set",
                )
            )
        if bad:
            continue
        effective = _apply({k: v for k, v in base.items() if k != "overrides"}, override.params)
        for problem in field_errors_of(Rule, effective):
            if problem.field in override.params:
                errors.append(_error((n, "params", problem.field), problem.code, problem.message))
            else:
                errors.append(
                    _error(
                        (n, "params"),
                        problem.code,
                        f"makes {problem.field} invalid: {problem.message}",
                    )
                )
    return errors


@dataclass(frozen=True)
class FieldError:
    """One problem with a submitted rule; ``field`` uses the path syntax of overrides."""

    field: str
    message: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


_GENERIC: Final[dict[str, str]] = {
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "union_tag_invalid": "is not a known kind",
    "union_tag_not_found": "needs a kind",
    "json_invalid": "is not valid JSON",
}


def _message(err: Mapping[str, Any]) -> str:
    code = str(err.get("type", "value_error"))
    if code in _GENERIC:
        if code == "union_tag_invalid":
            tags = (err.get("ctx") or {}).get("expected_tags")
            return f"is not a known kind; expected one of {tags}" if tags else _GENERIC[code]
        return _GENERIC[code]
    message = str(err.get("msg", "is invalid"))
    value = err.get("input")
    if isinstance(value, str) and len(value) >= 2 and value in message:
        message = message.replace(value, "[value]")
    return message


def errors_from(exc: ValidationError) -> list[FieldError]:
    """Field-level errors of a failed validation, without the submitted values."""
    return [
        FieldError(field_path(e["loc"]) or "(rule)", _message(e), str(e["type"]))
        for e in exc.errors(include_url=False)
    ]


def field_errors_of(model: type[BaseModel], data: object) -> list[FieldError]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return errors_from(exc)
    return []


def validate_rule(data: Mapping[str, Any] | str | bytes) -> Rule | list[FieldError]:
    """A valid :class:`Rule`, or every problem with ``data`` (a mapping or JSON text)."""
    try:
        if isinstance(data, str | bytes):
            return Rule.model_validate_json(data)
        return Rule.model_validate(data)
    except ValidationError as exc:
        return errors_from(exc)
