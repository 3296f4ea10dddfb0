"""Rule validation: malformed rules are refused with field-level errors that never echo the
submitted value; valid rules round-trip; overrides are checked against the rule kind."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from clarity.rules import FieldError, Rule, validate_rule
from clarity.rules.conditions import ThresholdDuration
from clarity.rules.durations import duration_seconds, format_seconds
from clarity.rules.signals import DAILY_SIGNALS

PATIENT = uuid.UUID("8c0e5a1e-7a7e-4a8e-9a51-3d7f6c1f2b11")
OTHER = uuid.UUID("1b4e28ba-2fa1-4d2b-883f-0016d3cca427")


def hr_rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "hr-high",
        "name": "Heart rate high",
        "severity": "high",
        "cooldown": "1h",
        "condition": {
            "kind": "threshold_duration",
            "signal": "heart_rate",
            "op": ">",
            "value": 120,
            "duration": "10m",
        },
    }
    rule.update(changes)
    return rule


def with_condition(**changes: Any) -> dict[str, Any]:
    rule = hr_rule()
    rule["condition"] = {**rule["condition"], **changes}
    return rule


def errors(data: dict[str, Any] | str) -> list[FieldError]:
    result = validate_rule(data)
    assert isinstance(result, list), "expected the rule to be refused"
    return result


def fields(data: dict[str, Any] | str) -> dict[str, str]:
    return {e.field: e.code for e in errors(data)}


def test_a_valid_rule_validates_with_defaults() -> None:
    rule = validate_rule(hr_rule())
    assert isinstance(rule, Rule)
    assert rule.dedup_key == "{rule_id}:{patient_id}"
    assert rule.scope.level == "all"
    assert rule.enabled
    assert rule.version == 1
    assert rule.condition.kind == "threshold_duration"
    assert rule.condition.max_gap == "2m"


def test_a_valid_rule_round_trips_through_json() -> None:
    rule = validate_rule(
        hr_rule(overrides=[{"patient_id": str(PATIENT), "params": {"condition.value": 130}}])
    )
    assert isinstance(rule, Rule)
    again = validate_rule(rule.model_dump_json())
    assert isinstance(again, Rule)
    assert again == rule


def test_missing_field_is_named() -> None:
    data = hr_rule()
    del data["severity"]
    del data["condition"]["duration"]
    assert fields(data) == {"severity": "missing", "condition.duration": "missing"}


def test_unknown_kind_is_refused_at_the_condition() -> None:
    found = errors(with_condition(kind="threshold_forever"))
    assert [(e.field, e.code) for e in found] == [("condition", "union_tag_invalid")]
    assert "threshold_forever" not in found[0].message
    assert "threshold_duration" in found[0].message  # lists the accepted kinds


def test_missing_kind_is_refused() -> None:
    data = hr_rule()
    del data["condition"]["kind"]
    assert fields(data) == {"condition": "union_tag_not_found"}


@pytest.mark.parametrize(
    "duration", ["10 minutes", "10M", "PT10M", "1.5h", "-5m", "", "0m", "401d"]
)
def test_bad_duration_is_refused(duration: str) -> None:
    assert fields(with_condition(duration=duration)) == {"condition.duration": "invalid_duration"}


def test_durations_parse_and_format() -> None:
    assert duration_seconds("10m") == 600
    assert duration_seconds("48h") == 172800
    assert duration_seconds("28d") == 28 * 86400
    assert duration_seconds("2w") == 14 * 86400
    assert format_seconds(600) == "10m"
    assert format_seconds(90) == "90s"
    assert format_seconds(172800) == "2d"


def test_cooldown_may_be_zero_but_not_malformed() -> None:
    assert isinstance(validate_rule(hr_rule(cooldown="0s")), Rule)
    assert fields(hr_rule(cooldown="soon")) == {"cooldown": "invalid_duration"}


@pytest.mark.parametrize("op", ["==", "=>", "gt", "", "!="])
def test_invalid_operator_is_refused(op: str) -> None:
    assert fields(with_condition(op=op)) == {"condition.op": "literal_error"}


@pytest.mark.parametrize("value", ["120", True, None, [120]])
def test_value_must_be_a_number_not_a_string_or_bool(value: object) -> None:
    assert list(fields(with_condition(value=value))) == ["condition.value"]


def test_unknown_signal_and_extra_field_are_refused() -> None:
    assert fields(with_condition(signal="heart_beat")) == {"condition.signal": "unknown_signal"}
    assert fields(with_condition(colour="red")) == {"condition.colour": "extra_forbidden"}


def test_max_gap_longer_than_duration_is_refused() -> None:
    assert fields(with_condition(max_gap="15m")) == {"condition.max_gap": "gap_exceeds_duration"}


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ("{rule_id}:{patient_id}:{name}", "unknown_placeholder"),
        ("{rule_id}:{patient_id.hex}", "unknown_placeholder"),
        ("{rule_id}:{patient_id!r}", "invalid_template"),
        ("{rule_id}:{patient_id:>40}", "invalid_template"),
        ("{rule_id:{patient_id}", "invalid_template"),
        ("{rule_id}", "missing_placeholder"),
    ],
)
def test_dedup_key_placeholders_are_checked(template: str, code: str) -> None:
    assert fields(hr_rule(dedup_key=template)) == {"dedup_key": code}


def test_dedup_key_renders_allowed_placeholders() -> None:
    rule = validate_rule(hr_rule(dedup_key="{severity}/{rule_id}/{organization_id}/{patient_id}"))
    assert isinstance(rule, Rule)
    assert rule.dedup_for(PATIENT, None) == f"high/hr-high//{PATIENT}"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"level": "patient"}, {"scope.patient_id": "missing"}),
        ({"level": "organization"}, {"scope.organization_id": "missing"}),
        ({"level": "all", "patient_id": str(PATIENT)}, {"scope.patient_id": "not_allowed"}),
        (
            {"level": "organization", "organization_id": str(OTHER), "patient_id": str(PATIENT)},
            {"scope.patient_id": "not_allowed"},
        ),
        ({"level": "all", "organization_id": str(OTHER)}, {"scope.organization_id": "not_allowed"}),
        ({"level": "clinic"}, {"scope.level": "literal_error"}),
        ({"level": "patient", "patient_id": "not-a-uuid"}, {"scope.patient_id": "uuid_parsing"}),
    ],
)
def test_inconsistent_scope_is_refused(scope: dict[str, str], expected: dict[str, str]) -> None:
    assert fields(hr_rule(scope=scope)) == expected


def test_scope_covers_the_right_patients() -> None:
    org = uuid.uuid4()
    one = validate_rule(hr_rule(scope={"level": "patient", "patient_id": str(PATIENT)}))
    clinic = validate_rule(hr_rule(scope={"level": "organization", "organization_id": str(org)}))
    assert isinstance(one, Rule)
    assert isinstance(clinic, Rule)
    assert one.scope.covers(PATIENT, org)
    assert not one.scope.covers(OTHER, org)
    assert clinic.scope.covers(OTHER, org)
    assert not clinic.scope.covers(OTHER, uuid.uuid4())


def override(params: dict[str, Any], patient: uuid.UUID = PATIENT) -> dict[str, Any]:
    return {"patient_id": str(patient), "params": params}


def test_override_applies_to_its_patient_only() -> None:
    rule = validate_rule(
        hr_rule(overrides=[override({"condition.value": 130, "cooldown": "2h", "enabled": False})])
    )
    assert isinstance(rule, Rule)
    mine = rule.for_patient(PATIENT)
    assert isinstance(mine.condition, ThresholdDuration)
    assert mine.condition.value == 130
    assert mine.cooldown == "2h"
    assert not mine.enabled
    assert rule.for_patient(OTHER) is rule


def test_override_of_a_nonexistent_parameter_is_refused() -> None:
    found = fields(hr_rule(overrides=[override({"condition.threshold": 130})]))
    assert found == {"overrides[0].params.condition.threshold": "unknown_parameter"}


@pytest.mark.parametrize(
    "path",
    [
        "condition.kind",
        "condition",
        "id",
        "scope.level",
        "overrides",
        "condition..value",
        "Condition.value",
    ],
)
def test_override_may_not_touch_structure_or_identity(path: str) -> None:
    assert fields(hr_rule(overrides=[override({path: 1})])) == {
        f"overrides[0].params.{path}": "unknown_parameter"
    }


def test_override_value_is_validated_against_the_rule_kind() -> None:
    found = fields(hr_rule(overrides=[override({"condition.value": "high", "condition.op": "=="})]))
    assert found == {
        "overrides[0].params.condition.value": "float_type",
        "overrides[0].params.condition.op": "literal_error",
    }


def test_override_breaking_another_field_names_that_field() -> None:
    found = errors(hr_rule(overrides=[override({"condition.duration": "1m"})]))
    assert [(e.field, e.code) for e in found] == [("overrides[0].params", "gap_exceeds_duration")]
    assert "condition.max_gap" in found[0].message


def test_override_inside_a_composition_uses_the_error_path_syntax() -> None:
    data = hr_rule(
        condition={
            "kind": "all",
            "within": "7d",
            "conditions": [
                hr_rule()["condition"],
                {"kind": "score_threshold", "instrument": "phq9", "op": ">=", "value": 20},
            ],
        },
        overrides=[override({"condition.conditions[1].value": 15})],
    )
    rule = validate_rule(data)
    assert isinstance(rule, Rule)
    assert rule.for_patient(PATIENT).condition.conditions[1].value == 15  # type: ignore[union-attr]
    data["overrides"] = [override({"condition.conditions[1].value": 40})]
    assert fields(data) == {"overrides[0].params.condition.conditions[1].value": "out_of_range"}


def test_duplicate_and_out_of_scope_overrides_are_refused() -> None:
    assert fields(
        hr_rule(overrides=[override({"cooldown": "2h"}), override({"cooldown": "3h"})])
    ) == {"overrides[1].patient_id": "duplicate_override"}
    scoped = hr_rule(
        scope={"level": "patient", "patient_id": str(PATIENT)},
        overrides=[override({"cooldown": "2h"}, OTHER)],
    )
    assert fields(scoped) == {"overrides[0].patient_id": "outside_scope"}


def test_errors_never_echo_the_submitted_value() -> None:
    secret = "Jane-Doe-1970-01-01"
    data = hr_rule(
        id=secret,
        name="x" * 500,
        dedup_key="{" + secret + "}:{patient_id}",
        scope={"level": "patient", "patient_id": secret},
        condition={"kind": secret},
        overrides=[{"patient_id": secret, "params": {secret: secret}}],
    )
    found = errors(data)
    assert len(found) >= 5
    for problem in found:
        assert secret not in problem.message
        assert secret not in problem.field
        assert "x" * 20 not in problem.message


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            {
                "kind": "instrument_item",
                "instrument": "phq9",
                "item": "phq9_10",
                "op": ">=",
                "value": 1,
            },
            {"condition.item": "unknown_item"},
        ),
        (
            {
                "kind": "instrument_item",
                "instrument": "phq9",
                "item": "phq9_9",
                "op": ">=",
                "value": 4,
            },
            {"condition.value": "out_of_range"},
        ),
        (
            {"kind": "score_threshold", "instrument": "phq10", "op": ">=", "value": 4},
            {"condition.instrument": "unknown_instrument"},
        ),
        (
            {"kind": "score_threshold", "instrument": "gad7", "op": ">=", "value": 22},
            {"condition.value": "out_of_range"},
        ),
        (
            {"kind": "trend", "instrument": "phq9", "direction": "up", "delta": 0},
            {"condition.delta": "greater_than"},
        ),
        (
            {"kind": "trend", "instrument": "phq9", "direction": "sideways", "delta": 5},
            {"condition.direction": "literal_error"},
        ),
        (
            {"kind": "missing_data", "streams": ["any", "heart_rate"], "duration": "48h"},
            {"condition.streams": "invalid_streams"},
        ),
        (
            {"kind": "missing_data", "streams": ["heart_rate", "pulse"], "duration": "48h"},
            {"condition.streams[1]": "unknown_signal"},
        ),
        (
            {"kind": "missing_data", "streams": [], "duration": "48h"},
            {"condition.streams": "too_short"},
        ),
        (
            {
                "kind": "baseline_deviation",
                "signal": "total_sleep_minutes",
                "direction": "below",
                "sd": 2,
                "hits": 5,
                "of_last": 4,
            },
            {"condition.of_last": "out_of_range"},
        ),
        (
            {
                "kind": "baseline_deviation",
                "signal": "total_sleep_minutes",
                "direction": "below",
                "sd": 2,
                "baseline_days": 10,
                "min_baseline_days": 14,
                "hits": 3,
                "of_last": 4,
            },
            {"condition.min_baseline_days": "out_of_range"},
        ),
        (
            {
                "kind": "baseline_deviation",
                "signal": "sleep_hours",
                "direction": "down",
                "sd": -1,
                "hits": 3,
                "of_last": 4,
            },
            {
                "condition.signal": "unknown_signal",
                "condition.direction": "literal_error",
                "condition.sd": "greater_than",
            },
        ),
    ],
)
def test_kind_specific_checks_name_the_field(
    condition: dict[str, Any], expected: dict[str, str]
) -> None:
    assert fields(hr_rule(condition=condition)) == expected


def test_composition_errors_carry_the_position() -> None:
    leaf = hr_rule()["condition"]
    bad = {**leaf, "duration": "ten"}
    data = hr_rule(condition={"kind": "any", "conditions": [leaf, bad]})
    assert fields(data) == {"condition.conditions[1].duration": "invalid_duration"}
    assert fields(hr_rule(condition={"kind": "all", "conditions": [leaf]})) == {
        "condition.conditions": "too_short"
    }


def test_composition_depth_is_limited_to_three_levels() -> None:
    leaf = hr_rule()["condition"]
    condition: dict[str, Any] = leaf
    for _ in range(2):
        condition = {"kind": "all", "conditions": [condition, copy.deepcopy(leaf)]}
    assert isinstance(validate_rule(hr_rule(condition=condition)), Rule)
    condition = {"kind": "any", "conditions": [condition, copy.deepcopy(leaf)]}
    assert fields(hr_rule(condition=condition)) == {"condition.conditions": "too_deep"}


def test_invalid_json_and_bad_ids_are_refused() -> None:
    assert fields("{not json") == {"(rule)": "json_invalid"}
    assert fields(hr_rule(id="Has Spaces")) == {"id": "string_pattern_mismatch"}
    assert fields(hr_rule(severity="urgent")) == {"severity": "literal_error"}
    assert fields(hr_rule(version=0)) == {"version": "greater_than_equal"}
    assert fields(hr_rule(enabled="yes")) == {"enabled": "bool_type"}


def test_daily_signals_are_the_actigraphy_day_features() -> None:
    from clarity.actigraphy.features import DAY_FEATURE_NAMES

    assert frozenset(DAY_FEATURE_NAMES) == DAILY_SIGNALS
