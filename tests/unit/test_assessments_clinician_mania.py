"""MADRS (clinician-rated) and ASRM (self-rated mania) scoring, every band edge.

Sources: Montgomery & Åsberg 1979 (Br J Psychiatry 134:382-389) for ten items rated 0-6,
summed to 0-60; the commonly used bands 0-6 / 7-19 / 20-34 / 35-60 from Snaith et al. 1986
(Br J Psychiatry 148:599-601). Altman et al. 1997 (Biol Psychiatry 42:948-955) for five
items rated 0-4 and the cut-off: scores greater than 5 (>= 6) suggest mania or hypomania.
"""

from __future__ import annotations

import pytest

from clarity.assessments.catalog import get_instrument
from clarity.assessments.scoring import InvalidAnswerError, score
from tests.unit.test_assessments_depression import answers_summing_to


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "normal"),
        (6, "normal"),
        (7, "mild"),
        (19, "mild"),
        (20, "moderate"),
        (34, "moderate"),
        (35, "severe"),
        (60, "severe"),
    ],
)
def test_madrs_every_band_edge(total: int, band: str) -> None:
    madrs = get_instrument("madrs")
    result = score(madrs, answers_summing_to(madrs, total))
    assert (result.total, result.severity_code) == (total, band)


def test_madrs_is_clinician_rated_and_accepts_between_anchor_ratings() -> None:
    """Raters may score between the defined anchors (odd values 1, 3, 5)."""
    madrs = get_instrument("madrs")
    assert madrs.respondent == "clinician"
    result = score(madrs, {i: 3 for i in madrs.item_ids})
    assert (result.total, result.severity_code) == (30, "moderate")


def test_madrs_rejects_a_rating_of_seven() -> None:
    madrs = get_instrument("madrs")
    answers = {i: 0 for i in madrs.item_ids}
    answers["madrs_4"] = 7
    with pytest.raises(InvalidAnswerError, match=r"madrs_4 .*allowed 0-6"):
        score(madrs, answers)


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "below_cutoff"), (5, "below_cutoff"), (6, "possible_mania"), (20, "possible_mania")],
)
def test_asrm_cutoff_of_six(total: int, band: str) -> None:
    asrm = get_instrument("asrm")
    result = score(asrm, answers_summing_to(asrm, total))
    assert (result.total, result.severity_code) == (total, band)


def test_asrm_rejects_a_rating_of_five() -> None:
    asrm = get_instrument("asrm")
    answers = {i: 1 for i in asrm.item_ids}
    answers["asrm_3"] = 5
    with pytest.raises(InvalidAnswerError, match=r"asrm_3 .*allowed 0-4"):
        score(asrm, answers)
