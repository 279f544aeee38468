"""Input from the network, checked before anything acts on it (pure: text in, values or a
BadInput that says what is wrong out).

`json.loads` alone lets through what breaks later: a 40-digit number that no message can
carry, nesting deep enough to exhaust the stack, `NaN`, strings with lone surrogates that
cannot be encoded again; `str.isdigit` accepts digits such as "²" that `int` refuses.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

DEPTH_MAX = 64  # a job is about five levels deep
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what msgpack, SQLite and PostgreSQL carry
DIGITS = re.compile(r"[0-9]{1,18}")


class BadInput(ValueError):
    """What is wrong with a request's input, in words for the caller."""


def _no_constant(name: str) -> Any:
    raise BadInput(f"{name} is not a JSON number")


def whole_number(text: str, name: str) -> int:
    """A whole number from a path or query (0 up to 18 digits)."""
    if not DIGITS.fullmatch(text):
        raise BadInput(f"{name}: expected a whole number, got {text[:40]!r}")
    return int(text)


def check_value(value: Any) -> None:
    """Refuses numbers outside 64 bits, nesting over DEPTH_MAX and strings that cannot be
    encoded as UTF-8, anywhere in a parsed JSON value."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > DEPTH_MAX:
                raise BadInput(f"JSON nested deeper than {DEPTH_MAX} levels")
            children = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            for key, child in children:
                if key is not None:
                    stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise BadInput(f"the number {str(item)[:30]}... is out of range (64 bits)")
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadInput("a number is out of range (not finite)")
        elif isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput("a string holds an unpaired surrogate (\\ud800-\\udfff)") from None


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object (an empty body is an empty object)."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise BadInput(f"JSON nested deeper than {DEPTH_MAX} levels") from None
    except BadInput:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError (bad UTF-8)
        raise BadInput(f"expected a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput("expected a JSON object")
    check_value(data)
    return data
