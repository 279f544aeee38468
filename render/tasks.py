"""The render's running tasks: start, output, progress, stop, and the final results it keeps.

A final result stays in the outbox until the server closes it, and is sent again when no
close came; the server treats a repeat as already handled. Output is read as it arrives
(the task pipes sit in the render's one poll loop) and streamed in bounded chunks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import psutil

from events.effects import EFFECT_ID_ENV, EFFECT_RUN_ENV
from render import services
from render.output import OutputBuffer
from render.parsers import Parser, get_parser
from render.taskproc import TaskProcess, TaskSpec, TaskStartError

log = logging.getLogger("afrender.tasks")

Key = tuple[int, int, int, int]  # job id, block id, task id, attempt
CHUNK_MAX = 65536  # output bytes per task in one message


@dataclass(slots=True)
class Running:
    proc: TaskProcess
    parser: Parser
    output: OutputBuffer
    skipped: int = 0  # streamed bytes dropped for size: the final report then carries the cut text
    pidfd: int | None = None  # readable when the shell exits: the loop wakes at once

    def close_pidfd(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


@dataclass(slots=True)
class Final:
    report: dict[str, Any]
    sent: float = 0.0


@dataclass
class TaskManager:
    store_dir: Path
    cmd_shell: str = "/bin/sh -c"
    nice: int = 10
    output_limit: int = 1_000_000
    kill_wait: float = 10.0
    events_service: str = "events"
    postcmd_service: str = "postcmd"
    running: dict[Key, Running] = field(default_factory=dict)
    outbox: dict[Key, Final] = field(default_factory=dict)
    started_total: int = 0

    def __post_init__(self) -> None:
        """Finals kept by an earlier afrender come back; tasks it left running are killed."""
        self.outbox_dir = self.store_dir / "outbox"
        self.running_dir = self.store_dir / "running"
        for folder in (self.outbox_dir, self.running_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.outbox_dir.glob("*.msgpack")):
            try:
                report = msgpack.unpackb(path.read_bytes(), raw=False)
                key = (report["job_id"], report["block_id"], report["task_id"], report["attempt"])
            except (OSError, ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
                log.warning("unreadable result %s (%s): dropped", path, exc)
                path.unlink(missing_ok=True)
                continue
            self.outbox[key] = Final(report)
            # said again: an afrender killed between keeping a result and saying so leaves
            # no other line of it (the server still gets the result)
            log.info(
                "task %s %s (kept from before): offered again", list(key), report.get("status")
            )
        if self.outbox:
            log.info("%d task results from before kept for the server", len(self.outbox))
        for path in self.running_dir.iterdir():
            _kill_leftover(path)
            path.unlink(missing_ok=True)

    @staticmethod
    def _file(key: Key) -> str:
        return ".".join(map(str, key))

    def _keep(self, key: Key, final: Final) -> None:
        """A final result goes to disk before it is offered to the server."""
        path = self.outbox_dir / f"{self._file(key)}.msgpack"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_bytes(msgpack.packb(final.report, use_bin_type=True))
            os.replace(tmp, path)
        except OSError as exc:
            log.error("cannot keep the result of task %s on disk: %s", list(key), exc)
        self.outbox[key] = final

    def held(self) -> list[list[int]]:
        """Every run this render holds: running, or finished and not yet closed by the server."""
        return [list(k) for k in self.running] + [list(k) for k in self.outbox]

    def start(self, task: dict[str, Any], now: float) -> None:
        key = (task["job_id"], task["block_id"], task["task_id"], task["attempt"])
        if key in self.running or key in self.outbox:
            return  # a repeated start message: it runs already
        spec = TaskSpec(
            job_id=key[0],
            block_id=key[1],
            task_id=key[2],
            attempt=key[3],
            command=task.get("command", ""),
            working_directory=task.get("working_directory", ""),
            environment={str(k): str(v) for k, v in (task.get("environment") or {}).items()},
            name=task.get("name", ""),
            job_name=task.get("job_name", ""),
            block_name=task.get("block_name", ""),
            user_name=task.get("user_name", ""),
            service=task.get("service", "generic"),
            parser=task.get("parser", ""),
            capacity=task.get("capacity", 1000),
        )
        spec = services.prepare(spec, self.events_service, self.postcmd_service)
        try:
            proc = TaskProcess.start(
                spec, cmd_shell=self.cmd_shell, nice=self.nice, store_dir=self.store_dir, now=now
            )
        except TaskStartError as exc:
            log.error("task %s '%s' failed to start: %s", list(key), spec.name, exc)
            self.outbox[key] = Final(
                self._report(
                    key, "failed_start", explain=f"failed to start: {exc}", output=str(exc).encode()
                )
            )
            return
        proc.terminate_wait = self.kill_wait
        with contextlib.suppress(OSError, psutil.Error):
            created = psutil.Process(proc.pid).create_time()
            (self.running_dir / self._file(key)).write_text(f"{proc.pid} {created}")
        self.started_total += 1
        pidfd = None
        with contextlib.suppress(OSError, AttributeError):
            pidfd = os.pidfd_open(proc.pid)
        self.running[key] = Running(
            proc, get_parser(spec.parser), OutputBuffer(self.output_limit), pidfd=pidfd
        )
        log.info("started task %s '%s' (pid %d)", list(key), spec.name, proc.pid)
        run = spec.environment.get(EFFECT_RUN_ENV, "1")
        if run != "1":  # a system task that may have taken effect before (SystemJob.started)
            effect = spec.environment.get(EFFECT_ID_ENV, "?")
            log.warning(
                "task %s '%s' is a retry: run %s of effect %s", list(key), spec.name, run, effect
            )

    def fds(self) -> dict[int, tuple[Key, bool]]:
        """File descriptors to poll: each task's output pipe, and its pidfd (True) until exit."""
        fds: dict[int, tuple[Key, bool]] = {}
        for key, run in self.running.items():
            if (fd := run.proc.fileno()) is not None:
                fds[fd] = (key, False)
            if run.pidfd is not None:
                fds[run.pidfd] = (key, True)
        return fds

    def exited(self, key: Key) -> None:
        """The shell exited (its pidfd is readable): stop polling the pidfd; check() reaps."""
        run = self.running.get(key)
        if run is not None:
            run.close_pidfd()

    def read(self, key: Key, now: float) -> None:
        run = self.running.get(key)
        if run is None:
            return
        data = run.proc.read()
        if data:
            run.output.append(data)
            run.parser.feed(data)
            if run.parser.stop_wanted() and not run.proc.stop_requested:
                run.proc.stop(now)

    def stop(self, keys: list[list[int]], now: float) -> None:
        for key in keys:
            run = self.running.get(tuple(key))  # type: ignore[arg-type]
            if run is not None and not run.proc.stop_requested:
                log.info("stopping task %s as the server asks", key)
                run.proc.stop(now)

    def close(self, keys: list[list[int]]) -> None:
        for key in keys:
            if self.outbox.pop(tuple(key), None) is not None:  # type: ignore[arg-type]
                (self.outbox_dir / f"{self._file(tuple(key))}.msgpack").unlink(missing_ok=True)  # type: ignore[arg-type]

    def check(self, now: float) -> list[Key]:
        """Reap finished processes into the outbox; kill stops that overran. Returns new finals."""
        finished = []
        for key, run in list(self.running.items()):
            run.proc.kill_overdue(now)
            if not run.proc.poll_exit(now):
                continue
            while data := run.proc.read():
                run.output.append(data)
                run.parser.feed(data)
            run.parser.finish()
            run.close_pidfd()
            del self.running[key]
            status = self._status(run)
            chunk, skipped = run.output.take_new(CHUNK_MAX)
            extra: dict[str, Any] = {}
            if run.skipped + skipped or run.output.cut:
                extra["output_full"] = run.output.text().encode()
            progress = run.parser.progress
            (self.running_dir / self._file(key)).unlink(missing_ok=True)
            self._keep(
                key,
                Final(
                    self._report(
                        key,
                        status,
                        explain=run.proc.explain(),
                        output=chunk,
                        exit_code=run.proc.returncode if run.proc.returncode is not None else -1,
                        percent=100 if status == "success" else progress.percent,
                        warning=progress.warning,
                        time_start=run.proc.time_start,
                        time_done=run.proc.time_done or now,
                        **extra,
                    )
                ),
            )
            finished.append(key)
            log.info("task %s %s: %s", list(key), status, run.proc.explain())
        return finished

    @staticmethod
    def _status(run: Running) -> str:
        p = run.parser.progress
        if p.fatalerror:
            return "parser_fatal"
        if p.error:
            return "parser_error"
        if p.badresult:
            return "parser_badresult"
        if p.finishedsuccess:
            return "parser_success"
        if run.proc.stop_requested:
            return "killed"
        return "success" if run.proc.returncode == 0 else "error"

    @staticmethod
    def _report(key: Key, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "job_id": key[0],
            "block_id": key[1],
            "task_id": key[2],
            "attempt": key[3],
            "status": status,
            **fields,
        }

    def reports(
        self, now: float, resend_after: float, finals_only: bool = False
    ) -> list[dict[str, Any]]:
        """Progress of running tasks (with new output), and finals not yet closed."""
        out = []
        if not finals_only:
            for key, run in self.running.items():
                chunk, skipped = run.output.take_new(CHUNK_MAX)
                run.skipped += skipped
                p = run.parser.progress
                report = self._report(
                    key,
                    "running",
                    percent=p.percent,
                    frame=p.frame,
                    activity=p.activity[:1024],
                    warning=p.warning,
                )
                if chunk:
                    report["output"] = chunk
                out.append(report)
        for final in self.outbox.values():
            if now - final.sent >= resend_after:
                final.sent = now
                out.append(final.report)
        return out

    def kill_all(self) -> None:
        for run in self.running.values():
            run.proc.kill_now()


def _kill_leftover(path: Path) -> None:
    """A task an earlier afrender started (its group leader pid and start time in the file)."""
    try:
        pid_text, created_text = path.read_text().split()
        proc = psutil.Process(int(pid_text))
        if abs(proc.create_time() - float(created_text)) > 0.01:
            return  # the pid belongs to someone else now
    except (OSError, ValueError, psutil.Error):
        return
    log.warning("killing task process group %d left by an earlier afrender", proc.pid)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
