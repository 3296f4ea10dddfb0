"""FHIR exchange: a patient's record as a FHIR R4 (R4B models) Bundle, out and in."""
