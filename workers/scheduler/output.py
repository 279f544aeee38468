"""Task output under the store folder, one file per task start, bounded in size.

Renders stream output in chunks while a task runs; they are appended here up to the limit.
When a render had to cut the middle of a long output, its final report carries the cut
text, which replaces the file. Files live in ``<store>/output/<job id>/<block>.<task>.<start>.txt``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger("output")

Key = tuple[int, int, int]
CUT_NOTE = b"\n[... output over the limit: later chunks dropped until the task's end ...]\n"


class OutputStore:
    def __init__(self, folder: str | Path, limit: int) -> None:
        self.folder = Path(folder) / "output"
        self.limit = limit
        self.sizes: dict[tuple[Key, int], int] = {}  # open runs: bytes written so far

    def path(self, key: Key, attempt: int) -> Path:
        return self.folder / str(key[0]) / f"{key[1]}.{key[2]}.{attempt}.txt"

    def append(self, key: Key, attempt: int, data: bytes) -> None:
        """Add a streamed chunk; past the limit, note the cut once and drop the rest."""
        size = self.sizes.get((key, attempt), 0)
        if size >= self.limit:
            return
        path = self.path(key, attempt)
        try:
            if size == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as f:
                room = self.limit - size
                f.write(data[:room])
                if len(data) > room:
                    f.write(CUT_NOTE)
            self.sizes[(key, attempt)] = (
                size + min(len(data), room) + (len(CUT_NOTE) if len(data) > room else 0)
            )
        except OSError as exc:
            log.error("cannot write task output %s: %s", path, exc)

    def replace(self, key: Key, attempt: int, data: bytes) -> None:
        """The render's own middle-cut copy of the whole output, at the task's end."""
        path = self.path(key, attempt)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[: self.limit])
        except OSError as exc:
            log.error("cannot write task output %s: %s", path, exc)

    def close(self, key: Key, attempt: int) -> None:
        self.sizes.pop((key, attempt), None)

    def read(self, key: Key, attempt: int) -> str | None:
        try:
            return self.path(key, attempt).read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None

    def drop_job(self, job_id: int) -> None:
        shutil.rmtree(self.folder / str(job_id), ignore_errors=True)
        self.sizes = {k: v for k, v in self.sizes.items() if k[0][0] != job_id}
