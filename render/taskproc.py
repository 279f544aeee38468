"""One task's process on the render: start, non-blocking output, exit, stop and kill.

The render's single poll loop drives it: it registers `fileno()` in its zmq.Poller, calls
`read()` when the fd is readable and `poll_exit(now)` / `kill_overdue(now)` each pass. Nothing
here blocks or starts a thread.

The command runs in its own session, so its process group id is its pid and a stop reaches
everything it started. Exit is detected with waitid(WNOWAIT): the exited shell stays a zombie,
keeping its pid and so its group id reserved, until the task is over. Signalling the group can
then never hit an unrelated process that got the number again (pid_max is often 32768).

Contract for the loop: when `fileno()` turns None (after `read()` or `poll_exit()`), unregister
the fd registered before; once `poll_exit()` returned True, call `read()` until it returns b""
for the last output. Leftovers of a finished task (background children) are killed then.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
TERMINATE_WAIT_KILL = 10.0  # AFRENDER::TERMINATEWAITKILL: SIGTERM first, SIGKILL after this
EXIT_OUTPUT_GRACE = 2.0  # how long a background child may hold the pipe after the shell exited
READ_CHUNK = 65536
DRAIN_LIMIT = 1 << 20  # bytes poll_exit() buffers per call: a busy writer cannot hold the loop


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What the server sent to run: the final command line and its context."""

    job_id: int
    block_id: int
    task_id: int
    attempt: int
    command: str  # final command line, patterns already filled by the server
    working_directory: str = ""  # missing or nonexistent => the render's store folder
    environment: dict[str, str] = field(default_factory=dict)
    name: str = ""
    job_name: str = ""
    block_name: str = ""
    user_name: str = ""
    service: str = "generic"
    parser: str = ""
    capacity: int = 1000


class TaskStartError(Exception):
    """The task could not start (reported as "failed to start"); the message says why."""


def task_environment(spec: TaskSpec) -> dict[str, str]:
    """The render's environment, the job's on top, the farm ids last (they are authoritative)."""
    env = {**os.environ, **{str(k): str(v) for k, v in spec.environment.items()}}
    env.update(AF_JOB_ID=str(spec.job_id), AF_BLOCK_ID=str(spec.block_id))
    env.update(AF_TASK_ID=str(spec.task_id), AF_TASK_ATTEMPT=str(spec.attempt))
    return env


def _working_directory(spec: TaskSpec, store_dir: Path) -> str:
    if spec.working_directory and os.path.isdir(spec.working_directory):
        return spec.working_directory
    if spec.working_directory:
        log.warning(
            "task %d.%d.%d: working directory '%s' does not exist, using %s",
            *(spec.job_id, spec.block_id, spec.task_id, spec.working_directory, store_dir),
        )
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskStartError(f"store folder {store_dir}: {exc.strerror or exc}") from exc
    return str(store_dir)


def _child_setup(increment: int) -> None:
    """Runs in the child before exec: the command and all it forks start niced, and the
    task's shell is killed if afrender dies (a restarted afrender kills what is left).

    A task gets SIGINT and SIGQUIT as a program started from a terminal has them: an
    afrender started by nohup or from a script in the background has them ignored, and an
    ignored signal stays ignored across exec (a renderer's own Ctrl-C handling, a task's
    `kill -INT`)."""
    for sig in (signal.SIGINT, signal.SIGQUIT):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    if increment > 0:
        with contextlib.suppress(OSError):
            os.nice(increment)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class TaskProcess:
    """A started task. `returncode` is None until `poll_exit()` has seen the shell exit."""

    def __init__(self, spec: TaskSpec, popen: subprocess.Popen[bytes], now: float) -> None:
        assert popen.stdout is not None
        self.spec = spec
        self.pid = popen.pid
        self.time_start = now
        self.time_done: float | None = None
        self.returncode: int | None = None
        self.stop_requested = False
        self.terminate_wait = TERMINATE_WAIT_KILL
        self.exit_grace = EXIT_OUTPUT_GRACE
        self._popen = popen
        self._pipe = popen.stdout
        self._fd: int | None = self._pipe.fileno()
        os.set_blocking(self._fd, False)
        self._pending = bytearray()  # read by poll_exit(), handed out by read()
        self._kill_at: float | None = None
        self._killed = False
        self._descendants: list[psutil.Process] = []
        self.finished = False  # poll_exit() returned True: output read, leftovers killed
        self._reaped = False  # from then on the pid may belong to someone else: no signals

    @classmethod
    def start(
        cls,
        spec: TaskSpec,
        *,
        cmd_shell: str = "/bin/sh -c",
        nice: int = 10,
        store_dir: Path,
        now: float,
    ) -> TaskProcess:
        """Launch `cmd_shell command` in a new session; TaskStartError says why it could not."""
        if not spec.command.strip():
            raise TaskStartError("empty command")
        try:
            shell = shlex.split(cmd_shell)
        except ValueError as exc:
            raise TaskStartError(f"bad cmd_shell {cmd_shell!r}: {exc}") from exc
        if not shell:
            raise TaskStartError("empty cmd_shell")
        cwd = _working_directory(spec, Path(store_dir))
        try:
            popen = subprocess.Popen(
                [*shell, spec.command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=task_environment(spec),
                start_new_session=True,
                preexec_fn=functools.partial(_child_setup, nice),
                bufsize=0,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise TaskStartError(f"cannot start {shell[0]}: {reason}") from exc
        return cls(spec, popen, now)

    def fileno(self) -> int | None:
        return self._fd

    def read(self, max_bytes: int = READ_CHUNK) -> bytes:
        """Output available now, at most max_bytes; b"" when none. Closes the pipe at EOF."""
        out = bytearray(self._pending[:max_bytes])
        del self._pending[:max_bytes]
        while len(out) < max_bytes and (chunk := self._read_fd(max_bytes - len(out))):
            out += chunk
        return bytes(out)

    def _read_fd(self, size: int) -> bytes:
        if self._fd is None:
            return b""
        try:
            data = os.read(self._fd, size)
        except BlockingIOError:
            return b""
        except OSError as exc:
            log.debug("task pid %d: output pipe: %s", self.pid, exc)
            data = b""
        if not data:
            self._close_pipe()
        return data

    def _close_pipe(self) -> None:
        self._fd = None
        self._pipe.close()

    @property
    def running(self) -> bool:
        """The shell has not exited, as of the last poll_exit()."""
        return self.returncode is None

    def poll_exit(self, now: float) -> bool:
        """True once the shell exited and its output is all read (or the grace is over)."""
        if self.finished:
            return True
        if not self._check_exit(now):
            return False
        while len(self._pending) < DRAIN_LIMIT and (chunk := self._read_fd(READ_CHUNK)):
            self._pending += chunk
        assert self.time_done is not None
        stopping = self._kill_at is not None and not self._killed and now < self._kill_at
        if stopping and (self._fd is not None or self._leftovers()):
            return False  # a stop is in progress: give the tree its terminate wait
        if self._fd is not None:
            if now < self.time_done + self.exit_grace:
                return False
            self._close_pipe()  # a background child holds the pipe: do not wait for it
        self._finish()
        return True

    def _leftovers(self) -> bool:
        """Descendants remembered at stop() that still run (they may have left the group)."""
        return any(_alive(p) for p in self._descendants)

    def _check_exit(self, now: float) -> bool:
        if self.returncode is not None:
            return True
        try:
            res = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): the group is unsafe
            self._reaped = True
            rc = self._popen.poll()
            self.returncode = rc if rc is not None else 0
        else:
            if res is None:
                return False
            exited = res.si_code == os.CLD_EXITED
            self.returncode = res.si_status if exited else -res.si_status
        self.time_done = now
        return True

    def _finish(self) -> None:
        """Kill what is left of the task, then reap the shell (its pid is free after this)."""
        self.finished = True
        self._kill_everything(stray=self.stop_requested)
        self._popen.poll()
        self._reaped = True

    def stop(self, now: float) -> None:
        """SIGTERM the process group (and descendants that left it); SIGKILL later."""
        if self.stop_requested or self.finished:
            return
        self.stop_requested = True
        self._kill_at = now + self.terminate_wait
        self._descendants = self._children()
        self._signal_group(signal.SIGTERM)
        for proc in self._descendants:
            if _pgid(proc.pid) not in (self.pid, None):
                with contextlib.suppress(psutil.Error):
                    proc.terminate()

    def kill_overdue(self, now: float) -> None:
        """SIGKILL everything once the terminate wait after stop() is over."""
        if self._kill_at is not None and not self._killed and now >= self._kill_at:
            log.info("task pid %d: still there after SIGTERM, SIGKILL", self.pid)
            self._kill_everything(stray=True)

    def kill_now(self) -> None:
        """SIGKILL at once (the render is exiting)."""
        if self.finished:
            return
        self.stop_requested = True
        self._kill_everything(stray=True)

    def _kill_everything(self, *, stray: bool) -> None:
        """SIGKILL the group; with `stray`, also descendants that left it (setsid, daemons)."""
        if self._reaped:
            return
        if stray:
            known = {p.pid for p in self._descendants}
            self._descendants += [p for p in self._children() if p.pid not in known]
        self._signal_group(signal.SIGKILL)
        if stray:
            for proc in self._descendants:
                with contextlib.suppress(psutil.Error):
                    proc.kill()  # psutil checks the create time: a reused pid is left alone
            self._killed = True

    def _children(self) -> list[psutil.Process]:
        if self._reaped:
            return []
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._reaped:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def explain(self) -> str:
        """The exit in words, for the task log."""
        rc = self.returncode
        if rc is None:
            return "running"
        if rc >= 0:
            return f"exited with code {rc}"
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            return f"killed by signal {-rc}"
        return f"killed by signal {-rc} ({name})"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
