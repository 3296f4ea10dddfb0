"""Reading a binary file as lines of text, for the CSV-like formats.

Text is decoded as UTF-8 (a byte-order mark is dropped); bytes that are not UTF-8 become
U+FFFD, so one bad byte spoils only its own line, which its reader then yields as ``None``.
Lines are bounded (:func:`bounded_lines`): a file with no line breaks, such as a binary file
given as CSV, is never held whole. The wrapper is detached at the end, so the caller's file
stays open and usable.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

MAX_LINE_CHARS = 1 << 20
# Stands for a line longer than MAX_LINE_CHARS (read past, never held); the csv module
# reads it as the one-cell row [OVERLONG].
OVERLONG = "\x00"
OVERLONG_LINE = OVERLONG + "\n"


@contextmanager
def text_lines(file: BinaryIO) -> Iterator[io.TextIOWrapper]:
    """The file as text with universal newlines (``\\n``, ``\\r\\n`` and ``\\r``)."""
    wrapper = io.TextIOWrapper(file, encoding="utf-8-sig", errors="replace", newline=None)
    try:
        yield wrapper
    finally:
        with suppress(ValueError):  # already detached or closed by the caller
            wrapper.detach()


def bounded_lines(text: io.TextIOWrapper, limit: int | None = None) -> Iterator[str]:
    """The remaining lines, each of at most ``limit`` (default :data:`MAX_LINE_CHARS`)
    characters; a longer one is skipped piece by piece and stands as :data:`OVERLONG_LINE`."""
    limit = limit or MAX_LINE_CHARS
    while line := text.readline(limit):
        if line.endswith("\n") or len(line) < limit:
            yield line
            continue
        while (rest := text.readline(limit)) and not rest.endswith("\n"):
            pass
        yield OVERLONG_LINE
