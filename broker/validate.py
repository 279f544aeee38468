"""Checks for message bodies: types, ranges, sizes and known fields, with the path of what is wrong.

A schema is a dict of field name -> ``Field``. ``check`` returns the object when it is valid and
raises ``Invalid`` naming the first offending path (``netifs[2].mac: expected str, got int``).
Nothing here touches farm state, so a refused message changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
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
            check(value, spec.fields)
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
