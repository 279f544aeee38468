"""render.taskproc with real processes: output, exit, environment, groups, stop and kill."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
import zmq

from render.taskproc import TaskProcess, TaskSpec, TaskStartError
from tests.conftest import wait_for


def spec(command: str, **kw: object) -> TaskSpec:
    return TaskSpec(job_id=7, block_id=1, task_id=42, attempt=3, command=command, **kw)  # type: ignore[arg-type]


def start(command: str, tmp_path: Path, **kw: object) -> TaskProcess:
    return TaskProcess.start(
        spec(command, **kw), store_dir=tmp_path / "store", now=time.monotonic()
    )


def run_to_end(tp: TaskProcess, timeout: float = 10.0) -> bytes:
    """Drive the task like the render's loop: one zmq.Poller on the raw pipe fd."""
    poller = zmq.Poller()
    fd = tp.fileno()
    assert fd is not None
    poller.register(fd, zmq.POLLIN)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        events = dict(poller.poll(20))
        if fd is not None and fd in events:
            out += tp.read()
        now = time.monotonic()
        tp.kill_overdue(now)
        done = tp.poll_exit(now)
        if fd is not None and tp.fileno() is None:
            poller.unregister(fd)  # closed by read() or poll_exit(): the number may be reused
            fd = None
        if done:
            while chunk := tp.read():
                out += chunk
            return bytes(out)
        if now > deadline:
            tp.kill_now()
            pytest.fail(f"task did not finish within {timeout} s")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_output_of_both_streams_and_exit_code(tmp_path: Path) -> None:
    tp = start("echo hello; echo err >&2; exit 3", tmp_path)
    out = run_to_end(tp)
    assert b"hello\n" in out and b"err\n" in out
    assert tp.returncode == 3 and not tp.running and tp.finished
    assert tp.explain() == "exited with code 3"
    assert tp.fileno() is None
    assert tp.time_done is not None and tp.time_done >= tp.time_start
    assert not tp.stop_requested


def test_environment_has_farm_ids_and_job_environment(tmp_path: Path) -> None:
    command = 'echo "$AF_JOB_ID $AF_BLOCK_ID $AF_TASK_ID $AF_TASK_ATTEMPT [$MY_VAR] $PATH"'
    tp = start(command, tmp_path, environment={"MY_VAR": "a b", "AF_JOB_ID": "999"})
    out = run_to_end(tp).decode()
    assert out.startswith("7 1 42 3 [a b] ")  # the farm's ids win over the job's
    assert os.environ["PATH"] in out


def test_working_directory_and_fallback_to_store(tmp_path: Path) -> None:
    wdir = tmp_path / "wd"
    wdir.mkdir()
    out = run_to_end(start("pwd", tmp_path, working_directory=str(wdir)))
    assert Path(out.decode().strip()).resolve() == wdir.resolve()

    store = tmp_path / "store"
    assert not store.exists()
    out = run_to_end(start("pwd", tmp_path, working_directory=str(tmp_path / "missing")))
    assert Path(out.decode().strip()).resolve() == store.resolve()
    assert run_to_end(start("pwd", tmp_path)).decode().strip() == str(store)


def test_own_process_group_niceness_and_stop(tmp_path: Path) -> None:
    tp = start("sleep 5", tmp_path)
    assert os.getpgid(tp.pid) == tp.pid
    assert os.getsid(tp.pid) == tp.pid
    assert psutil.Process(tp.pid).nice() >= 10
    began = time.monotonic()
    assert tp.read() == b""  # nothing to read: returns at once, no EAGAIN raised
    assert not tp.poll_exit(time.monotonic()) and tp.running
    assert time.monotonic() - began < 0.5
    tp.stop(time.monotonic())
    run_to_end(tp)
    assert tp.stop_requested
    assert tp.explain() == "killed by signal 15 (SIGTERM)"


def test_no_nice_when_zero(tmp_path: Path) -> None:
    tp = TaskProcess.start(spec("sleep 5"), nice=0, store_dir=tmp_path, now=time.monotonic())
    assert psutil.Process(tp.pid).nice() == os.nice(0)
    tp.kill_now()
    run_to_end(tp)
    assert tp.explain() == "killed by signal 9 (SIGKILL)"


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid(1)")
def test_stop_kills_a_tree_that_ignores_sigterm(tmp_path: Path) -> None:
    # Everything ignores SIGTERM (inherited); one child even left the process group.
    tp = start('trap "" TERM; setsid sleep 60 & sleep 60 & wait', tmp_path)
    tp.terminate_wait = 0.5
    leader = psutil.Process(tp.pid)

    def spawned() -> list[psutil.Process]:
        kids = leader.children(recursive=True)
        left = [k for k in kids if os.getpgid(k.pid) != tp.pid]  # setsid has run
        return kids if len(kids) >= 2 and left else []

    children = wait_for(spawned, 5, "two children, one outside the group")
    pids = [tp.pid, *(c.pid for c in children)]
    stopped_at = time.monotonic()
    tp.stop(stopped_at)
    tp.stop(stopped_at + 100)  # a second stop changes nothing
    run_to_end(tp)
    assert time.monotonic() - stopped_at >= 0.5  # SIGTERM was given its wait
    wait_for(lambda: all(gone(pid) for pid in pids), 5, "every process of the tree to be gone")
    assert tp.explain() == "killed by signal 9 (SIGKILL)"


def test_stop_reaches_children_that_left_the_group_with_sigterm(tmp_path: Path) -> None:
    tp = start("setsid sleep 60 & wait", tmp_path)
    leader = psutil.Process(tp.pid)
    child = wait_for(
        lambda: [k for k in leader.children() if os.getpgid(k.pid) != tp.pid],
        5,
        "the child to leave the group",
    )[0]
    tp.stop(time.monotonic())
    wait_for(lambda: gone(child.pid), 5, "SIGTERM to reach the child outside the group")
    run_to_end(tp)


def test_background_grandchild_does_not_hold_the_task(tmp_path: Path) -> None:
    tp = start('sleep 30 & echo "bg $!"; echo done', tmp_path)
    began = time.monotonic()
    out = run_to_end(tp, timeout=6).decode()
    assert time.monotonic() - began < 4
    assert "done" in out and tp.returncode == 0
    bg = int(out.split("bg ", 1)[1].split()[0])
    wait_for(lambda: gone(bg), 5, "the leftover background process to be killed")


def test_start_errors(tmp_path: Path) -> None:
    for command in ("", "   \n"):
        with pytest.raises(TaskStartError, match="empty command"):
            start(command, tmp_path)
    with pytest.raises(TaskStartError, match="/nonexistent/sh"):
        TaskProcess.start(spec("true"), cmd_shell="/nonexistent/sh -c", store_dir=tmp_path, now=0.0)
    with pytest.raises(TaskStartError):
        TaskProcess.start(spec("true"), cmd_shell="'unclosed", store_dir=tmp_path, now=0.0)


def test_cmd_shell_is_split(tmp_path: Path) -> None:
    tp = TaskProcess.start(
        spec("echo $0-$BASH_VERSION"), cmd_shell="/bin/bash -c", store_dir=tmp_path, now=0.0
    )
    out = run_to_end(tp).decode()
    assert out.startswith("/bin/bash-") and len(out.strip()) > len("/bin/bash-")


def test_large_output_is_read_fully(tmp_path: Path) -> None:
    size = 5_000_000
    tp = start(f"yes 0123456789abcdef | head -c {size}", tmp_path)
    out = run_to_end(tp, timeout=60)
    assert len(out) == size
    assert out == (b"0123456789abcdef\n" * (size // 17 + 1))[:size]
    assert tp.returncode == 0


def test_explain_signals(tmp_path: Path) -> None:
    tp = start("kill -INT $$", tmp_path)
    run_to_end(tp)
    assert tp.explain() == "killed by signal 2 (SIGINT)"


def test_a_task_gets_sigint_even_when_afrender_ignores_it(tmp_path: Path) -> None:
    """afrender started by nohup, or in the background from a script, has SIGINT ignored;
    its tasks must not inherit that (an ignored signal survives exec)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        tp = start("kill -INT $$; sleep 5", tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    run_to_end(tp)
    assert tp.explain() == "killed by signal 2 (SIGINT)"
