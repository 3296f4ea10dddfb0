"""Instrument data files load, validate and ship; malformed files fail naming file and field."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from clarity.assessments.catalog import (
    Catalog,
    InstrumentDefinitionError,
    UnknownInstrumentError,
    get_instrument,
    list_instruments,
    load_instrument_file,
)

SHIPPED = {"phq9", "phq8", "phq2", "gad7", "gad2", "who5", "madrs", "asrm"}
REPO = Path(__file__).resolve().parents[2]


def shipped_dict(instrument_id: str) -> dict[str, Any]:
    path = resources.files("clarity.assessments") / "instruments" / f"{instrument_id}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_every_shipped_instrument_loads_and_is_listed_in_id_order() -> None:
    ids = [i.id for i in list_instruments()]
    assert set(ids) == SHIPPED
    assert ids == sorted(ids)


def test_get_instrument_by_id_and_unknown_id() -> None:
    assert get_instrument("gad7").abbreviation == "GAD-7"
    with pytest.raises(UnknownInstrumentError, match="nope"):
        get_instrument("nope")


def test_respondents_item_counts_and_ranges_match_the_published_instruments() -> None:
    """Item counts and per-item ranges from the sources cited in each file."""
    expected = {
        "phq9": ("self", 9, 0, 27),
        "phq8": ("self", 8, 0, 24),
        "phq2": ("self", 2, 0, 6),
        "gad7": ("self", 7, 0, 21),
        "gad2": ("self", 2, 0, 6),
        "who5": ("self", 5, 0, 25),
        "madrs": ("clinician", 10, 0, 60),
        "asrm": ("self", 5, 0, 20),
    }
    for iid, (respondent, n_items, lo, hi) in expected.items():
        inst = get_instrument(iid)
        assert (inst.respondent, len(inst.items)) == (respondent, n_items), iid
        assert (inst.score_range.min, inst.score_range.max) == (lo, hi), iid


def test_only_verified_loinc_codes_are_filled_in() -> None:
    codes = {i.id: (i.loinc.panel, i.loinc.total_score) for i in list_instruments()}
    assert codes["phq9"] == ("44249-1", "44261-6")
    assert codes["phq2"] == ("55757-9", "55758-7")
    assert codes["gad7"] == ("69737-5", "70274-6")
    for iid in ("phq8", "gad2", "who5", "madrs", "asrm"):
        assert codes[iid] == (None, None), iid
    for inst in list_instruments():
        if inst.loinc.panel or inst.loinc.total_score:
            assert inst.loinc.verified_source


def test_reliable_change_thresholds_only_where_a_source_defines_one() -> None:
    with_threshold = {i.id for i in list_instruments() if i.reliable_change}
    assert with_threshold == {"phq9", "gad7", "who5"}
    who5 = get_instrument("who5").reliable_change
    assert who5 is not None
    assert (who5.threshold, who5.scale) == (10, "transformed")


def test_no_shipped_instrument_prorates_and_only_phq9_has_a_safety_rule() -> None:
    """No prorating rule was verified in any scoring source, so none is shipped."""
    assert all(i.prorating is None for i in list_instruments())
    assert {i.id for i in list_instruments() if i.safety_rules} == {"phq9"}


def test_json_files_are_declared_as_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert (
        "assessments/instruments/*.json" in config["tool"]["setuptools"]["package-data"]["clarity"]
    )
    shipped = resources.files("clarity.assessments") / "instruments"
    assert {p.name for p in shipped.iterdir() if p.name.endswith(".json")} == {
        f"{i}.json" for i in SHIPPED
    }


def test_the_module_imports_no_web_database_or_auth_layer() -> None:
    code = (
        "import sys, clarity.assessments.catalog, clarity.assessments.scoring\n"
        "clarity.assessments.catalog.list_instruments()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', "
        "'starlette') or m.startswith(('clarity.auth', 'clarity.database'))]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


Mutation = Callable[[dict[str, Any]], None]


def _set(path: list[str | int], value: Any) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        target: Any = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


def _drop(key: str) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        del d[key]

    return apply


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_set(["items", 2, "options", 3, "value"], "3"), "items[2].options[3].value"),
        (_set(["items", 0, "colour"], "red"), "items[0].colour"),
        (_drop("citation"), "citation"),
        (_set(["loinc", "total_score"], "44261"), "loinc.total_score"),
        (_set(["loinc", "verified_source"], None), "verified_source is required"),
        (_set(["score_range", "max"], 30), "score_range"),
        (_set(["severity", "bands", 1, "min"], 6), "severity.bands[1]"),
        (_set(["severity", "bands", 4, "max"], 26), "severity.bands: must cover score_range"),
        (_set(["safety_rules", 0, "item_id"], "phq9_99"), "safety_rules[0]"),
        (_set(["respondent"], "parent"), "respondent"),
    ],
)
def test_malformed_file_error_names_the_file_and_the_field(
    tmp_path: Path, mutate: Mutation, field: str
) -> None:
    data = shipped_dict("phq9")
    mutate(data)
    path = tmp_path / "phq9.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError) as info:
        load_instrument_file(path)
    assert "phq9.json" in str(info.value)
    assert field in str(info.value)


def test_unparseable_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gad7.json"
    path.write_text('{"id": "gad7",', encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=r"gad7\.json"):
        load_instrument_file(path)


def test_file_must_be_named_after_its_id(tmp_path: Path) -> None:
    path = tmp_path / "depression.json"
    path.write_text(json.dumps(shipped_dict("phq9")), encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=r"depression\.json.*phq9\.json"):
        load_instrument_file(path)


def test_one_bad_file_stops_the_whole_catalog_and_is_named(tmp_path: Path) -> None:
    for iid in ("phq9", "gad7"):
        (tmp_path / f"{iid}.json").write_text(json.dumps(shipped_dict(iid)), encoding="utf-8")
    bad = shipped_dict("who5")
    bad["items"][4]["options"][0]["value"] = 6  # raw range no longer 0-25
    (tmp_path / "who5.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=r"who5\.json.*score_range"):
        Catalog.from_directory(tmp_path)


def test_catalog_refuses_two_definitions_with_one_id() -> None:
    phq9 = get_instrument("phq9")
    with pytest.raises(InstrumentDefinitionError, match="defined twice"):
        Catalog([phq9, phq9])
