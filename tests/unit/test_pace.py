from __future__ import annotations

import pytest

from render import pace


def test_registration_pauses_grow_to_half_a_minute() -> None:
    pauses = [pace.register_retry(n, 0.0) for n in range(1, 8)]
    assert pauses == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("jitter", [-5.0, -1.0, 0.3, 1.0, 7.0])
def test_jitter_stays_within_a_fifth(jitter: float) -> None:
    assert 0.8 * 8.0 <= pace.register_retry(3, jitter) <= 1.2 * 8.0


def test_renders_started_together_spread_their_retries() -> None:
    assert pace.register_retry(2, -1.0) != pace.register_retry(2, 1.0)


def test_a_beat_waits_while_the_last_is_unanswered_until_its_answer_is_surely_lost() -> None:
    assert not pace.beat_waits(None, now=100.0, heartbeat_sec=1.0)  # nothing in flight
    assert pace.beat_waits(99.0, now=100.0, heartbeat_sec=1.0)
    assert pace.beat_waits(97.5, now=100.0, heartbeat_sec=1.0)
    assert not pace.beat_waits(97.0, now=100.0, heartbeat_sec=1.0)  # 3 periods: lost


def test_patience_is_at_least_three_seconds_for_fast_heartbeats() -> None:
    assert pace.beat_waits(98.0, now=100.0, heartbeat_sec=0.1)
    assert not pace.beat_waits(90.0, now=100.0, heartbeat_sec=3.0)
