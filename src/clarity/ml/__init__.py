"""Machine-learning models on the engine's features, and their subject-level evaluation.

Import-light on purpose: importing ``clarity.ml`` loads nothing heavy. ``evaluation`` is pure
numpy; ``dataset`` and ``boosted`` load xgboost/scikit-learn only when imported themselves;
torch is never imported from here (the PAT networks live in their own subpackage).
"""
