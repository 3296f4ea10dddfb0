"""Clinical reference data and code checks (pure: no web, no database).

- :mod:`clarity.clinical.icd10` checks and normalises the form of ICD-10-CM diagnosis codes.
- :mod:`clarity.clinical.medications` is a curated catalogue of psychiatric medications,
  with the dose units and frequencies a medication statement may use.
"""
