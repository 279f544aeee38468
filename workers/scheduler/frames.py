"""Frame ranges, name/command patterns and task pick order of a block.

Pure arithmetic shared by job submission (task counts and names), the solver (which task
to try next) and the render side (filling `@#@` patterns). Nothing here keeps state, so
the same inputs always give the same tasks, on the server and in tests alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

# One `@`, zero or more `#`, one `@`; or a `;`, which restarts the start/end alternation.
_FRAME_GROUP = re.compile(r"@(#*)@|;")
_LIST_ARG = "@#@"


def _normalise(first: int, last: int, per: int, inc: int) -> tuple[int, int, int, int]:
    """Clamp like the original so a careless submission still gives at least one task."""
    if per < 1:
        per = 1
    if inc < 1:
        inc = 1
    if first > last:
        last = first
    return first, last, per, inc


def tasks_count(frame_first: int, frame_last: int, frames_per_task: int, frames_inc: int) -> int:
    """Number of tasks of a numeric block: ceil(frames on the inc grid / frames per task)."""
    first, last, per, inc = _normalise(frame_first, frame_last, frames_per_task, frames_inc)
    frames = (last - first) // inc + 1
    return -(-frames // per)


def task_frames(
    n: int, frame_first: int, frame_last: int, frames_per_task: int, frames_inc: int
) -> tuple[int, int]:
    """First and last frame of numeric task `n`, both on the inc grid, ranges never overlap."""
    first, last, per, inc = _normalise(frame_first, frame_last, frames_per_task, frames_inc)
    count = -(-((last - first) // inc + 1) // per)
    if not 0 <= n < count:
        raise IndexError(f"task {n} out of range 0..{count - 1}")
    step = per * inc
    start = first + n * step
    end = min(start + step - 1, last)
    end -= (end - first) % inc
    return start, end


def _padded(number: int, width: int) -> str:
    """Zero-pad the absolute value, so -7 in `@###@` reads `-007`."""
    if number < 0:
        return "-" + str(-number).zfill(width)
    return str(number).zfill(width)


def fill_frames(pattern: str, start: int, end: int) -> str:
    """Replace `@#…#@` groups with start, end, start… (`;` restarts at start, for file lists)."""
    if "@" not in pattern:
        return pattern
    use_end = False

    def replace(match: re.Match[str]) -> str:
        nonlocal use_end
        hashes = match.group(1)
        if hashes is None:  # a ';' separating file patterns
            use_end = False
            return ";"
        number = end if use_end else start
        use_end = not use_end
        return _padded(number, len(hashes))

    return _FRAME_GROUP.sub(replace, pattern)


def numeric_task_name(tasks_name: str, start: int, end: int, inc: int) -> str:
    """Task name of a numeric block: the block's pattern filled, else `frame S[-E[ / inc]]`."""
    if tasks_name:
        return fill_frames(tasks_name, start, end)
    if start == end:
        return f"frame {start}"
    if inc > 1:
        return f"frame {start}-{end} / {inc}"
    return f"frame {start}-{end}"


def list_task_command(block_command: str, task_command: str) -> str:
    """Command of a list (non-numeric) task: the task part put into the block's `@#@`."""
    if not block_command:
        return task_command
    if _LIST_ARG in block_command:
        return block_command.replace(_LIST_ARG, task_command)
    return block_command + task_command  # appended as is, like the original's service.py


def list_task_name(tasks_name: str, task_name: str) -> str:
    """Display name of a list task: the block's tasks_name with `@#@` set to the task's name."""
    if not tasks_name:
        return task_name
    return tasks_name.replace(_LIST_ARG, task_name)


def _stepped(step: int, frame_of: Callable[[int], int]) -> Callable[[int], bool]:
    """Predicate: is the task's frame a multiple of `step` counted from the first task's frame."""
    base = frame_of(0)
    return lambda i: (frame_of(i) - base) % step == 0


def task_order(num_tasks: int, sequential: int, frame_of: Callable[[int], int]) -> Iterator[int]:
    """Yield every task index once, in the order the solver tries them (SPEC §4).

    Lazy so that a solver needing one ready task from a 100,000-task block pays for a few.
    1: first→last; -1: last→first; N>1: first, last, then tasks whose frame is a multiple of N
    from the first frame, then the rest first→last; N<-1: last, first, the multiples of |N|
    from the end, then the rest from the end; 0: binary subdivision, then any left in order.
    """
    if num_tasks <= 0:
        return
    last = num_tasks - 1
    if sequential == 1:
        yield from range(num_tasks)
    elif sequential == -1:
        yield from range(last, -1, -1)
    elif sequential == 0:
        yield from _binary_order(num_tasks)
    else:
        stepped = _stepped(abs(sequential), frame_of)
        if sequential > 1:
            ends, middle = (0, last), range(1, last)
        else:
            ends, middle = (last, 0), range(last - 1, 0, -1)
        yield ends[0]
        if last > 0:
            yield ends[1]
        for i in middle:
            if stepped(i):
                yield i
        for i in middle:
            if not stepped(i):
                yield i


def _binary_order(num_tasks: int) -> Iterator[int]:
    """First, last, middle, quarters, eighths… as the original's `powered` loop visits them."""
    seen: set[int] = set()
    last = num_tasks - 1
    powered = 1
    while powered < num_tasks:
        for i in range(powered + 1):
            index = min(i * num_tasks // powered, last)
            if index not in seen:
                seen.add(index)
                yield index
        powered <<= 1
    for index in range(num_tasks):
        if index not in seen:
            yield index


def stepped_count(num_tasks: int, sequential: int, frame_of: Callable[[int], int]) -> int:
    """How many leading items of `task_order` are the stepped part (first, last, multiples).

    With `ppa` the solver stops after these; 0 when the order is not stepped (|N| <= 1).
    """
    if num_tasks <= 0 or -1 <= sequential <= 1:
        return 0
    if num_tasks == 1:
        return 1
    stepped = _stepped(abs(sequential), frame_of)
    return 2 + sum(1 for i in range(1, num_tasks - 1) if stepped(i))
