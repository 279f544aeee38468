from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.validate import Invalid
from workers.scheduler.masks import (
    Mask,
    hosts_mask,
    need_mask,
    pools_allow,
    pools_priority,
    regex_full,
)


def test_empty_mask_matches_everything_and_excludes_nothing() -> None:
    for mode in ("find", "regex"):
        mask = Mask("", mode)
        assert mask.empty
        assert mask.match("anything") and mask.match("")
        assert not mask.excludes("anything")


def test_separators_only_is_empty() -> None:
    mask = Mask(" ,|; : ", "find")
    assert mask.empty
    assert mask.match("x")
    assert not mask.excludes("x")


def test_find_mode_starts_with_any_token() -> None:
    mask = hosts_mask("farm|ws;gpu, node: big\tx")
    assert not mask.empty
    for host in ("farm01", "ws7", "gpu", "node-3", "big", "x1"):
        assert mask.match(host)
        assert mask.excludes(host)
    for host in ("render-farm", "myws", "", "GPU1"):
        assert not mask.match(host)
        assert not mask.excludes(host)


def test_find_mode_contain() -> None:
    mask = Mask("linux 64", "find", contain=True)
    assert mask.match("unix linux 64")
    assert mask.match("windows 64")
    assert not mask.match("macosx 32")
    # regex metacharacters in find tokens are literal
    assert Mask("a.b", "find", contain=True).match("xa.by")
    assert not Mask("a.b", "find", contain=True).match("xaxby")


def test_need_mask() -> None:
    assert need_mask("linux").match("unix linux 64")
    assert not need_mask("windows").match("unix linux 64")
    assert need_mask("").match("unix linux 64")


def test_regex_mode_full_match_and_contain() -> None:
    mask = hosts_mask("farm[0-9]+", "regex")
    assert mask.match("farm12")
    assert not mask.match("farm12a")
    assert not mask.match("xfarm12")
    search = Mask("farm[0-9]+", "regex", contain=True)
    assert search.match("xfarm12a")
    assert not search.match("farmx")


def test_invalid_regex_names_the_field() -> None:
    with pytest.raises(Invalid) as err:
        Mask("farm[", "regex", field="hosts_mask")
    assert err.value.path == "hosts_mask"
    assert "not a valid regular expression" in str(err.value)
    assert str(err.value).startswith("hosts_mask: ")


def test_invalid_mode() -> None:
    with pytest.raises(Invalid) as err:
        Mask("x", "glob", field="hosts_mask_type")
    assert err.value.path == "hosts_mask_type"


def test_regex_full() -> None:
    rx = regex_full("comp|sim_.*", "depend_mask")
    assert rx.fullmatch("comp") and rx.fullmatch("sim_a")
    assert not rx.fullmatch("comp2")
    with pytest.raises(Invalid) as err:
        regex_full("(", "blocks[1].tasks_depend_mask")
    assert err.value.path == "blocks[1].tasks_depend_mask"


def test_mask_equality() -> None:
    assert Mask("a b", "find") == Mask("a b", "find")
    assert Mask("a", "find") != Mask("a", "regex")
    assert len({Mask("a"), Mask("a")}) == 1


@given(st.text(alphabet="abc|;, :", max_size=12), st.text(alphabet="abc", max_size=6))
def test_find_mode_matches_reference(pattern: str, host: str) -> None:
    tokens = [
        t
        for t in pattern.replace("|", " ")
        .replace(";", " ")
        .replace(",", " ")
        .replace(":", " ")
        .split()
        if t
    ]
    assert Mask(pattern).match(host) == (not tokens or any(host.startswith(t) for t in tokens))
    contain = Mask(pattern, contain=True).match(host)
    assert contain == (not tokens or any(t in host for t in tokens))


# --- pools --------------------------------------------------------------------------------


def test_pools_allow_no_entries() -> None:
    assert pools_allow({}, "/farm/gpu")


def test_pools_forbid_entry() -> None:
    assert not pools_allow({"/farm/gpu": -100}, "/farm/gpu/a")
    assert pools_allow({"/farm/gpu": -100}, "/farm/cpu")
    assert not pools_allow({"gpu": -100}, "/farm/gpu")  # relative: substring
    assert pools_allow({"/gpu": -100}, "/farm/gpu")  # absolute: prefix only


def test_pools_require_entry() -> None:
    assert pools_allow({"/farm/gpu": 100}, "/farm/gpu")
    assert not pools_allow({"/farm/gpu": 100}, "/farm/cpu")
    assert pools_allow({"/farm/gpu": 100, "/farm/cpu": 100}, "/farm/cpu/x")
    assert pools_allow({"cpu": 100}, "/farm/cpu")


def test_pools_forbid_wins_over_require() -> None:
    pools = {"/farm": 100, "/farm/bad": -100}
    assert pools_allow(pools, "/farm/good")
    assert not pools_allow(pools, "/farm/bad/x")


def test_pools_middle_values_do_not_filter() -> None:
    assert pools_allow({"/farm/gpu": 50, "/x": -99}, "/x/y")


def test_pools_priority() -> None:
    pools = {"/farm": 10, "gpu": 20, "/other": 40, "cpu": -5}
    assert pools_priority(pools, "/farm/gpu") == 30
    assert pools_priority(pools, "/farm/cpu") == 5
    assert pools_priority(pools, "/nowhere") == 0
    assert pools_priority({}, "/farm") == 0


# --- masks on RE2 (issue 20) ----------------------------------------------------------------


def test_regex_masks_refuse_what_re2_does_not_run() -> None:
    with pytest.raises(Invalid) as err:
        hosts_mask("farm(?!01)", "regex", field="job.hosts_mask")
    assert err.value.path == "job.hosts_mask"
    assert "negative lookahead" in str(err.value)
    with pytest.raises(Invalid) as err:
        regex_full("(a)\\1", "job.depend_mask")
    assert err.value.path == "job.depend_mask" and "backreference \\1" in str(err.value)


def test_catastrophic_regex_mask_is_quick() -> None:
    mask = hosts_mask("(a+)+$", "regex")
    assert not mask.match("a" * 40 + "!")
    assert regex_full("(a|aa)+$", "depend_mask").fullmatch("a" * 40)


def test_find_hosts_mask_with_regex_syntax_is_refused() -> None:
    """`farm.*` or `(` in find mode would match no host: the job would wait forever."""
    for pattern in ["(", "farm.*", "farm[0-9]+", "^ws", "a|b\\d"]:
        with pytest.raises(Invalid) as err:
            hosts_mask(pattern, "find", field="job.blocks[0].hosts_mask")
        assert err.value.path == "job.blocks[0].hosts_mask"
        assert 'hosts_mask_type to "regex"' in str(err.value)
    # find words keep their meaning: dots, dashes and underscores are host name characters
    assert hosts_mask("farm.a render-1 gpu_x").match("render-12")


def test_find_contain_tokens_are_literal() -> None:
    assert need_mask("(a+)+ linux").match("unix linux 64")
    assert need_mask("a+").match("xa+y") and not need_mask("a+").match("aa")
