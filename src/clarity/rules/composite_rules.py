"""Episodes of ``all`` and ``any``: intersections and unions of their parts' episodes.

Without ``within``, ``all`` holds while every part holds at the same moment and ``any``
while at least one does. With ``within: W`` a part counts at time t when it held at some
moment of the last W (``(t - W, t]``): each part's episodes are stretched by W at their end
before being combined. "PHQ-9 item 9 positive and sleep collapse within 7 days" thus
holds from the moment the second of the two happens, provided the first held at some
point of the 7 days before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clarity.rules.conditions import AllOf, AnyOf, Condition
from clarity.rules.durations import duration_seconds
from clarity.rules.episodes import Episodes, empty, intersect, merge, union
from clarity.rules.evidence import Evidence
from clarity.rules.signals import PatientSignals

EpisodesOf = Callable[[Condition, PatientSignals, float], Episodes]


def composite_episodes(
    cond: AllOf | AnyOf, signals: PatientSignals, until: float, episodes_of: EpisodesOf
) -> Episodes:
    window = duration_seconds(cond.within) if cond.within else 0.0
    parts = [episodes_of(c, signals, until) for c in cond.conditions]
    stretched = [merge(p.starts, p.ends + window) for p in parts]
    if isinstance(cond, AllOf):
        if any(len(p) == 0 for p in parts):
            return empty()
        combined = stretched[0]
        for other in stretched[1:]:
            combined = intersect(combined, other)
    else:
        combined = union(stretched)
    if combined[0].size == 0:
        return empty()
    word = "All" if isinstance(cond, AllOf) else "Any"
    suffix = f" within {cond.within}" if cond.within else ""

    def explain(k: int, at: float) -> Evidence:
        found = [(p, p.latest_within(at, window)) for p in parts]
        evidence = tuple(p.explain(j, min(at, float(p.ends[j]))) for p, j in found if j is not None)
        return Evidence(
            kind=cond.kind,
            summary=f"{word} of{suffix}: " + "; ".join(e.summary for e in evidence),
            facts={"parts_true": len(evidence), "parts": len(parts)},
            parts=evidence,
        )

    starts, ends = combined
    return Episodes(np.asarray(starts, dtype=np.float64), ends, explain)
