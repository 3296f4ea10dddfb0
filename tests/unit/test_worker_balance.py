"""Partition shares and plans (pure), and the stable partition hash."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from clarity.events import partition_of
from clarity.worker.balance import Plan, fair_share, plan


def test_fair_share_covers_every_partition() -> None:
    assert fair_share(16, 1) == 16
    assert fair_share(16, 3) == 6
    assert fair_share(16, 16) == 1
    assert fair_share(16, 40) == 1
    assert fair_share(16, 0) == 16  # no live worker counted yet: this one


@given(st.integers(1, 256), st.integers(1, 64))
def test_shares_of_all_live_workers_cover_the_partitions(partitions: int, workers: int) -> None:
    share = fair_share(partitions, workers)
    assert share * workers >= partitions
    assert (share - 1) * workers < partitions  # and no bigger than needed


def test_plan_gives_back_the_highest_and_takes_what_is_missing() -> None:
    assert plan([3, 0, 7, 5], 2) == Plan(take=0, give_back=(5, 7))
    assert plan([1], 4) == Plan(take=3, give_back=())
    assert plan([1, 2], 2) == Plan(take=0, give_back=())


def test_partition_of_is_crc32_and_stable_across_processes() -> None:
    key = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert partition_of(key, 16) == zlib.crc32(key.encode()) % 16
    assert partition_of(key, 16) == 14  # fixed: publishers and workers must agree
    assert {partition_of(f"patient-{n}", 16) for n in range(200)} == set(range(16))
