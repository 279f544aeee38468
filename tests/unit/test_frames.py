from __future__ import annotations

from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.scheduler.frames import (
    fill_frames,
    list_task_command,
    list_task_name,
    numeric_task_name,
    stepped_count,
    task_frames,
    task_order,
    tasks_count,
)

# --- frame ranges -------------------------------------------------------------------------


@settings(max_examples=400)
@given(
    first=st.integers(-500, 500),
    last=st.integers(-500, 500),
    per=st.integers(-3, 40),
    inc=st.integers(-3, 12),
)
def test_task_ranges_cover_the_grid_exactly_once(first: int, last: int, per: int, inc: int) -> None:
    count = tasks_count(first, last, per, inc)
    eff_last = max(first, last)
    eff_inc = max(inc, 1)
    grid = list(range(first, eff_last + 1, eff_inc))
    covered: list[int] = []
    prev_end = None
    for n in range(count):
        start, end = task_frames(n, first, last, per, inc)
        assert start <= end
        assert prev_end is None or start > prev_end
        prev_end = end
        covered.extend(range(start, end + 1, eff_inc))
        assert (start - first) % eff_inc == 0 and (end - first) % eff_inc == 0
    assert covered == grid
    assert count >= 1


def test_tasks_count_examples() -> None:
    assert tasks_count(1, 100, 10, 1) == 10
    assert tasks_count(1, 100, 7, 1) == 15
    assert tasks_count(1, 10, 1, 2) == 5  # 1 3 5 7 9
    assert tasks_count(5, 1, 1, 1) == 1  # first > last => one frame
    assert tasks_count(1, 10, 0, 0) == 10  # per/inc < 1 => 1


def test_task_frames_examples() -> None:
    assert task_frames(0, 1, 100, 10, 1) == (1, 10)
    assert task_frames(9, 1, 100, 10, 1) == (91, 100)
    assert task_frames(2, 1, 20, 3, 2) == (13, 17)
    assert task_frames(3, 1, 20, 3, 2) == (19, 19)
    assert task_frames(0, 7, 3, 5, 1) == (7, 7)


@pytest.mark.parametrize("n", [-1, 10, 11])
def test_task_frames_out_of_range(n: int) -> None:
    with pytest.raises(IndexError):
        task_frames(n, 1, 100, 10, 1)


# --- patterns -----------------------------------------------------------------------------


def test_fill_frames_alternates_start_end() -> None:
    assert fill_frames("nuke -F@#@-@#@ x", 1, 10) == "nuke -F1-10 x"
    assert fill_frames("a @#@ b @#@ c @#@", 1, 2) == "a 1 b 2 c 1"


def test_fill_frames_padding() -> None:
    assert fill_frames("img.@####@.exr", 7, 7) == "img.0007.exr"
    assert fill_frames("img.@##@.exr", 12345, 12345) == "img.12345.exr"
    assert fill_frames("x@@y", 3, 4) == "x3y"  # zero '#' is a group too


def test_fill_frames_semicolon_resets_to_start() -> None:
    files = "out/a.@####@.exr;out/b.@####@.exr"
    assert fill_frames(files, 5, 9) == "out/a.0005.exr;out/b.0005.exr"
    assert fill_frames("@#@-@#@;@#@-@#@", 1, 2) == "1-2;1-2"


def test_fill_frames_negative_numbers() -> None:
    assert fill_frames("f.@###@.exr", -7, -7) == "f.-007.exr"
    assert fill_frames("@#@..@#@", -3, 4) == "-3..4"


def test_fill_frames_without_groups_is_unchanged() -> None:
    for text in ("", "plain", "a@b", "@x@", "mail@#host", "##"):
        assert fill_frames(text, 1, 2) == text


def test_numeric_task_name() -> None:
    assert numeric_task_name("", 5, 5, 1) == "frame 5"
    assert numeric_task_name("", 1, 10, 1) == "frame 1-10"
    assert numeric_task_name("", 1, 9, 2) == "frame 1-9 / 2"
    assert numeric_task_name("shot @####@-@####@", 1, 10, 1) == "shot 0001-0010"


def test_list_task_command() -> None:
    assert list_task_command("render -x @#@ -y", "scene.ma") == "render -x scene.ma -y"
    assert list_task_command("echo ", "hello") == "echo hello"
    assert list_task_command("echo", "hello") == "echohello"  # the original adds no space
    assert list_task_command("", "ffmpeg -i a b") == "ffmpeg -i a b"
    assert list_task_command("@#@ && @#@", "t") == "t && t"


def test_list_task_name() -> None:
    assert list_task_name("", "mov") == "mov"
    assert list_task_name("task @#@ done", "mov") == "task mov done"
    assert list_task_name("fixed", "mov") == "fixed"


# --- pick order ---------------------------------------------------------------------------

SEQUENTIALS = [1, -1, 0, 2, 3, 5, -2, -3]


@settings(max_examples=300)
@given(num=st.integers(0, 300), seq=st.sampled_from(SEQUENTIALS), first=st.integers(-20, 20))
def test_task_order_yields_every_index_once(num: int, seq: int, first: int) -> None:
    order = list(task_order(num, seq, lambda i: first + i))
    assert sorted(order) == list(range(num))
    if num >= 2:
        if seq > 1:
            assert order[:2] == [0, num - 1]
        elif seq < -1:
            assert order[:2] == [num - 1, 0]
        elif seq == 0:
            assert order[:3] == [0, num - 1, num // 2] if num > 2 else order == [0, 1]
        elif seq == 1:
            assert order == list(range(num))
        else:
            assert order == list(range(num - 1, -1, -1))


def test_positive_step_order() -> None:
    # frames 1..12, one per task: first, last, multiples of 3 from frame 1, then the rest.
    order = list(task_order(12, 3, lambda i: 1 + i))
    assert order == [0, 11, 3, 6, 9, 1, 2, 4, 5, 7, 8, 10]
    assert stepped_count(12, 3, lambda i: 1 + i) == 5


def test_positive_step_uses_frames_not_indices() -> None:
    # 2 frames per task: tasks start at frames 0, 2, 4 … ; step 4 => tasks 2, 4, 6 …
    order = list(task_order(10, 4, lambda i: 2 * i))
    assert order[:6] == [0, 9, 2, 4, 6, 8]
    assert order[6:] == [1, 3, 5, 7]


def test_negative_step_order() -> None:
    order = list(task_order(12, -3, lambda i: 1 + i))
    assert order == [11, 0, 9, 6, 3, 10, 8, 7, 5, 4, 2, 1]
    assert stepped_count(12, -3, lambda i: 1 + i) == 5


def test_binary_subdivision_order() -> None:
    assert list(task_order(10, 0, lambda i: i)) == [0, 9, 5, 2, 7, 1, 3, 6, 8, 4]
    assert list(task_order(1, 0, lambda i: i)) == [0]
    assert list(task_order(2, 0, lambda i: i)) == [0, 1]
    assert list(task_order(3, 0, lambda i: i)) == [0, 2, 1]


def test_small_and_empty_orders() -> None:
    for seq in SEQUENTIALS:
        assert list(task_order(0, seq, lambda i: i)) == []
        assert list(task_order(1, seq, lambda i: i)) == [0]
        assert stepped_count(0, seq, lambda i: i) == 0
    assert stepped_count(1, 2, lambda i: i) == 1
    assert stepped_count(10, 1, lambda i: i) == 0
    assert stepped_count(10, 0, lambda i: i) == 0


@settings(max_examples=100)
@given(num=st.integers(0, 200), seq=st.sampled_from([2, 3, 5, -2, -3, -7]))
def test_stepped_count_matches_order_prefix(num: int, seq: int) -> None:
    def frame_of(i: int) -> int:
        return 10 + 3 * i

    count = stepped_count(num, seq, frame_of)
    head = list(islice(task_order(num, seq, frame_of), count))
    base = frame_of(0)
    ends = {0, num - 1} if num else set()
    assert all(i in ends or (frame_of(i) - base) % abs(seq) == 0 for i in head)
    rest = list(task_order(num, seq, frame_of))[count:]
    assert all((frame_of(i) - base) % abs(seq) != 0 and i not in ends for i in rest)


def test_task_order_is_lazy_for_large_blocks() -> None:
    calls = 0

    def frame_of(i: int) -> int:
        nonlocal calls
        calls += 1
        return i

    for seq in (1, -1, 0, 3, -3):
        calls = 0
        head = list(islice(task_order(100_000, seq, frame_of), 3))
        assert len(set(head)) == 3
        assert calls < 50
