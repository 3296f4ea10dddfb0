"""Psychiatric medication catalogue: data integrity, lookups, units and frequencies."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from clarity.clinical import medications as meds
from clarity.clinical.medications import Catalogue, UnknownTermError, normalize_term


def _raw() -> dict[str, Any]:
    text = resources.files("clarity.clinical").joinpath("medications.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_catalogue_loads_with_enough_medications() -> None:
    catalogue = meds.catalogue()
    assert len(catalogue.medications) >= 60
    assert catalogue.units
    assert catalogue.frequencies
    assert meds.catalogue() is catalogue  # loaded once


def test_every_medication_has_a_declared_class_and_every_class_is_used() -> None:
    catalogue = meds.catalogue()
    used = {m.drug_class for m in catalogue.medications}
    assert used == set(catalogue.drug_classes)
    for expected in ("SSRI", "SNRI", "atypical antipsychotic", "mood stabilizer", "stimulant"):
        assert expected in used


def test_covers_the_main_psychiatric_groups() -> None:
    classes = {m.generic_name: m.drug_class for m in meds.medications()}
    assert classes["sertraline"] == "SSRI"
    assert classes["venlafaxine"] == "SNRI"
    assert classes["lithium"] == "mood stabilizer"
    assert classes["haloperidol"] == "typical antipsychotic"
    assert classes["lorazepam"] == "benzodiazepine"
    assert classes["lisdexamfetamine"] == "stimulant"
    assert classes["atomoxetine"] == "non-stimulant ADHD medication"
    assert classes["naltrexone"] == "opioid antagonist"
    assert classes["esketamine"] == "NMDA receptor antagonist"


def test_no_name_or_alias_is_used_twice() -> None:
    seen: dict[str, str] = {}
    for medication in meds.medications():
        for name in medication.names:
            key = normalize_term(name)
            assert seen.setdefault(key, medication.generic_name) == medication.generic_name, name
    generic = [m.generic_name for m in meds.medications()]
    assert len(generic) == len(set(generic))


def test_rxcuis_are_unique_numeric_and_sourced() -> None:
    catalogue = meds.catalogue()
    rxcuis = [m.rxcui for m in catalogue.medications if m.rxcui is not None]
    assert len(rxcuis) == len(set(rxcuis))
    for medication in catalogue.medications:
        if medication.rxcui is None:
            assert medication.rxcui_sources == ()
        else:
            assert medication.rxcui.isdigit()
            assert medication.rxcui_sources
            assert set(medication.rxcui_sources) <= set(catalogue.rxcui_sources)


def test_known_ingredient_rxcuis() -> None:
    assert meds.lookup("sertraline").rxcui == "36437"
    assert meds.lookup("fluoxetine").rxcui == "4493"
    assert meds.lookup("lithium").rxcui == "6448"
    assert meds.lookup_rxcui(" 36437 ") == meds.lookup("Zoloft")
    assert meds.lookup_rxcui("999999999") is None


@pytest.mark.parametrize(
    ("name", "generic"),
    [
        ("sertraline", "sertraline"),
        ("Zoloft", "sertraline"),
        ("ZOLOFT", "sertraline"),
        ("  lexapro ", "escitalopram"),
        ("Invega   Sustenna", "paliperidone"),
        ("adzenys xr-odt", "amphetamine"),
        ("Adderall XR", "mixed amphetamine salts"),
        ("valproate", "valproic acid"),
        ("Depakote", "divalproex sodium"),
        ("divalproex sodium", "divalproex sodium"),
        ("Suboxone", "buprenorphine and naloxone"),
    ],
)
def test_lookup_by_generic_brand_or_synonym(name: str, generic: str) -> None:
    assert meds.lookup(name).generic_name == generic


@pytest.mark.parametrize(
    ("name", "generic"),
    [
        ("quetiapine fumarate", "quetiapine"),
        ("Sertraline Hydrochloride", "sertraline"),
        ("haloperidol decanoate", "haloperidol"),
        ("lithium carbonate", "lithium"),
    ],
)
def test_lookup_drops_salt_words(name: str, generic: str) -> None:
    assert meds.lookup(name).generic_name == generic


def test_a_salt_word_alone_is_not_a_medication() -> None:
    with pytest.raises(UnknownTermError):
        meds.lookup("sodium")


def test_unknown_name_suggests_close_matches_without_echoing_input() -> None:
    with pytest.raises(UnknownTermError) as caught:
        meds.lookup("sertralene")
    assert "sertraline" in caught.value.suggestions
    assert caught.value.kind == "medication"
    message = str(caught.value)
    assert "did you mean" in message
    assert "sertraline" in message
    assert "sertralene" not in message

    with pytest.raises(UnknownTermError) as brand:
        meds.lookup("zolof")
    assert brand.value.suggestions[0] == "Zoloft"


def test_unknown_name_without_close_matches() -> None:
    with pytest.raises(LookupError, match=r"^unknown medication$") as caught:
        meds.lookup("qqqqqqqq")
    assert isinstance(caught.value, UnknownTermError)
    assert caught.value.suggestions == ()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("mg", "mg"),
        ("MG", "mg"),
        ("mcg", "mcg"),
        ("\u00b5g", "mcg"),  # micro sign
        ("\u03bcg", "mcg"),  # Greek mu
        ("ug", "mcg"),
        ("ml", "mL"),
        ("drops", "drop"),
        ("gtt", "drop"),
        ("patch", "patch"),
        ("mEq", "mEq"),
    ],
)
def test_unit_lookup(name: str, code: str) -> None:
    assert meds.lookup_unit(name).code == code


def test_units_carry_ucum_where_they_are_measures() -> None:
    assert meds.lookup_unit("mcg").ucum == "ug"
    assert meds.lookup_unit("mL").kind == "volume"
    assert meds.lookup_unit("tablet").ucum is None
    with pytest.raises(UnknownTermError) as caught:
        meds.lookup_unit("mgs")
    assert "mg" in caught.value.suggestions


@pytest.mark.parametrize(
    ("name", "code", "per_period", "period", "unit"),
    [
        ("daily", "daily", 1, 1, "d"),
        ("QD", "daily", 1, 1, "d"),
        ("b.i.d.", "BID", 2, 1, "d"),
        ("TID", "TID", 3, 1, "d"),
        ("qid", "QID", 4, 1, "d"),
        ("q.h.s.", "QHS", 1, 1, "d"),
        ("at bedtime", "QHS", 1, 1, "d"),
        ("Q8H", "Q8H", 1, 8, "h"),
        ("weekly", "weekly", 1, 1, "wk"),
        ("every 4 weeks", "Q4W", 1, 4, "wk"),
        ("every 3 months", "Q3MO", 1, 3, "mo"),
    ],
)
def test_frequency_lookup(name: str, code: str, per_period: int, period: float, unit: str) -> None:
    frequency = meds.lookup_frequency(name)
    assert (frequency.code, frequency.frequency, frequency.period, frequency.period_unit) == (
        code,
        per_period,
        period,
        unit,
    )


def test_as_needed_and_bedtime() -> None:
    prn = meds.lookup_frequency("PRN")
    assert prn.as_needed
    assert prn.frequency is None
    assert prn.period is None
    assert meds.lookup_frequency("QHS").when == "HS"
    with pytest.raises(UnknownTermError):
        meds.lookup_frequency("sometimes")


def test_validation_rejects_an_unknown_class() -> None:
    data = _raw()
    data["medications"][0]["drug_class"] = "miracle drug"
    with pytest.raises(ValidationError, match="unknown drug class"):
        Catalogue.model_validate(data)


def test_validation_rejects_an_alias_used_twice() -> None:
    data = _raw()
    data["medications"][1]["brands"].append(" zoloft ")
    with pytest.raises(ValidationError, match="used by two entries"):
        Catalogue.model_validate(data)


def test_validation_rejects_an_unsourced_rxcui() -> None:
    data = _raw()
    data["medications"][0]["rxcui_sources"] = []
    with pytest.raises(ValidationError, match="needs its sources"):
        Catalogue.model_validate(data)


def test_validation_rejects_a_malformed_rxcui() -> None:
    data = _raw()
    data["medications"][0]["rxcui"] = "RX36437"
    with pytest.raises(ValidationError):
        Catalogue.model_validate(data)


def test_validation_rejects_an_incomplete_schedule() -> None:
    data = _raw()
    data["frequencies"][0]["period_unit"] = None
    with pytest.raises(ValidationError, match="go together"):
        Catalogue.model_validate(data)


def test_shipped_file_validates_as_is() -> None:
    assert Catalogue.model_validate(_raw()) == meds.catalogue()
