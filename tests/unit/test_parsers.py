"""render.parsers: tokens, split lines, clamping, stop verdict, registry."""

from __future__ import annotations

import logging

import pytest

from render.parsers import Parser, Progress, get_parser
from render.parsers.generic import GenericParser


def fed(*chunks: bytes, name: str = "generic") -> Parser:
    parser = get_parser(name)
    for chunk in chunks:
        parser.feed(chunk)
    return parser


def test_progress_and_frame() -> None:
    p = fed(b"render starts\nPROGRESS: 42%\nFRAME: 12\n").progress
    assert (p.percent, p.percentframe, p.frame) == (42, 42, 12)
    assert p.changed


@pytest.mark.parametrize(
    ("line", "percent"),
    [
        (b"PROGRESS: 150%", 100),
        (b"PROGRESS: -5%", 0),
        (b"PROGRESS: 33.7 %", 33),
        (b"PROGRESS:7%", 7),
    ],
)
def test_percent_clamped_and_lenient(line: bytes, percent: int) -> None:
    assert fed(line + b"\n").progress.percent == percent


def test_tokens_anywhere_in_a_line_last_one_wins() -> None:
    p = fed(b"[12:00] PROGRESS: 10% ... PROGRESS: 20% done\n").progress
    assert p.percent == 20


def test_carriage_return_ends_a_line() -> None:
    p = fed(b"PROGRESS: 10%\rPROGRESS: 30%\r").progress
    assert p.percent == 30


def test_split_line_is_parsed_once_complete() -> None:
    parser = fed(b"PROG")
    assert parser.progress.percent == 0
    parser.feed(b"RESS: 50%\n")
    assert parser.progress.percent == 50


def test_split_utf8_character() -> None:
    data = "ACTIVITY: Bäcken\n".encode()
    cut = data.index("ä".encode()) + 1
    assert fed(data[:cut], data[cut:]).progress.activity == "Bäcken"


def test_finish_parses_the_last_partial_line() -> None:
    parser = fed(b"FRAME: 3\nPROGRESS: 80%")
    assert parser.progress.percent == 0
    parser.finish()
    assert parser.progress.percent == 80 and parser.progress.frame == 3


@pytest.mark.parametrize(
    ("token", "flag"),
    [
        (b"[ PARSER WARNING ]", "warning"),
        (b"[ PARSER ERROR ]", "error"),
        (b"[ PARSER FATAL ERROR ]", "fatalerror"),
        (b"[ PARSER BAD RESULT ]", "badresult"),
        (b"[ PARSER FINISHED SUCCESS ]", "finishedsuccess"),
    ],
)
def test_flags(token: bytes, flag: str) -> None:
    parser = fed(b"some text " + token + b" more\nnext line\n")
    flags = ("warning", "error", "fatalerror", "badresult", "finishedsuccess")
    assert {f for f in flags if getattr(parser.progress, f)} == {flag}
    assert parser.stop_wanted() == (flag in ("error", "fatalerror", "finishedsuccess"))


def test_activity_report_and_images() -> None:
    p = fed(
        b"ACTIVITY: Rendering tiles\nREPORT: 3 tiles\n@IMAGE@ /out/a.0001.exr\n",
        b"@IMAGE!@ /out/a.0002.exr\n@IMAGE@ /out/a.0001.exr\n",
    ).progress
    assert p.activity == "Rendering tiles" and p.report == "3 tiles"
    assert p.files == ["/out/a.0001.exr", "/out/a.0002.exr"]


def test_changed_only_on_real_change() -> None:
    parser = fed(b"PROGRESS: 10%\n")
    parser.progress.reset_changed()
    parser.feed(b"PROGRESS: 10%\nREPORT: x\n[ PARSER WARNING ]\n")
    assert not parser.progress.changed
    parser.feed(b"ACTIVITY: new\n")
    assert parser.progress.changed


def test_plain_output_touches_nothing() -> None:
    parser = fed(b"nothing to see here\n" * 1000, b"a partial line without end")
    assert parser.progress == Progress()
    assert not parser.stop_wanted()


def test_endless_line_is_bounded() -> None:
    parser = fed(b"x" * 70_000 + b"PROGRESS: 5%", b"y" * 10)
    assert parser.progress.percent == 5  # parsed when the partial line grew too long


def test_registry(caplog: pytest.LogCaptureFixture) -> None:
    assert type(get_parser("")) is GenericParser
    assert type(get_parser("generic")) is GenericParser
    assert get_parser("generic") is not get_parser("generic")  # one per task run
    with caplog.at_level(logging.WARNING, logger="render.parsers"):
        assert type(get_parser("no_such_parser_xyz")) is GenericParser
        assert type(get_parser("no_such_parser_xyz")) is GenericParser
        assert type(get_parser("../evil")) is GenericParser
    warnings = [r for r in caplog.records if "no_such_parser_xyz" in r.getMessage()]
    assert len(warnings) == 1


def test_a_parser_bug_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(GenericParser):
        def parse_line(self, line: str) -> None:
            super().parse_line(line)
            raise RuntimeError("bug")

    parser = Broken()
    with caplog.at_level(logging.ERROR, logger="render.parsers"):
        parser.feed(b"PROGRESS: 10%\nPROGRESS: 20%\n")
    assert parser.progress.percent == 20
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1
