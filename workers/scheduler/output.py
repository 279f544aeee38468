"""Task output under the store folder, one file per task start, bounded in size.

Renders stream output in chunks while a task runs; they are appended here up to the limit.
When a render had to cut the middle of a long output, its final report carries the cut
text, which replaces the file. Files live in ``<store>/output/<job id>/<block>.<task>.<start>.txt``.

A chunk that cannot be written (a full or unwritable store) truncates that run's output:
later chunks are dropped rather than leave a hole, the caller marks the task's log, and
the file gets a note saying so once the store can be written again (`mend`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("output")

Key = tuple[int, int, int]
CUT_NOTE = b"\n[... output over the limit: later chunks dropped until the task's end ...]\n"
PROBE_BYTES = 64 * 1024  # room a degraded store must have again before it is left


def truncated_note(reason: str) -> str:
    return f"output truncated: {reason}"


class OutputStore:
    def __init__(self, folder: str | Path, limit: int) -> None:
        self.folder = Path(folder) / "output"
        self.limit = limit
        self.sizes: dict[tuple[Key, int], int] = {}  # open runs: bytes written so far
        self.truncated: dict[tuple[Key, int], str] = {}  # runs cut by a failed write: why

    def path(self, key: Key, attempt: int) -> Path:
        return self.folder / str(key[0]) / f"{key[1]}.{key[2]}.{attempt}.txt"

    def append(self, key: Key, attempt: int, data: bytes) -> OSError | None:
        """Add a streamed chunk; past the limit, note the cut once and drop the rest.
        Returns the error of a write that failed just now, which truncated the run."""
        run = (key, attempt)
        size = self.sizes.get(run, 0)
        if size >= self.limit:
            return None
        path = self.path(key, attempt)
        try:
            if size == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as f:
                room = self.limit - size
                f.write(data[:room])
                if len(data) > room:
                    f.write(CUT_NOTE)
            self.sizes[run] = (
                size + min(len(data), room) + (len(CUT_NOTE) if len(data) > room else 0)
            )
        except OSError as exc:
            return self._truncate(run, exc)
        return None

    def replace(self, key: Key, attempt: int, data: bytes) -> OSError | None:
        """The render's own middle-cut copy of the whole output, at the task's end."""
        run = (key, attempt)
        path = self.path(key, attempt)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[: self.limit])
        except OSError as exc:
            return None if run in self.truncated else self._truncate(run, exc)
        return None

    def _truncate(self, run: tuple[Key, int], exc: OSError) -> OSError:
        """The run's later chunks are dropped (as past the limit): no hole in the middle."""
        self.sizes[run] = self.limit
        self.truncated[run] = (exc.strerror or str(exc)).lower()
        log.debug("task output %s truncated: %s", self.path(*run), exc)
        return exc

    def close(self, key: Key, attempt: int) -> None:
        self.sizes.pop((key, attempt), None)

    def read(self, key: Key, attempt: int) -> str | None:
        """The output; one that was truncated says so at its end, also before `mend`."""
        run = (key, attempt)
        try:
            text = self.path(key, attempt).read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            if run not in self.truncated:
                return None
            text = ""
        if run in self.truncated:
            text += f"\n[{truncated_note(self.truncated[run])}]\n"
        return text

    def probe(self) -> None:
        """Raise the OSError of a store folder that cannot take PROBE_BYTES of output."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / ".probe"
        try:
            with path.open("wb") as f:
                f.write(b"\0" * PROBE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        finally:
            path.unlink(missing_ok=True)

    def mend(self) -> int:
        """Note the cut at the end of each truncated file (the store has room again).
        Runs whose note cannot be written stay in the list; returns how many were noted."""
        noted = 0
        for run, reason in list(self.truncated.items()):
            path = self.path(*run)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as f:
                    f.write(f"\n[{truncated_note(reason)}]\n".encode())
            except OSError:
                continue
            del self.truncated[run]
            noted += 1
        return noted

    def drop_job(self, job_id: int) -> None:
        shutil.rmtree(self.folder / str(job_id), ignore_errors=True)
        self.sizes = {k: v for k, v in self.sizes.items() if k[0][0] != job_id}
        self.truncated = {k: v for k, v in self.truncated.items() if k[0][0] != job_id}
