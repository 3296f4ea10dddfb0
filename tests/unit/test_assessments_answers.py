"""Incomplete or invalid answer sets are rejected naming the item id, never the answer.

The shipped instruments carry no prorating rule (none was found in their scoring sources),
so a missing item is always an error for them. The prorating mechanism itself is checked
with a test-only copy of the PHQ-9 definition that declares a rule: that fixture is not a
clinical claim, only a way to prove the code honours a rule when a file carries one.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from clarity.assessments.catalog import Instrument, get_instrument, parse_instrument
from clarity.assessments.scoring import (
    InvalidAnswerError,
    MissingAnswerError,
    UnknownItemError,
    score,
)


def complete(instrument_id: str, value: int = 1) -> dict[str, Any]:
    return {i: value for i in get_instrument(instrument_id).item_ids}


def test_missing_item_is_rejected_naming_it() -> None:
    answers = complete("phq9")
    del answers["phq9_9"]
    with pytest.raises(MissingAnswerError) as info:
        score(get_instrument("phq9"), answers)
    assert info.value.item_ids == ("phq9_9",)
    assert "phq9_9" in str(info.value)


def test_every_missing_item_is_named_in_item_order() -> None:
    answers = complete("gad7")
    del answers["gad7_6"]
    del answers["gad7_2"]
    with pytest.raises(MissingAnswerError) as info:
        score(get_instrument("gad7"), answers)
    assert info.value.item_ids == ("gad7_2", "gad7_6")


def test_empty_answer_set_is_rejected() -> None:
    with pytest.raises(MissingAnswerError) as info:
        score(get_instrument("phq2"), {})
    assert info.value.item_ids == ("phq2_1", "phq2_2")


@pytest.mark.parametrize("bad", [17, -1, 4])
def test_out_of_range_answer_names_the_item_but_not_the_value(bad: int) -> None:
    answers = complete("phq9")
    answers["phq9_3"] = bad
    with pytest.raises(InvalidAnswerError) as info:
        score(get_instrument("phq9"), answers)
    assert info.value.item_ids == ("phq9_3",)
    message = str(info.value)
    assert "phq9_3" in message
    assert "allowed 0-3" in message
    assert str(bad) not in message.replace("phq9_3", "").replace("0-3", "")


@pytest.mark.parametrize("bad", [True, 2.0, "2", None])
def test_non_integer_answers_are_rejected(bad: Any) -> None:
    answers = complete("who5")
    answers["who5_2"] = bad
    with pytest.raises(InvalidAnswerError, match=r"who5_2 must be an integer"):
        score(get_instrument("who5"), answers)


def test_unknown_item_id_is_rejected_and_named() -> None:
    answers = complete("phq2")
    answers["phq2_3"] = 1
    with pytest.raises(UnknownItemError, match=r"phq2_3 is not in this instrument"):
        score(get_instrument("phq2"), answers)


def test_unknown_key_that_is_not_an_id_is_not_echoed() -> None:
    """A caller's free text in a key may be patient speech; it never reaches the message."""
    answers = complete("phq2")
    answers["I have felt hopeless since my divorce"] = 2
    with pytest.raises(UnknownItemError) as info:
        score(get_instrument("phq2"), answers)
    assert "divorce" not in str(info.value)
    assert info.value.item_ids == ()


def prorating_fixture(max_missing: int) -> Instrument:
    path = resources.files("clarity.assessments") / "instruments" / "phq9.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["prorating"] = {
        "max_missing_items": max_missing,
        "rounding": "nearest_half_up",
        "source": {"authors": "Test fixture", "year": 2000, "title": "Not a clinical rule"},
    }
    return parse_instrument(json.dumps(data), "fixture.json")


def test_prorating_uses_the_mean_of_answered_items_rounded_half_up() -> None:
    inst = prorating_fixture(max_missing=1)
    answers = {i: 1 for i in inst.item_ids}
    answers["phq9_1"] = 3  # answered sum 10 over 8 items
    del answers["phq9_5"]
    result = score(inst, answers)
    assert result.prorated
    assert result.answered == 8
    assert result.total == 11  # 10 / 8 * 9 = 11.25
    assert [i.item_id for i in result.items if i.imputed] == ["phq9_5"]
    assert result.items[4].value is None

    answers["phq9_2"] = 3  # answered sum 12 over 8 items: 13.5 rounds up to 14
    assert score(inst, answers).total == 14


def test_prorating_refuses_more_missing_items_than_the_rule_allows() -> None:
    inst = prorating_fixture(max_missing=1)
    answers = {i: 1 for i in inst.item_ids}
    del answers["phq9_1"]
    del answers["phq9_2"]
    with pytest.raises(MissingAnswerError, match=r"at most 1 may be missing"):
        score(inst, answers)


def test_prorating_never_fills_in_a_safety_item() -> None:
    """A blank item 9 must not be read as 'no thoughts of self-harm'."""
    inst = prorating_fixture(max_missing=2)
    answers = {i: 1 for i in inst.item_ids}
    del answers["phq9_9"]
    with pytest.raises(MissingAnswerError, match=r"phq9_9 .*safety item"):
        score(inst, answers)
