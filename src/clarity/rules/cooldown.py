"""Cooldown and deduplication, as a pure function of the last firing per dedup key.

An *episode* (a stretch of time during which a rule's condition holds, see
:mod:`clarity.rules.episodes`) fires at most once: not again once its dedup key fired at or
after its start. It fires when it starts, unless the same dedup key fired less than
``cooldown`` ago; then it fires when the cooldown ends, if it is still going on, and not at
all if it ended first. The caller stores one
:class:`LastFiring` per dedup key (the alert service in its table, a dry run in memory).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from clarity.rules.signals import epoch


@dataclass(frozen=True)
class LastFiring:
    fired_at: dt.datetime
    episode_start: dt.datetime


def earliest_firing(
    last_fired: float | None, last_episode: float | None, episode_start: float, cooldown: float
) -> float | None:
    """When an episode starting at ``episode_start`` may fire (epoch seconds), given the
    key's last firing; None when the key already fired during this episode.

    "During this episode" is judged by time (the last firing is at or after the episode's
    start) as well as by identity, so that a caller whose data window begins inside a long
    episode, and therefore sees it start later, still recognises the firing as this one's
    as long as the firing itself is in view.
    """
    if last_fired is None:
        return episode_start
    if last_fired >= episode_start or last_episode == episode_start:
        return None
    return max(episode_start, last_fired + cooldown)


def admits(
    last: LastFiring | None, episode_start: dt.datetime, at: dt.datetime, cooldown: dt.timedelta
) -> bool:
    """Whether an episode that started at ``episode_start`` may fire at ``at``."""
    when = earliest_firing(
        epoch(last.fired_at) if last else None,
        epoch(last.episode_start) if last else None,
        epoch(episode_start),
        cooldown.total_seconds(),
    )
    return when is not None and when <= epoch(at)
