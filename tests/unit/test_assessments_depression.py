"""PHQ-9, PHQ-8 and PHQ-2 scoring against their published rules, including every band edge.

Sources: Kroenke, Spitzer & Williams 2001 (J Gen Intern Med 16:606-613) for the PHQ-9 sum
of nine 0-3 items and cut-points 5/10/15/20; Kroenke et al. 2009 (J Affect Disord
114:163-173) for the PHQ-8 (same cut-points, range 0-24); Kroenke, Spitzer & Williams 2003
(Med Care 41:1284-1292) for the PHQ-2 cut-point of 3.
"""

from __future__ import annotations

import pytest

from clarity.assessments.catalog import Instrument, get_instrument
from clarity.assessments.scoring import score


def answers_summing_to(instrument: Instrument, total: int) -> dict[str, int]:
    """Fill items in order, each up to its maximum, until the total is reached."""
    items = list(instrument.items)
    out: dict[str, int] = {}
    left = total
    for item in items:
        v = min(item.max_value, left)
        out[item.id] = v
        left -= v
    assert left == 0
    return out


PHQ9_EDGES = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately_severe"),
    (19, "moderately_severe"),
    (20, "severe"),
    (27, "severe"),
]


@pytest.mark.parametrize(("total", "band"), PHQ9_EDGES)
def test_phq9_every_band_edge(total: int, band: str) -> None:
    """Kroenke 2001: 0-4 none/minimal, 5-9 mild, 10-14 moderate, 15-19 mod. severe, 20-27."""
    phq9 = get_instrument("phq9")
    result = score(phq9, answers_summing_to(phq9, total))
    assert result.total == total
    assert result.severity_code == band
    assert result.transformed_total is None


def test_phq9_all_nearly_every_day_scores_27_severe_with_safety_signal() -> None:
    """Worked example: MII PRO FHIR IG PHQ-9 response, all items 'Nearly every day', total 27."""
    phq9 = get_instrument("phq9")
    result = score(phq9, {i: 3 for i in phq9.item_ids})
    assert (result.total, result.severity_label) == (27, "Severe")
    assert result.safety_signal
    assert [i.value for i in result.items] == [3] * 9
    assert not result.prorated
    assert result.answered == 9


def test_phq9_item9_above_zero_flags_safety_even_when_total_is_minimal() -> None:
    """Item 9 (thoughts of death or self-harm) > 0 is a safety signal whatever the total."""
    phq9 = get_instrument("phq9")
    answers = {i: 0 for i in phq9.item_ids}
    answers["phq9_9"] = 1
    result = score(phq9, answers)
    assert result.total == 1
    assert result.severity_code == "minimal"
    assert result.safety_signal
    assert [(f.code, f.item_id) for f in result.safety_flags] == [("phq9_item9_positive", "phq9_9")]


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_every_positive_item9_answer_flags(item9: int) -> None:
    phq9 = get_instrument("phq9")
    answers = answers_summing_to(phq9, 10)
    answers["phq9_9"] = item9
    assert score(phq9, answers).safety_signal


def test_phq9_high_total_without_item9_raises_no_safety_signal() -> None:
    phq9 = get_instrument("phq9")
    answers = answers_summing_to(phq9, 24)  # items 1-8 all 3, item 9 = 0
    assert answers["phq9_9"] == 0
    result = score(phq9, answers)
    assert result.severity_code == "severe"
    assert not result.safety_signal
    assert result.safety_flags == ()


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately_severe"),
        (19, "moderately_severe"),
        (20, "severe"),
        (24, "severe"),
    ],
)
def test_phq8_every_band_edge(total: int, band: str) -> None:
    """Kroenke 2009: PHQ-8 uses the PHQ-9 cut-points on a 0-24 range."""
    phq8 = get_instrument("phq8")
    result = score(phq8, answers_summing_to(phq8, total))
    assert (result.total, result.severity_code) == (total, band)
    assert not result.safety_signal


@pytest.mark.parametrize(
    ("total", "band"), [(0, "negative"), (2, "negative"), (3, "positive"), (6, "positive")]
)
def test_phq2_cutpoint_of_three(total: int, band: str) -> None:
    """Kroenke 2003: a PHQ-2 score of 3 or more is a positive screen."""
    phq2 = get_instrument("phq2")
    assert score(phq2, answers_summing_to(phq2, total)).severity_code == band


def test_item_detail_keeps_each_answer_in_item_order() -> None:
    phq2 = get_instrument("phq2")
    result = score(phq2, {"phq2_2": 1, "phq2_1": 3})
    assert [(i.item_id, i.value, i.imputed) for i in result.items] == [
        ("phq2_1", 3, False),
        ("phq2_2", 1, False),
    ]
    assert result.instrument_id == "phq2"
    assert result.instrument_version == phq2.version
