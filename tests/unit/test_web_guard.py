"""The web's pure decisions: same-origin, content types, input checks, form tokens and the
refusals told once then counted."""

from __future__ import annotations

import json

import pytest

from web import origins
from web.forms import FormTokens
from web.inputs import DEPTH_MAX, BadInput, json_object, whole_number
from web.refusals import RefusalLog

OWN = origins.own_origin("http", "127.0.0.1:51080")


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"origin": "http://127.0.0.1:51080"}, True),
        ({"origin": "HTTP://127.0.0.1:51080"}, True),
        ({"origin": "http://127.0.0.1:51081"}, False),
        ({"origin": "http://127.0.0.2:51080"}, False),
        ({"origin": "https://127.0.0.1:51080"}, False),
        ({"origin": "null"}, False),
        ({"origin": "http://127.0.0.1:99999"}, False),  # no port
        ({"origin": "http://evil.example", "sec-fetch-site": "same-origin"}, False),
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "cross-site"}, False),
        ({"sec-fetch-site": "same-site"}, False),
        ({"referer": "http://127.0.0.1:51080/monitor/jobs"}, True),
        ({"referer": "http://evil.example/page"}, False),
        ({}, True),  # not a browser: curl and scripts send none of these
    ],
)
def test_same_origin(headers: dict[str, str], allowed: bool) -> None:
    assert (origins.origin_refusal(headers, OWN) is None) == allowed


def test_trusted_origins_and_default_ports() -> None:
    trusted = origins.trusted_origins(["https://farm.example"])
    assert origins.origin_refusal({"origin": "https://farm.example:443"}, OWN, trusted) is None
    assert origins.own_origin("http", "farm") == ("http", "farm", 80)
    with pytest.raises(ValueError, match="not scheme://host"):
        origins.trusted_origins(["farm.example"])


def test_a_loopback_web_answers_loopback_names_only() -> None:
    trusted = origins.trusted_origins(["https://farm.example"])
    hosts = origins.loopback_hosts("127.0.0.1", trusted)
    for host in ("127.0.0.1:51080", "localhost:8080", "[::1]:51080", "LOCALHOST", "farm.example"):
        assert origins.host_refusal(host, hosts) is None, host
    for host in ("evil.example:51080", "", "127.0.0.1.evil.example", "10.0.0.1:51080"):
        assert "is not this server" in origins.host_refusal(host, hosts), host
    assert origins.loopback_hosts("0.0.0.0", trusted) is None  # opened: any name
    assert origins.host_refusal("evil.example", None) is None


def test_content_types() -> None:
    assert origins.content_refusal("/api/farm/jobs", "application/json; charset=utf-8") is None
    for bad in ("text/plain", "", "multipart/form-data", origins.FORM_TYPE):
        assert "application/json" in origins.content_refusal("/api/farm/jobs", bad)
    assert origins.content_refusal("/stats/admin", origins.FORM_TYPE) is None
    assert origins.content_refusal("/stats/admin", "text/plain")


def test_json_bodies() -> None:
    assert json_object(b"") == {} and json_object(b'{"a": [1, "x"]}') == {"a": [1, "x"]}
    bad = {
        b"[1]": "JSON object",
        b"{" + b'"a":' * 1 + b"[" * 5000 + b"]" * 5000 + b"}": "nested",
        json.dumps({"a": [[[[0]]]] * 2}).encode().replace(b"0", b"1" + b"0" * 40): "out of range",
        b'{"a": NaN}': "not a JSON number",
        b'{"a": 1e999}': "not finite",
        b'{"a": "\\ud800"}': "surrogate",
        b'{"a": "\xff\xfe"}': "JSON object",
        b'{"a": ' + b"9" * 5000 + b"}": "JSON object",
        b'{"a": 1': "JSON object",
    }
    for body, words in bad.items():
        with pytest.raises(BadInput, match=words):
            json_object(body)
    deep = {"a": 1}
    for _ in range(DEPTH_MAX):
        deep = {"a": deep}
    with pytest.raises(BadInput, match="nested"):
        json_object(json.dumps(deep).encode())


def test_whole_numbers() -> None:
    assert whole_number("42", "job id") == 42
    for text in ("1" * 40, "²", "-1", "", "1 ", "٣"):
        with pytest.raises(BadInput, match="job id"):
            whole_number(text, "job id")


def test_form_tokens() -> None:
    tokens = FormTokens()
    token = tokens.issue()
    assert tokens.refusal(token, token) is None
    other = FormTokens().issue()  # another key: a restarted process, or a forger
    for cookie, field in ((token, None), (None, token), (other, other), (token, tokens.issue())):
        assert "anti-forgery" in tokens.refusal(cookie, field)


def test_refusals_told_once_then_counted() -> None:
    written: list[list[dict]] = []
    refusals = RefusalLog(written.append, clock=lambda: 1000.0)
    for _ in range(500):
        refusals.note("127.0.0.9", "origin", "cross-origin request refused", "POST /api/farm/jobs")
    refusals.note("127.0.0.9", "400", "HTTP 400", "GET /x", table=False)
    refusals.summarise()
    refusals.flush()
    rows = [r for batch in written for r in batch]
    assert [r["info"] for r in rows] == [
        "refused: cross-origin request refused",
        "499 more refusals (origin) from 127.0.0.9 in 5 s",
    ]
    assert rows[0]["subject"] == "?@127.0.0.9" and rows[0]["type"] == "web"
    assert refusals.noted == 501


def test_refusal_rows_wait_for_the_database() -> None:
    down = True
    written: list[dict] = []

    def sink(rows: list[dict]) -> None:
        if down:
            raise OSError("connection refused")
        written.extend(rows)

    refusals = RefusalLog(sink)
    refusals.note("127.0.0.9", "token", "bad token")
    refusals.flush()
    assert written == []
    down = False
    refusals.flush()
    assert [r["info"] for r in written] == ["refused: bad token"]
