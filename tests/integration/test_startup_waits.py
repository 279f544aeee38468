"""The tests' start-up waits: generous under load, and quick to say why when afserver died."""

from __future__ import annotations

import time

import pytest

from tests.conftest import SLACK_MAX, load_slack

pytestmark = pytest.mark.integration


def test_an_afserver_that_exits_at_start_fails_the_wait_at_once_with_its_log(make_farm) -> None:
    farm = make_farm(af_task_reconnect_timeout="soon")  # a value of the wrong type: it exits
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failed:
        farm.start_server()
    assert time.monotonic() - started < 30 * load_slack()  # not the whole start-up deadline
    assert "afserver exited" in str(failed.value)
    assert "af_task_reconnect_timeout" in str(failed.value)  # its own words, from its log


def test_the_load_slack_is_at_least_one_and_bounded() -> None:
    assert 1.0 <= load_slack() <= SLACK_MAX
