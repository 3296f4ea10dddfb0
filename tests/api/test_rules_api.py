"""The alert-rules API: the default pack listed with the clinic's rules, field-level 422s
for malformed rules (values never echoed), overrides of pack rules that take effect,
versions, who may change rules, and the dry run on a prepared series."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from clarity.alerts.models import Alert
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.rules import default_pack
from tests.api.test_alerts_pipeline import alerts_of, readings, settle
from tests.api.test_assessments_api import phq9, submit
from tests.api.test_biometrics_ingest import new_patient, send
from tests.conftest import Harness, bearer

RULES = "/api/v1/alert-rules"


def custom_rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "low-spo2",
        "name": "Oxygen saturation below 90% for 5 minutes",
        "severity": "high",
        "condition": {
            "kind": "threshold_duration",
            "signal": "spo2",
            "op": "<",
            "value": 90,
            "duration": "5m",
        },
        "cooldown": "6h",
    }
    rule.update(changes)
    return rule


async def test_the_pack_is_listed_and_clinicians_cannot_change_rules(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    listed = await h.client.get(RULES, headers=bearer(clinician))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [r["id"] for r in items] == [r.id for r in default_pack()]
    assert {r["origin"] for r in items} == {"pack"}
    assert all(r["valid"] and r["enabled"] for r in items)
    one = await h.client.get(f"{RULES}/phq9-item9-positive", headers=bearer(clinician))
    assert one.json()["definition"]["condition"]["item"] == "phq9_9"
    assert (await h.client.get(f"{RULES}/nope", headers=bearer(clinician))).status_code == 404

    for method, url in (("POST", RULES), ("PUT", f"{RULES}/low-spo2"), ("DELETE", f"{RULES}/x")):
        refused = await h.client.request(method, url, json=custom_rule(), headers=bearer(clinician))
        assert refused.status_code == 403, (method, url)
    patient = await h.token_for(Role.patient)
    assert (await h.client.get(RULES, headers=bearer(patient))).status_code == 403


async def test_malformed_rules_get_field_level_errors(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    bad = {
        "id": "Bad Id!",
        "name": "",
        "severity": "extreme",
        "condition": {"kind": "score_threshold", "instrument": "phq9", "op": ">=", "value": 99},
        "cooldown": "10 minutes",
        "dedup_key": "{rule_id}",
    }
    response = await h.client.post(RULES, json=bad, headers=bearer(admin))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_rule"
    fields = {e["field"]: e["code"] for e in body["errors"]}
    assert set(fields) == {"id", "name", "severity", "condition.value", "cooldown", "dedup_key"}
    assert fields["condition.value"] == "out_of_range"
    assert fields["dedup_key"] == "missing_placeholder"
    assert all(set(e) == {"field", "code", "message"} for e in body["errors"])
    assert "10 minutes" not in response.text
    assert "Bad Id!" not in response.text

    nested = custom_rule(
        condition={
            "kind": "all",
            "conditions": [
                {"kind": "score_threshold", "instrument": "phq9", "op": ">=", "value": 10},
                {
                    "kind": "threshold_duration",
                    "signal": "spo3",
                    "op": "<",
                    "value": 90,
                    "duration": "5m",
                },
            ],
        }
    )
    response = await h.client.post(RULES, json=nested, headers=bearer(admin))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["condition.conditions[1].signal"]

    stranger = str(uuid.uuid4())
    scoped = custom_rule(scope={"level": "patient", "patient_id": stranger})
    response = await h.client.post(RULES, json=scoped, headers=bearer(admin))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "scope.patient_id",
            "code": "unknown_patient",
            "message": "is not a patient of your organization",
        }
    ]
    assert stranger not in response.text
    other_org = custom_rule(scope={"level": "organization", "organization_id": stranger})
    response = await h.client.post(RULES, json=other_org, headers=bearer(admin))
    assert response.json()["errors"][0]["code"] == "other_organization"
    not_an_object = await h.client.post(RULES, json=["a"], headers=bearer(admin))
    assert not_an_object.status_code == 422
    async with h.runtime.db.session(system=True) as session:
        assert (await session.scalars(select(AuditEvent.action))).all().count(
            "alert_rule.create"
        ) == 0


async def test_create_replace_override_and_delete(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    created = await h.client.post(RULES, json=custom_rule(), headers=bearer(admin))
    assert created.status_code == 201, created.text
    assert created.json()["origin"] == "custom"
    assert created.json()["version"] == 1
    assert (
        await h.client.post(RULES, json=custom_rule(), headers=bearer(admin))
    ).status_code == 409

    changed = await h.client.put(
        f"{RULES}/low-spo2", json=custom_rule(severity="critical"), headers=bearer(admin)
    )
    assert changed.status_code == 200
    assert changed.json()["version"] == 2
    assert changed.json()["definition"]["severity"] == "critical"
    mismatch = await h.client.put(
        f"{RULES}/low-spo2", json=custom_rule(id="other-id"), headers=bearer(admin)
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["field"] == "id"
    unknown = await h.client.put(
        f"{RULES}/no-such", json=custom_rule(id="no-such"), headers=bearer(admin)
    )
    assert unknown.status_code == 404

    # Override a pack rule: PHQ-9 from 15 instead of 20, for this clinic.
    pack = next(r for r in default_pack() if r.id == "phq9-severe")
    tuned = pack.model_dump(mode="json")
    tuned["condition"]["value"] = 15
    override = await h.client.put(f"{RULES}/phq9-severe", json=tuned, headers=bearer(admin))
    assert override.status_code == 201, override.text
    body = override.json()
    assert body["origin"] == "override"
    assert body["version"] == pack.version + 1
    assert body["pack_definition"]["condition"]["value"] == 20
    listed = {
        r["id"]: r for r in (await h.client.get(RULES, headers=bearer(admin))).json()["items"]
    }
    assert listed["phq9-severe"]["origin"] == "override"
    assert listed["low-spo2"]["origin"] == "custom"
    assert len(listed) == len(default_pack()) + 1

    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    moderate = phq9(2, 2, 2, 2, 2, 2, 2, 2, 0)  # 16: moderately severe, not severe
    assert (await submit(h, clinician, patient_id, "phq9", moderate)).status_code == 201
    await settle(h)
    (alert,) = await alerts_of(h, patient_id)
    assert (alert.rule_id, alert.rule_version) == ("phq9-severe", pack.version + 1)

    # Switch a pack rule off for the clinic.
    item9 = next(r for r in default_pack() if r.id == "phq9-item9-positive")
    off = {**item9.model_dump(mode="json"), "enabled": False}
    assert (
        await h.client.put(f"{RULES}/phq9-item9-positive", json=off, headers=bearer(admin))
    ).status_code == 201
    ideation = phq9(0, 0, 0, 0, 0, 0, 0, 0, 1)
    assert (await submit(h, clinician, patient_id, "phq9", ideation)).status_code == 201
    await settle(h)
    assert [a.rule_id for a in await alerts_of(h, patient_id)] == ["phq9-severe"]

    assert (await h.client.delete(f"{RULES}/phq9-severe", headers=bearer(admin))).status_code == 204
    restored = await h.client.get(f"{RULES}/phq9-severe", headers=bearer(admin))
    assert restored.json()["origin"] == "pack"
    assert restored.json()["definition"]["condition"]["value"] == 20
    pack_only = await h.client.delete(f"{RULES}/gad7-severe", headers=bearer(admin))
    assert pack_only.status_code == 409
    assert pack_only.json()["code"] == "pack_rule"
    assert (await h.client.delete(f"{RULES}/no-such", headers=bearer(admin))).status_code == 404
    async with h.runtime.db.session(system=True) as session:
        actions = (await session.scalars(select(AuditEvent.action))).all()
    assert actions.count("alert_rule.create") == 3
    assert actions.count("alert_rule.update") == 1
    assert actions.count("alert_rule.delete") == 1


async def test_dry_run_reports_the_firings_of_a_prepared_series(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    day0 = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0) - timedelta(days=10)
    # Resting heart rate above 100 on days 1-3 and 5-8: two runs of three days or more.
    values = [90.0, 105, 106, 107, 95, 101, 102, 103, 104, 80]
    response = await send(
        h,
        clinician,
        patient_id,
        "rhr",
        readings("resting_heart_rate", day0, values, timedelta(days=1)),
    )
    assert response.status_code == 201
    await settle(h)

    by_id = {"rule_id": "resting-tachycardia-sustained", "patient_id": patient_id, "days": 30}
    response = await h.client.post(f"{RULES}/dry-run", json=by_id, headers=bearer(clinician))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["applies"] is True
    fired = [(f["fired_at"], f["episode_start"], f["severity"]) for f in body["firings"]]
    third, seventh = (day0 + timedelta(days=n) for n in (3, 7))
    assert [(datetime.fromisoformat(a), datetime.fromisoformat(b), s) for a, b, s in fired] == [
        (third, third, "warning"),
        (seventh, seventh, "warning"),
    ]
    assert "resting_heart_rate > 100" in body["firings"][0]["summary"]

    # The same condition with a week's cooldown: the second run is inside it and ends first.
    pack = next(r for r in default_pack() if r.id == "resting-tachycardia-sustained")
    weekly = {**pack.model_dump(mode="json"), "id": "rhr-weekly", "cooldown": "7d"}
    inline = {"rule": weekly, "patient_id": patient_id, "days": 30}
    response = await h.client.post(f"{RULES}/dry-run", json=inline, headers=bearer(clinician))
    assert [datetime.fromisoformat(f["fired_at"]) for f in response.json()["firings"]] == [third]
    # Only the last five days: the firing on day 7 (dry runs count earlier firings too).
    recent = {**by_id, "days": 5}
    response = await h.client.post(f"{RULES}/dry-run", json=recent, headers=bearer(clinician))
    assert [datetime.fromisoformat(f["fired_at"]) for f in response.json()["firings"]] == [seventh]

    # Dry runs write no alerts beyond those the pipeline raised, and are audited.
    async with h.runtime.db.session(system=True) as session:
        stored = (await session.scalars(select(Alert.fired_at))).all()
        audited = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "alert_rule.dry_run",
                    AuditEvent.resource_id == patient_id,
                )
            )
        ).all()
    assert sorted(stored) == [third, seventh]
    assert len(audited) == 3


async def test_dry_run_refusals(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    outsider = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    url = f"{RULES}/dry-run"
    by_id = {"rule_id": "phq9-severe", "patient_id": patient_id}
    off_team = await h.client.post(url, json=by_id, headers=bearer(outsider))
    assert off_team.status_code == 404
    assert off_team.json()["code"] == "not_found"
    missing = await h.client.post(
        url, json={**by_id, "patient_id": str(uuid.uuid4())}, headers=bearer(clinician)
    )
    assert missing.status_code == 404
    assert {k: v for k, v in missing.json().items() if k != "request_id"} == {
        k: v for k, v in off_team.json().items() if k != "request_id"
    }
    both = await h.client.post(
        url, json={**by_id, "rule": custom_rule()}, headers=bearer(clinician)
    )
    assert both.status_code == 422
    unknown = await h.client.post(
        url, json={**by_id, "rule_id": "no-such"}, headers=bearer(clinician)
    )
    assert unknown.status_code == 404
    malformed = await h.client.post(
        url,
        json={"rule": custom_rule(cooldown="soon"), "patient_id": patient_id},
        headers=bearer(clinician),
    )
    assert malformed.status_code == 422
    assert [e["field"] for e in malformed.json()["errors"]] == ["rule.cooldown"]
    too_long = await h.client.post(url, json={**by_id, "days": 1000}, headers=bearer(clinician))
    assert too_long.status_code == 422
    empty = await h.client.post(url, json=by_id, headers=bearer(clinician))
    assert empty.status_code == 200
    assert empty.json()["firings"] == []
    async with h.runtime.db.session(system=True) as session:
        denied = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "patient.access", AuditEvent.outcome == "denied"
                )
            )
        ).all()
    assert len(denied) >= 2
