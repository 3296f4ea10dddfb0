"""Clarity: open backend for a psychiatric digital twin."""

__version__ = "0.1.0"
