"""The request and reply shapes of the original's clients that the gateway relies on, as
recorded in tests/fixtures/original/*.json: each original request, what the gateway asks
our scheduler (with the canned answer), and the reply the original would give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.translate import conversation

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "original").glob("*.json"))


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_the_original_request_gets_the_original_reply(path: Path) -> None:
    fixture = json.loads(path.read_text())
    exchanges: list[dict[str, Any]] = list(fixture["exchanges"])
    conv = conversation(fixture["request"])
    ask = next(conv)
    try:
        while True:
            assert exchanges, f"asked more than recorded: {ask}"
            expected = exchanges.pop(0)
            assert ask == expected["ask"]
            ask = conv.send(expected["answer"])
    except StopIteration as done:
        reply = done.value
    assert not exchanges, "recorded asks left unasked"
    assert reply == fixture["reply"]


def test_there_are_fixtures() -> None:
    assert {p.stem for p in FIXTURES} >= {"job_progress", "blocks_full", "renders_resources"}
