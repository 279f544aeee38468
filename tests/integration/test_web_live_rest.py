"""The web registers its live feed with the scheduler only while a page listens: at rest the
scheduler builds and pushes no changes for nobody."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.conftest import Farm, wait_for
from tests.integration.test_web_api import EventStream, call


def registrations(farm: Farm) -> int:
    return farm.log("afserver").count(" of web@")


def test_the_feed_registers_while_a_page_listens_serves_the_next_and_goes_after(
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
    # the next page (the jobs list, then a job): the registration lingers and serves it, so
    # nothing that changes between the two pages is missed
    stream = EventStream(f"{farm.web}/api/farm/events")
    try:
        wait_for(lambda: any(k == "hello" for k, _ in stream.events), 10, "the next hello")
        assert "deregistered" not in farm.log("afserver")
        assert "monitor 2 of web@" not in farm.log("afserver")
    finally:
        stream.close()
    # no page for LINGER_SEC: the scheduler pushes for nobody no more; a page then registers
    wait_for(lambda: "monitor 1 deregistered" in farm.log("afserver"), 30, "deregistered")
    stream = EventStream(f"{farm.web}/api/farm/events")
    try:
        wait_for(lambda: "monitor 2 of web@" in farm.log("afserver"), 10, "registered again")
    finally:
        stream.close()
