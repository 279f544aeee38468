from __future__ import annotations

import pytest

from broker.validate import Field, Invalid, check, one_kind

SCHEMA = {
    "name": Field(str, required=True, max_len=5),
    "count": Field(int, min=0, max=10),
    "ratio": Field(float),
    "flag": Field(bool),
    "tags": Field(list, max_len=3, items=Field(str)),
    "nested": Field(dict, fields={"x": Field(int, required=True)}),
    "free": Field(dict, max_len=2),
    "mode": Field(str, choices=("a", "b")),
    "rows": Field(list, items=Field(dict, fields={"x": Field(int)})),
    "grid": Field(list, items=Field(list, items=Field(int))),
    "typed": Field(dict, items=Field(int)),
}


def invalid(obj: object) -> Invalid:
    with pytest.raises(Invalid) as err:
        check(obj, SCHEMA)
    return err.value


def test_valid_object_passes_unchanged() -> None:
    obj = {
        "name": "ab",
        "count": 3,
        "ratio": 1,
        "flag": True,
        "tags": ["x"],
        "nested": {"x": 1},
        "mode": "a",
    }
    assert check(obj, SCHEMA) is obj


@pytest.mark.parametrize(
    ("obj", "path", "words"),
    [
        ({}, "name", "required"),
        ({"name": 1}, "name", "expected str"),
        ({"name": "toolong"}, "name", "too long"),
        ({"name": "a", "count": True}, "count", "expected int"),
        ({"name": "a", "count": -1}, "count", "≥ 0"),
        ({"name": "a", "count": 11}, "count", "≤ 10"),
        ({"name": "a", "ratio": "1"}, "ratio", "expected number"),
        ({"name": "a", "tags": ["x", 2]}, "tags[1]", "expected str"),
        ({"name": "a", "tags": ["x"] * 4}, "tags", "4 items"),
        ({"name": "a", "nested": {}}, "nested.x", "required"),
        ({"name": "a", "nested": {"x": 1, "y": 2}}, "nested.y", "unknown field"),
        ({"name": "a", "free": {"a": 1, "b": 2, "c": 3}}, "free", "too long"),
        ({"name": "a", "mode": "c"}, "mode", "one of a, b"),
        ({"name": "a", "zzz": 1}, "zzz", "unknown field"),
        ({"name": "a", "rows": [{"x": 1}, {"x": "1"}]}, "rows[1].x", "expected int"),
        ({"name": "a", "rows": [{"x": 1}, {"y": 1}]}, "rows[1].y", "unknown field"),
        ({"name": "a", "grid": [[1], [2, 3, "4"]]}, "grid[1][2]", "expected int"),
        ({"name": "a", "typed": {"k": 1, "m": "2"}}, "typed.m", "expected int"),
        ({"name": "a", "typed": {1: 1}}, "typed", "keys must be strings"),
    ],
)
def test_errors_name_the_path(obj: dict, path: str, words: str) -> None:
    err = invalid(obj)
    assert err.path == path
    assert words in str(err)
    assert str(err).startswith(path + ": ")


def test_not_an_object() -> None:
    assert "expected object" in str(invalid([1]))


def test_one_kind() -> None:
    assert one_kind({"get": {}, "user_name": "u"}, ("get", "action"), ("user_name",)) == "get"
    with pytest.raises(Invalid, match="exactly one"):
        one_kind({"get": {}, "action": {}}, ("get", "action"), ())
    with pytest.raises(Invalid, match="unknown request field"):
        one_kind({"bogus": 1}, ("get",), ())
    with pytest.raises(Invalid, match="must be an object"):
        one_kind("get", ("get",), ())
