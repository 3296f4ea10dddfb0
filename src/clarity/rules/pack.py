"""The default clinical rule pack (``pack.json``), validated on first use.

Each rule carries its ``source`` and ``rationale``; ``docs/rules.md`` documents the pack.
A malformed pack fails loudly naming the rule and field, never by silently skipping a rule.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from clarity.rules.schema import Rule, validate_rule


class PackError(ValueError):
    """The shipped pack does not validate; names each rule and field at fault."""


def parse_pack(document: Any) -> tuple[Rule, ...]:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise PackError("a rule pack is an object with a 'rules' list")
    rules: list[Rule] = []
    problems: list[str] = []
    for n, data in enumerate(document["rules"]):
        result = validate_rule(data)
        if isinstance(result, Rule):
            rules.append(result)
        else:
            problems.extend(f"rules[{n}].{e.field}: {e.message} ({e.code})" for e in result)
    ids = [r.id for r in rules]
    problems.extend(
        f"rule id {i} appears twice" for i in sorted({i for i in ids if ids.count(i) > 1})
    )
    if problems:
        raise PackError("invalid rule pack: " + "; ".join(problems))
    return tuple(rules)


@functools.cache
def default_pack() -> tuple[Rule, ...]:
    """The rules shipped with Clarity, in file order."""
    text = resources.files("clarity.rules").joinpath("pack.json").read_text(encoding="utf-8")
    return parse_pack(json.loads(text))


def pack_version() -> str:
    text = resources.files("clarity.rules").joinpath("pack.json").read_text(encoding="utf-8")
    return str(json.loads(text)["pack_version"])
