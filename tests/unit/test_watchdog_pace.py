"""A child's watchdog beat: paced by afserver to an eighth of af_watchdog_sec, 1 to 5 s."""

from __future__ import annotations

from pathlib import Path

from workers import watchdog


def test_the_beat_is_an_eighth_of_the_watch_within_one_and_five_seconds() -> None:
    assert watchdog.beat_every(30.0) == 3.75
    assert watchdog.beat_every(4.0) == 1.0  # a short watch (tests) still beats each second
    assert watchdog.beat_every(600.0) == 5.0


def test_a_child_beats_at_the_pace_afserver_gave_it(tmp_path: Path) -> None:
    alive = tmp_path / "c.alive"
    alive.touch()
    beat = watchdog.beat_from_env({watchdog.ENV: str(alive), watchdog.EVERY_ENV: "3.75"})
    beat(100.0)
    assert beat.due == 103.75
    unpaced = watchdog.beat_from_env({watchdog.ENV: str(alive), watchdog.EVERY_ENV: "x"})
    unpaced(100.0)
    assert unpaced.due == 101.0  # a value it cannot read: once a second, as before
    assert watchdog.beat_from_env({}).due == float("inf")  # not watched
