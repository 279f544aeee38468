"""A request body: decoded with at most two copies of its size alive at once, and what it
costs the gateway's budget, known before it is decoded."""

from __future__ import annotations

import json
from typing import Any

from gateway import translate

# A request costs its body twice (the bytes, then their text, then their msgpack form, each
# beside the decoded objects), plus VALUE_COST per value: many small values (a small dict,
# its copy for our scheduler, a str) decode to several times their size.
BODY_COPIES = 2
VALUE_COST = 128  # bytes of Python objects per "," or ":" (measured: ~120 for small tasks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode(body: bytearray) -> Any:
    """The request a body holds (the body is emptied: its text replaces it); ValueError
    saying why not. At most two copies of a body's size exist at once: bytes and text,
    then text and the objects."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid JSON: not UTF-8: {exc}") from None
    finally:
        body.clear()
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON: {str(exc)[:200] or 'nested too deep'}") from None


def cost(length: int) -> int:
    """What a body of `length` bytes costs the budget before its values are counted."""
    return BODY_COPIES * length


def values_cost(body: bytearray) -> int:
    """What a body's values cost once decoded, beyond their bytes that `cost` counted: an
    upper bound that needs no decoding (a "," or ":" inside a string counts too)."""
    return VALUE_COST * (body.count(b",") + body.count(b":"))


def decoded(body: bytearray) -> tuple[Any, dict[str, Any] | None]:
    """(the request, None), or (None, the error reply saying why the body is not one)."""
    try:
        return decode(body), None
    except ValueError as exc:
        return None, translate.error(str(exc))
