"""Users' patterns on RE2: caps, refusals that name the field and the feature, linear time."""

from __future__ import annotations

import re
import time

import pytest

from broker.patterns import PATTERN_MAX, PROGRAM_MAX, compile_pattern, refusal
from broker.validate import Invalid

CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(.*a){20}", "(a*)*b", "((a+)+)+$", "(x+x+)+y"]


def refused(pattern: str, field: str = "job.blocks[0].hosts_mask") -> Invalid:
    with pytest.raises(Invalid) as err:
        compile_pattern(pattern, field)
    assert err.value.path == field
    assert str(err.value).startswith(f"{field}: ")
    return err.value


def test_full_match_and_search() -> None:
    pattern = compile_pattern("farm[0-9]+", "mask")
    assert pattern.fullmatch("farm12")
    assert not pattern.fullmatch("farm12a") and not pattern.fullmatch("xfarm12")
    assert pattern.search("xfarm12a") and not pattern.search("farmx")
    # the same answers again, from the remembered ones
    assert pattern.fullmatch("farm12") and not pattern.fullmatch("farm12a")


def test_ignore_case_as_pool_patterns_use_it() -> None:
    assert compile_pattern("Farm.*", "params.pattern", ignore_case=True).fullmatch("FARM01")
    assert not compile_pattern("Farm.*", "params.pattern").fullmatch("FARM01")
    assert compile_pattern("(?i)farm.*", "mask").fullmatch("FARM01")


def test_python_style_syntax_that_re2_shares() -> None:
    for pattern, name in [
        (r"render-\d{2,3}", "render-042"),
        (r"(?P<kind>gpu|cpu)_\w+", "gpu_a"),
        (r"[[:alpha:]]+", "abc"),
        (re.escape("shot 010 (v2) [final]+"), "shot 010 (v2) [final]+"),
    ]:
        assert compile_pattern(pattern, "mask").fullmatch(name), pattern


def test_invalid_pattern_names_field_and_fault() -> None:
    err = refused("(")
    assert str(err) == "job.blocks[0].hosts_mask: not a valid regular expression '(': missing )"
    assert "invalid character class range" in str(refused("[z-a]"))
    assert str(refused("*", "mask")) == (
        "mask: not a valid regular expression '*': no argument for repetition operator"
    )


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        ("(a)\\1", "backreference \\1"),
        ("(?P<x>a)(?P=x)", "named backreference (?P=name)"),
        ("(?<x>a)\\k<x>", "named backreference \\k<name>"),
        ("farm(?=1)", "lookahead (?=...)"),
        ("farm(?!1)", "negative lookahead (?!...)"),
        ("(?<=a)b", "lookbehind (?<=...)"),
        ("(?<!a)b", "negative lookbehind (?<!...)"),
        ("(?>a)", "atomic group (?>...)"),
        ("a++", "possessive quantifier ++"),
        ("farm\\Z", "end anchor \\Z"),
    ],
)
def test_unsupported_features_are_named(pattern: str, feature: str) -> None:
    text = str(refused(pattern, "params.depend_mask"))
    assert feature in text
    assert "not supported" in text and "linear-time" in text


def test_length_cap() -> None:
    assert compile_pattern("a" * PATTERN_MAX, "mask").fullmatch("a" * PATTERN_MAX)
    err = refused("a" * (PATTERN_MAX + 1), "mask")
    assert f"{PATTERN_MAX + 1} characters long; at most {PATTERN_MAX}" in str(err)


def test_complexity_cap() -> None:
    err = refused(".{999}", "mask")
    assert "too complex" in str(err) and f"at most {PROGRAM_MAX}" in str(err)
    # beyond RE2's own memory bound (max_mem): the same words
    assert "too complex" in str(refused("[\\p{L}]{999}", "mask"))


def test_any_job_name_escaped_is_a_valid_mask() -> None:
    """afcmd jshow NAME sends the name escaped; names are 512 characters at most."""
    for name in ["(" * 512, "ж" * 512, "a-b " * 128]:
        assert compile_pattern(re.escape(name), "mask").fullmatch(name)


def test_long_messages_show_a_cut_pattern() -> None:
    text = str(refused("(" * 300, "mask"))
    assert len(text) < 200 and "…" in text


def test_refusal_is_pure() -> None:
    assert refusal("(", "missing ): (") == "not a valid regular expression '(': missing )"
    assert refusal("x(?=a)", "invalid perl operator: (?=").startswith("lookahead (?=...)")
    # (?P<name>) groups are fine; only (?P=name) is a backreference
    assert "named backreference" not in refusal("(?P", "invalid perl operator: (?P")


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_answer_at_once(pattern: str) -> None:
    """What froze the scheduler on Python's `re` (each character doubles its time)."""
    names = ["a" * 40 + "!", "a" * 512, "x" * 25 + "!"]
    started = time.perf_counter()
    compiled = compile_pattern(pattern, "mask")
    for name in names:
        compiled.fullmatch(name)
        compiled.search(name)
    assert time.perf_counter() - started < 0.05


def test_remembered_answers_stay_bounded() -> None:
    pattern = compile_pattern("r[0-9]+", "mask")
    for n in range(20_000):
        assert pattern.fullmatch(f"r{n}")
    assert len(pattern._full) <= 4096
