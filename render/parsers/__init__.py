"""Output parsers: turn a task's output into progress and verdicts (percent, errors, ...).

A parser is fed raw output chunks as they arrive; chunks may split lines and UTF-8 characters,
so it keeps the partial line for the next feed. Parsing runs on all output of every task, so a
parser declares `keys`, the substrings its lines must contain: a chunk holding none of them is
not split into lines at all, and a line is looked at only by the checks whose key it contains.

Parsers are modules of this package named like the parser (`generic`, ...), each exporting
`PARSER`, its class. As in the original, `\r` ends a line too (progress bars redraw with it),
and the flag tokens are handled by the base class, so every parser honours them.
"""

from __future__ import annotations

import codecs
import functools
import importlib
import logging
import re
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_LINE = 65536  # characters: output without newlines must not grow the partial line forever

WARNING = "[ PARSER WARNING ]"
ERROR = "[ PARSER ERROR ]"
FATAL_ERROR = "[ PARSER FATAL ERROR ]"
BAD_RESULT = "[ PARSER BAD RESULT ]"
FINISHED_SUCCESS = "[ PARSER FINISHED SUCCESS ]"
FLAG_KEY = "[ PARSER "
ACTIVITY = "ACTIVITY:"
REPORT = "REPORT:"
IMAGE = "@IMAGE@"  # a file the task rendered
IMAGE_NOW = "@IMAGE!@"  # same, announced while running (thumbnail before the end)
IMAGE_KEY = "@IMAGE"

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(slots=True)
class Progress:
    """What the parser found so far; flags stick for the whole run."""

    percent: int = 0
    frame: int = 0
    percentframe: int = 0
    warning: bool = False
    error: bool = False
    fatalerror: bool = False
    badresult: bool = False
    finishedsuccess: bool = False
    activity: str = ""
    report: str = ""
    changed: bool = False  # percent/frame/percentframe/activity changed since reset_changed()
    files: list[str] = field(default_factory=list)  # @IMAGE@ / @IMAGE!@ paths, as printed

    def reset_changed(self) -> None:
        self.changed = False


class Parser:
    """Base parser: the flag tokens, ACTIVITY:, REPORT:, @IMAGE@ and @IMAGE!@."""

    name = "base"
    keys: tuple[str, ...] = (FLAG_KEY, ACTIVITY, REPORT, IMAGE_KEY)  # () = look at every line

    def __init__(self) -> None:
        self.progress = Progress()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._failed = False

    def feed(self, data: bytes) -> None:
        """Parse the complete lines of this chunk; keep the unfinished last line."""
        text = self._partial + self._decoder.decode(data)
        if "\r" in text:
            text = text.replace("\r", "\n")
        end = text.rfind("\n")
        if end >= 0:
            self._partial = text[end + 1 :]
            self._parse_block(text[:end])
        else:
            self._partial = text
        if len(self._partial) > MAX_LINE:
            self._parse_block(self._partial)
            self._partial = ""

    def finish(self) -> None:
        """Parse what is left after the last newline (the output has ended)."""
        text = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        self._parse_block(text.replace("\r", "\n"))

    def _parse_block(self, block: str) -> None:
        if self.keys and not any(key in block for key in self.keys):
            return
        for line in block.split("\n"):
            if not line:
                continue
            try:
                self.parse_line(line)
            except Exception:  # a parser bug must not take the render down
                if not self._failed:
                    log.exception("parser '%s' failed on: %.200s", self.name, line)
                    self._failed = True

    def parse_line(self, line: str) -> None:
        """One line of output, without its newline. Subclasses call this first."""
        p = self.progress
        if FLAG_KEY in line:
            p.warning = p.warning or WARNING in line
            p.error = p.error or ERROR in line
            p.fatalerror = p.fatalerror or FATAL_ERROR in line
            p.badresult = p.badresult or BAD_RESULT in line
            p.finishedsuccess = p.finishedsuccess or FINISHED_SUCCESS in line
        if ACTIVITY in line:
            self.update(activity=line.rpartition(ACTIVITY)[2].strip())
        if REPORT in line:
            p.report = line.rpartition(REPORT)[2].strip()
        if IMAGE_KEY in line:
            for token in (IMAGE, IMAGE_NOW):
                path = line.partition(token)[2].strip() if token in line else ""
                if path and path not in p.files:
                    p.files.append(path)

    def update(
        self,
        *,
        percent: int | None = None,
        frame: int | None = None,
        percentframe: int | None = None,
        activity: str | None = None,
    ) -> None:
        """Set progress values, marking `changed` only on a real change (progress timeout)."""
        p = self.progress
        for attr, value in (
            ("percent", percent),
            ("frame", frame),
            ("percentframe", percentframe),
            ("activity", activity),
        ):
            if value is not None and getattr(p, attr) != value:
                setattr(p, attr, value)
                p.changed = True

    def stop_wanted(self) -> bool:
        """The original stops the process on error, fatal error or finished success."""
        p = self.progress
        return p.error or p.fatalerror or p.finishedsuccess


def get_parser(name: str) -> Parser:
    """A new parser by name; "" and unknown names give the generic parser."""
    return _parser_class(name.strip())()


@functools.cache
def _parser_class(name: str) -> type[Parser]:
    """Resolved once per name, so an unknown name is warned about once."""
    from render.parsers.generic import GenericParser

    if name in ("", "generic"):
        return GenericParser
    if not _NAME.match(name):
        log.warning("bad parser name '%s': using the generic parser", name)
        return GenericParser
    try:
        cls = importlib.import_module(f"{__name__}.{name}").PARSER
    except (ImportError, AttributeError) as exc:
        log.warning("unknown parser '%s' (%s): using the generic parser", name, exc)
        return GenericParser
    if not (isinstance(cls, type) and issubclass(cls, Parser)):
        log.warning("parser module '%s' has no Parser class: using the generic parser", name)
        return GenericParser
    return cls
