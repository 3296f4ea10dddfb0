"""The formats by name; each reader module adds its :class:`Format` here."""

from __future__ import annotations

from clarity.biometrics.formats import Format

FORMATS: dict[str, Format] = {}
