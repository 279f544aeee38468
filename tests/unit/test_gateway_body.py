"""A request body: decoded or refused with the reason, emptied as it is decoded, and its cost
known from its bytes."""

from __future__ import annotations

import json

import pytest

from gateway.body import BODY_COPIES, VALUE_COST, cost, decode, decoded, values_cost


def test_a_body_is_decoded_and_emptied() -> None:
    body = bytearray(b'{"get": {"type": "users", "ids": [1, 2]}}')
    assert decode(body) == {"get": {"type": "users", "ids": [1, 2]}}
    assert body == b""  # its text replaced it: the bytes are not kept beside the objects


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"a": "\xff\xfe"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "recursion"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": 1', "Expecting"),
        (b"", "Expecting value"),
    ],
)
def test_what_is_not_json_is_refused_saying_why(raw: bytes, why: str) -> None:
    body = bytearray(raw)
    request, refusal = decoded(body)
    assert request is None and refusal is not None
    assert refusal["error"].startswith("not valid JSON: ") and why in refusal["error"]
    assert body == b""


def test_a_cost_grows_with_the_values_a_body_holds() -> None:
    few = json.dumps({"job": {"description": "x" * 10_000}}).encode()
    many = json.dumps({"t": [{"n": 1} for _ in range(1000)]}).encode()
    assert cost(len(few)) == BODY_COPIES * len(few)
    assert values_cost(bytearray(few)) == 2 * VALUE_COST
    assert values_cost(bytearray(many)) == VALUE_COST * (1 + 1000 + 999)
    assert values_cost(bytearray(many)) > 10 * len(many)  # small values: many times their size
