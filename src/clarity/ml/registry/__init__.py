"""The model registry: versioned artifacts with their metadata and model card, promotion.

Only a promoted version of a name is served (:func:`service.promoted_model`). Names are
constants here so that training, serving and tests agree on them; importing this package
loads nothing else.
"""

from typing import Final

DEPRESSION_CLASSIFIER: Final = "depression-classifier"
MADRS_REGRESSOR: Final = "madrs-regressor"
DEPRESSION_PAT_S: Final = "depression-pat-s"

BOOSTED_CLASSIFIER: Final = "boosted-classifier"
BOOSTED_REGRESSOR: Final = "boosted-regressor"
PAT_ONNX: Final = "pat-onnx"
KINDS: Final = frozenset({BOOSTED_CLASSIFIER, BOOSTED_REGRESSOR, PAT_ONNX})

__all__ = [
    "BOOSTED_CLASSIFIER",
    "BOOSTED_REGRESSOR",
    "DEPRESSION_CLASSIFIER",
    "DEPRESSION_PAT_S",
    "KINDS",
    "MADRS_REGRESSOR",
    "PAT_ONNX",
]
