"""GAD-7, GAD-2 and WHO-5 scoring against their published rules, including every band edge.

Sources: Spitzer et al. 2006 (Arch Intern Med 166:1092-1097) for the GAD-7 sum of seven 0-3
items and cut-points 5/10/15; Kroenke et al. 2007 (Ann Intern Med 146:317-325) and Kroenke
et al. 2010 (Gen Hosp Psychiatry 32:345-359) for the GAD-2 cut-point of 3; the WHO-5 scoring
sheet (Psychiatric Research Unit, Frederiksborg, 1998) for raw 0-25, percentage = raw x 4 and
raw < 13 as poor well-being, and Topp et al. 2015 (Psychother Psychosom 84:167-176) for the
percentage cut-offs 50 and 28.
"""

from __future__ import annotations

import pytest

from clarity.assessments.catalog import get_instrument
from clarity.assessments.scoring import score
from tests.unit.test_assessments_depression import answers_summing_to


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_every_band_edge(total: int, band: str) -> None:
    """Spitzer 2006: 0-4 minimal, 5-9 mild, 10-14 moderate, 15-21 severe."""
    gad7 = get_instrument("gad7")
    result = score(gad7, answers_summing_to(gad7, total))
    assert (result.total, result.severity_code) == (total, band)
    assert not result.safety_signal


@pytest.mark.parametrize(
    ("values", "total", "band"),
    [
        # MII PRO FHIR IG GAD-7 example response: total 7
        ((1, 1, 1, 2, 2, 0, 0), 7, "mild"),
        # PACIO sample data GAD-7 responses (Oct 2025: 7 'Mild'; Jan 2026: 4 'Minimal')
        ((1, 1, 1, 1, 0, 1, 2), 7, "mild"),
        ((1, 0, 0, 1, 0, 1, 1), 4, "minimal"),
    ],
)
def test_gad7_published_fhir_examples(values: tuple[int, ...], total: int, band: str) -> None:
    """Worked examples from HL7 FHIR implementation guides that show item answers and totals."""
    gad7 = get_instrument("gad7")
    result = score(gad7, dict(zip(gad7.item_ids, values, strict=True)))
    assert (result.total, result.severity_code) == (total, band)


@pytest.mark.parametrize(
    ("total", "band"), [(0, "negative"), (2, "negative"), (3, "positive"), (6, "positive")]
)
def test_gad2_cutpoint_of_three(total: int, band: str) -> None:
    gad2 = get_instrument("gad2")
    assert score(gad2, answers_summing_to(gad2, total)).severity_code == band


@pytest.mark.parametrize(
    ("raw", "percentage", "band"),
    [
        (0, 0, "likely_depression"),
        (7, 28, "likely_depression"),
        (8, 32, "poor_wellbeing"),
        (12, 48, "poor_wellbeing"),
        (13, 52, "not_indicated"),
        (25, 100, "not_indicated"),
    ],
)
def test_who5_raw_percentage_and_every_band_edge(raw: int, percentage: int, band: str) -> None:
    """WHO-5 sheet: percentage = raw x 4; raw < 13 poor well-being; Topp 2015: <=28 likely."""
    who5 = get_instrument("who5")
    result = score(who5, answers_summing_to(who5, raw))
    assert result.total == raw
    assert result.transformed_total == percentage
    assert result.severity_code == band


def test_who5_all_of_the_time_is_best_possible() -> None:
    """WHO-5 sheet: 'All of the time' scores 5 per item; 25 raw is 100%, best well-being."""
    who5 = get_instrument("who5")
    assert who5.items[0].options[0].label == "All of the time"
    assert who5.items[0].options[0].value == 5
    assert not who5.higher_is_worse
    result = score(who5, {i: 5 for i in who5.item_ids})
    assert (result.total, result.transformed_total) == (25, 100)
