"""ICD-10-CM diagnosis codes: checks of form, normalisation and the mental-health chapter.

Pure module (no web, no database). It checks the *form* of a code, not whether the code
exists in a given release of the code set: ``F32.9`` and ``F32.A`` pass, and so would a
well-formed code that CMS never published. Membership needs the yearly code files.

Form follows the conventions of the *ICD-10-CM Official Guidelines for Coding and
Reporting*, published by CMS and the CDC's National Center for Health Statistics (NCHS),
Section I.A "Conventions for the ICD-10-CM":

- I.A.2 Format and structure: categories have three characters, subcategories four or
  five, and codes three to seven; the characters of categories, subcategories and codes may
  be letters or numbers. In the published code set the first character is a letter, the
  second a digit, the third a digit or a letter (``C4A``, ``M1A``, ``Z3A``), the fourth to
  seventh digits or letters (``F32.A``), and a decimal point follows the third character
  (it is not counted as a character).
- I.A.4 Placeholder character: "X" is used as a placeholder at certain codes to allow for
  future expansion (e.g. the poisoning codes T36-T50: ``T36.0X1A``); where a placeholder
  exists, the X must be used for the code to be valid.
- I.A.5 7th characters: where a category has an applicable 7th character it must always be
  the 7th character of the code; a code that needs one but has fewer than six characters is
  filled with placeholder X's (``S03.4XXA``).

(Wording checked against public reproductions of the FY 2025 edition of Section I.A; the
CMS/CDC PDF itself was not available to check.)

From these, as far as form goes: a placeholder X only ever holds a position *before* further
characters, so a code shorter than seven characters cannot end in a placeholder X
(``S03.4XX`` lacks its 7th character). Which categories require a 7th character is a matter
of membership, not form, and is not checked here. Every letter is accepted in first
position: "U" was long reserved, but ICD-10-CM has used it since 2020 (``U07.1``).

Chapter 5, "Mental, Behavioral and Neurodevelopmental disorders", is F01-F99
(:func:`is_mental_behavioural`). Psychiatric records also routinely use codes from other
chapters, which that function deliberately does not claim: symptoms and signs involving
emotional state such as suicidal ideation (R45.851), sleep disorders (G47), Alzheimer's
disease (G30, with dementia coded in F02), poisoning by drugs including intentional
self-poisoning (T36-T50), intentional self-harm (X71-X83), and Z codes for psychosocial
circumstances (e.g. Z63, Z65).

Error messages include the code: a diagnosis code on its own is not PHI.
"""

from __future__ import annotations

MIN_LENGTH = 3
MAX_LENGTH = 7
PLACEHOLDER = "X"
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class InvalidICD10CodeError(ValueError):
    """A string that is not an ICD-10-CM code in form; ``str()`` says what is wrong."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code!r} is not a valid ICD-10-CM code: {reason}")


def _problem(cleaned: str) -> str | None:
    """Why a stripped, upper-cased code is malformed, or None when its form is valid."""
    if not cleaned:
        return "it is empty"
    for char in cleaned:
        if char not in _ALNUM and char != ".":
            return (
                f"it contains {char!r}; only letters, digits and one '.' after the third "
                "character are allowed"
            )
    if cleaned.count(".") > 1:
        return "it has more than one '.'; there is one, after the third character"
    compact = cleaned.replace(".", "")
    if not compact or not compact[0].isalpha():
        return "the first character must be a letter (the chapter letter, e.g. F32.9)"
    if len(compact) > 1 and not compact[1].isdigit():
        return "the second character must be a digit"
    dot_index = cleaned.find(".")
    if dot_index >= 0:
        if dot_index != MIN_LENGTH:
            return "the '.' must come right after the third character (e.g. F32.9)"
        if len(compact) == MIN_LENGTH:
            return "nothing follows the '.'; drop it or add the 4th to 7th characters"
    length = len(compact)
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        return (
            f"it has {length} character{'' if length == 1 else 's'} (not counting the '.'); "
            f"ICD-10-CM codes have {MIN_LENGTH} to {MAX_LENGTH}"
        )
    if MIN_LENGTH < length < MAX_LENGTH and compact[-1] == PLACEHOLDER:
        return (
            "it ends in the placeholder 'X', which only pads a code up to further "
            "characters: the 7th character is missing"
        )
    return None


def normalize(code: str) -> str:
    """The code in canonical form (upper case, '.' after the third character).

    Accepts surrounding whitespace, lower case and a missing '.' (``" f3181"`` gives
    ``"F31.81"``). Raises :class:`InvalidICD10CodeError` (a ``ValueError``) that says what
    is wrong when the form is not that of an ICD-10-CM code.
    """
    cleaned = code.strip().upper()
    reason = _problem(cleaned)
    if reason is not None:
        raise InvalidICD10CodeError(cleaned, reason)
    compact = cleaned.replace(".", "")
    if len(compact) == MIN_LENGTH:
        return compact
    return f"{compact[:MIN_LENGTH]}.{compact[MIN_LENGTH:]}"


def is_valid(code: str) -> bool:
    """Whether ``code`` has the form of an ICD-10-CM code (after normalisation)."""
    try:
        normalize(code)
    except InvalidICD10CodeError:
        return False
    return True


def category(code: str) -> str:
    """The three-character category of a code (``"F32.9"`` gives ``"F32"``)."""
    return normalize(code)[:MIN_LENGTH]


def is_mental_behavioural(code: str) -> bool:
    """Whether the code is in chapter 5, Mental, Behavioral and Neurodevelopmental disorders.

    That is, categories F01-F99. The code is normalised first, so a malformed code raises
    :class:`InvalidICD10CodeError`. Psychiatry also uses codes outside this chapter (see the
    module notes): a False here does not mean "not psychiatric".
    """
    head = category(code)
    return head[0] == "F" and head[1:].isdigit() and 1 <= int(head[1:]) <= 99
