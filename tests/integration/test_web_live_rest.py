"""The web registers its live feed with the scheduler only while a page listens: at rest the
scheduler builds and pushes no changes for nobody."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.conftest import Farm, wait_for
from tests.integration.test_web_api import EventStream, call


def registrations(farm: Farm) -> int:
    return farm.log("afserver").count(" of web@")


def test_the_feed_registers_while_a_page_listens_and_again_for_the_next(
    make_web_farm: Callable[..., Farm],
) -> None:
    farm = make_web_farm()
    wait_for(lambda: call(farm, "GET", "/api/farm/users")[0] == 200, 15, "the web serving")
    time.sleep(2)  # a feed that registers at start would have done so by now
    assert registrations(farm) == 0
    stream = EventStream(f"{farm.web}/api/farm/events")
    try:
        wait_for(lambda: "monitor 1 of web@" in farm.log("afserver"), 10, "registered")
    finally:
        stream.close()
    time.sleep(1)  # the page went: the feed deregisters
    stream = EventStream(f"{farm.web}/api/farm/events")
    try:
        wait_for(lambda: "monitor 2 of web@" in farm.log("afserver"), 10, "registered again")
    finally:
        stream.close()
