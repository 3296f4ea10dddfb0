"""How many partitions a worker should hold, and which to take or give back.

Every live worker computes the same share, ``ceil(partitions / live workers)``, so the
shares always cover every partition and nobody holds more than anyone else by more than
one: a worker over its share gives partitions back, one under it takes free ones. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


def fair_share(partitions: int, live_workers: int) -> int:
    return math.ceil(partitions / max(1, live_workers))


@dataclass(frozen=True)
class Plan:
    take: int  # how many free partitions to claim
    give_back: tuple[int, ...]  # which held partitions to release


def plan(held: Iterable[int], share: int) -> Plan:
    """Keep the lowest-numbered partitions held (fewer moves when shares change)."""
    mine = sorted(held)
    if len(mine) > share:
        return Plan(take=0, give_back=tuple(mine[share:]))
    return Plan(take=share - len(mine), give_back=())
