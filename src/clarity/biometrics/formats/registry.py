"""The formats by name; each reader module adds its :class:`Format` here."""

from __future__ import annotations

from clarity.biometrics.formats import (
    Format,
    actigraph,
    apple_health,
    depresjon,
    fhir,
    fitbit,
    generic_csv,
    open_mhealth,
)

FORMATS: dict[str, Format] = {
    module.FORMAT.name: module.FORMAT
    for module in (depresjon, actigraph, apple_health, fitbit, fhir, open_mhealth, generic_csv)
}
