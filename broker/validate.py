"""Checks for message bodies: types, ranges, sizes and known fields, with the path of what is wrong.

A schema is a dict of field name -> ``Field``. ``check`` returns the object when it is valid and
raises ``Invalid`` naming the first offending path (``netifs[2].mac: expected str, got int``).
Nothing here touches farm state, so a refused message changes nothing.

Before that walk, a body meets its schema's test (``valid``): one flat function generated
from the schema that only says yes or no, so the walk, which can name what is wrong, runs
only for a body that fails. Every render sends a heartbeat a second; walking it cost a
third of handling it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from math import isfinite
from typing import Any

Schema = dict[str, "Field"]

_TYPE_NAMES = {
    int: "int",
    float: "number",
    str: "str",
    bool: "bool",
    list: "list",
    dict: "object",
    bytes: "bytes",
}


class Invalid(ValueError):
    def __init__(self, path: str, text: str) -> None:
        super().__init__(f"{path}: {text}" if path else text)
        self.path = path
        self.text = text

    def under(self, parent: str) -> Invalid:
        """The same fault, named from `parent` down (paths are only built for a fault)."""
        if not self.path:
            return Invalid(parent, self.text)
        sep = "" if self.path.startswith("[") or not parent else "."
        return Invalid(f"{parent}{sep}{self.path}", self.text)


@dataclass(frozen=True, slots=True)
class Field:
    kind: type  # int, float, str, bool, bytes, list, dict
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_len: int | None = None  # characters of a str, items of a list or dict
    items: Field | None = None  # element type of a list, value type of a free dict
    fields: Schema | None = None  # a nested object with known fields
    choices: tuple[Any, ...] | None = None


def _utf8(text: str) -> bool:
    """Bodies are decoded with surrogateescape, so bad UTF-8 shows up here, named by field."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_value(value: Any, spec: Field) -> Any:
    """One value against its field. A fault is raised unnamed: the caller names it with
    Invalid.under, so no path is built for the values that pass."""
    kind = spec.kind
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise Invalid(
            "",
            f"expected {_TYPE_NAMES[kind]}, got {_TYPE_NAMES.get(type(value), type(value).__name__)}",
        )
    if kind is float and isinstance(value, float) and not isfinite(value):
        # msgpack carries NaN and infinities; stored, they would break every JSON page
        raise Invalid("", f"expected a finite number, got {value}")
    if kind is str and not value.isascii() and not _utf8(value):
        raise Invalid("", "not valid UTF-8 text")
    if spec.choices is not None and value not in spec.choices:
        raise Invalid("", f"must be one of {', '.join(map(str, spec.choices))}, got {value!r}")
    if spec.min is not None and value < spec.min:
        raise Invalid("", f"must be ≥ {spec.min:g}, got {value}")
    if spec.max is not None and value > spec.max:
        raise Invalid("", f"must be ≤ {spec.max:g}, got {value}")
    if spec.max_len is not None and len(value) > spec.max_len:
        unit = {str: "characters", bytes: "bytes"}.get(kind, "items")
        raise Invalid("", f"too long: {len(value)} {unit}, at most {spec.max_len}")
    if kind is list and spec.items is not None:
        for i, item in enumerate(value):
            try:
                check_value(item, spec.items)
            except Invalid as exc:
                raise exc.under(f"[{i}]") from None
    elif kind is dict:
        if spec.fields is not None:
            walk(value, spec.fields)
        else:
            for key, item in value.items():
                if not isinstance(key, str):
                    raise Invalid("", f"keys must be strings, got {type(key).__name__}")
                if spec.items is not None:
                    try:
                        check_value(item, spec.items)
                    except Invalid as exc:
                        raise exc.under(key) from None
    return value


def check(obj: Any, schema: Schema, path: str = "") -> dict[str, Any]:
    """Validate an object against a schema: unknown fields and missing required ones are errors."""
    if valid(obj, schema):
        return obj
    return walk(obj, schema, path)


def walk(obj: Any, schema: Schema, path: str = "") -> dict[str, Any]:
    """check's walk, field by field, which names the first fault it meets."""
    if not isinstance(obj, dict):
        raise Invalid(path, f"expected object, got {type(obj).__name__}")
    for key in obj:
        if key not in schema:
            raise Invalid(_join(path, str(key)), "unknown field")
    for key, spec in schema.items():
        if key in obj:
            try:
                check_value(obj[key], spec)
            except Invalid as exc:
                raise exc.under(_join(path, key)) from None
        elif spec.required:
            raise Invalid(_join(path, key), "required field is missing")
    return obj


# --- the generated test ----------------------------------------------------------------------

Test = Callable[[Any], bool]
_tests: dict[int, tuple[Schema, Test]] = {}  # id(schema) -> (the schema, kept alive; its test)


def valid(obj: Any, schema: Schema) -> bool:
    """True when `obj` passes `schema`. False sends it to the walk, which says what is wrong;
    a value of a subclass (an enum for an int) is False too, and the walk decides it: a body
    decoded from msgpack holds the exact types only."""
    entry = _tests.get(id(schema))
    if entry is None:
        entry = _tests[id(schema)] = (schema, _generate(schema))
    return entry[1](obj)


def _generate(schema: Schema) -> Test:
    """One function of plain comparisons and loops: no call per field, as the walk makes."""
    names = count(1)
    consts: dict[str, Any] = {"_utf8": _utf8, "_isfinite": isfinite}
    lines = ["def test(v0):"]

    def const(value: Any) -> str:
        name = f"c{next(names)}"
        consts[name] = value
        return name

    def fail_unless(condition: str, pad: str) -> None:
        lines.append(f"{pad}if not ({condition}): return False")

    def obj(var: str, fields: Schema, pad: str) -> None:
        n = next(names)
        fail_unless(f"type({var}) is dict", pad)
        lines.append(f"{pad}for k{n}, v{n} in {var}.items():")
        keyword = "if"
        for key, spec in fields.items():
            lines.append(f"{pad}    {keyword} k{n} == {const(key)}:")
            lines.append(f"{pad}        pass")
            value(f"v{n}", spec, pad + "        ")
            keyword = "elif"
        lines.append(f"{pad}    else: return False" if fields else f"{pad}    return False")
        for key, spec in fields.items():
            if spec.required:
                fail_unless(f"{const(key)} in {var}", pad)

    def value(var: str, spec: Field, pad: str) -> None:
        kind = spec.kind
        if kind is float:
            fail_unless(f"type({var}) is int or type({var}) is float and _isfinite({var})", pad)
        else:
            fail_unless(f"type({var}) is {const(kind)}", pad)
        if spec.choices is not None:
            fail_unless(f"{var} in {const(spec.choices)}", pad)
        # compared as the walk compares them
        if spec.min is not None:
            fail_unless(f"not {var} < {const(spec.min)}", pad)
        if spec.max is not None:
            fail_unless(f"not {var} > {const(spec.max)}", pad)
        if spec.max_len is not None:
            fail_unless(f"len({var}) <= {spec.max_len}", pad)
        if kind is str:
            fail_unless(f"{var}.isascii() or _utf8({var})", pad)
        elif kind is list and spec.items is not None:
            n = next(names)
            lines.append(f"{pad}for v{n} in {var}:")
            value(f"v{n}", spec.items, pad + "    ")
        elif kind is dict and spec.fields is not None:
            obj(var, spec.fields, pad)
        elif kind is dict:
            n = next(names)
            lines.append(f"{pad}for k{n}, v{n} in {var}.items():")
            fail_unless(f"type(k{n}) is str", pad + "    ")
            if spec.items is not None:
                value(f"v{n}", spec.items, pad + "    ")

    obj("v0", schema, "    ")
    lines.append("    return True")
    exec("\n".join(lines), consts)  # noqa: S102 - built above from a schema, never from input
    test: Test = consts["test"]
    return test


def one_kind(body: Any, kinds: tuple[str, ...], extra: tuple[str, ...]) -> str:
    """The request kind of a client body: exactly one of ``kinds`` beside the ``extra`` keys."""
    if not isinstance(body, dict):
        raise Invalid("", f"request must be an object, got {type(body).__name__}")
    found = [k for k in body if k in kinds]
    unknown = [k for k in body if k not in kinds and k not in extra]
    if unknown:
        raise Invalid(
            str(unknown[0]), f"unknown request field (expected one of {', '.join(kinds)})"
        )
    if len(found) != 1:
        raise Invalid("", f"request must hold exactly one of {', '.join(kinds)}")
    return found[0]
