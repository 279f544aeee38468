"""The render's running tasks: start, output, progress, stop, and the final results it keeps.

A final result stays in the outbox until the server closes it, and is sent again when no
close came; the server treats a repeat as already handled. Output is read as it arrives
(the task pipes sit in the render's one poll loop) and streamed in bounded chunks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    running: dict[Key, Running] = field(default_factory=dict)
    outbox: dict[Key, Final] = field(default_factory=dict)
    started_total: int = 0

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
        self.started_total += 1
        self.running[key] = Running(proc, get_parser(spec.parser), OutputBuffer(self.output_limit))
        log.info("started task %s '%s' (pid %d)", list(key), spec.name, proc.pid)

    def fds(self) -> dict[int, Key]:
        return {
            fd: key for key, run in self.running.items() if (fd := run.proc.fileno()) is not None
        }

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
            self.outbox.pop(tuple(key), None)  # type: ignore[arg-type]

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
            del self.running[key]
            status = self._status(run)
            chunk, skipped = run.output.take_new(CHUNK_MAX)
            extra: dict[str, Any] = {}
            if run.skipped + skipped or run.output.cut:
                extra["output_full"] = run.output.text().encode()
            progress = run.parser.progress
            self.outbox[key] = Final(
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
