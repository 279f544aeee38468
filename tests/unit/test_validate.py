from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.validate import Field, Invalid, check, one_kind, valid, walk
from workers.scheduler import handlers, operations, pools, requests, submit

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
        ({"name": "a", "ratio": float("nan")}, "ratio", "finite number, got nan"),
        ({"name": "a", "ratio": float("-inf")}, "ratio", "finite number, got -inf"),
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


# --- the generated test agrees with the walk -----------------------------------------------

SCHEMAS = {
    "test": SCHEMA,
    "register": handlers.REGISTER,
    "update": handlers.UPDATE,
    "deregister": handlers.DEREGISTER,
    "monitor": handlers.MONITOR,
    "get": requests.GET,
    "action": requests.ACTION,
    "job_params": operations.JOB_PARAMS,
    "render_params": operations.RENDER_PARAMS,
    "user_params": operations.USER_PARAMS,
    "pool_params": pools.PARAMS,
    "job": submit.JOB,
}
# what a msgpack body may hold, for a field of the wrong kind (lone surrogates: bad UTF-8)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=3) | st.just("\udcff"),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.integers() | st.text(max_size=2), st.integers(), max_size=2),
)


def near(spec: Field, size: int) -> int:
    """Lengths around max_len, kept small: at and past a small limit, under a large one."""
    return min(spec.max_len + 1, size) if spec.max_len is not None else size


def values(spec: Field) -> st.SearchStrategy[Any]:
    kind = spec.kind
    if kind is int or kind is float:
        low = None if spec.min is None else spec.min - 2
        high = None if spec.max is None else spec.max + 2
        fit: st.SearchStrategy[Any] = st.integers(
            None if low is None else int(low), None if high is None else int(high)
        )
        if kind is float:
            fit |= st.floats(low, high) | st.sampled_from([float("nan"), float("inf")])
    elif kind is str:
        fit = st.text(max_size=near(spec, 6)) | st.just("é\udcff")
        if spec.choices is not None:
            fit |= st.sampled_from(spec.choices)
    elif kind is bytes:
        fit = st.binary(max_size=near(spec, 6))
    elif kind is bool:
        fit = st.booleans()
    elif kind is list:
        fit = st.lists(values(spec.items) if spec.items else JUNK, max_size=near(spec, 3))
    elif spec.fields is not None:
        fit = objects(spec.fields)
    else:
        fit = st.dictionaries(
            st.text(max_size=3) | st.integers(),
            values(spec.items) if spec.items else JUNK,
            max_size=near(spec, 3),
        )
    return st.one_of(fit, fit, fit, JUNK)


def objects(schema: dict[str, Field]) -> st.SearchStrategy[Any]:
    """Objects near the schema: its fields, now and then a required one left out, an
    unknown one added, or not an object at all."""
    required = {k: values(s) for k, s in schema.items() if s.required}
    optional = {k: values(s) for k, s in schema.items() if not s.required}
    fit = st.fixed_dictionaries(required, optional=optional)
    loose = st.fixed_dictionaries({}, optional={**required, **optional})
    return st.one_of(fit, fit, fit, loose, fit.map(lambda d: {**d, "unknown": 1}), JUNK)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_generated_test_passes_exactly_what_the_walk_passes(name: str, data: Any) -> None:
    schema = SCHEMAS[name]
    obj = data.draw(objects(schema))
    try:
        walk(obj, schema)
    except Invalid:
        passes = False
    else:
        passes = True
    assert valid(obj, schema) is passes


def test_a_subclass_goes_to_the_walk_which_decides_as_before() -> None:
    class Count(int):
        pass

    obj = {"name": "a", "count": Count(3)}
    assert not valid(obj, SCHEMA)
    assert check(obj, SCHEMA) is obj
