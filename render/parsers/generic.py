"""The generic parser: `PROGRESS: NN%` and `FRAME: N`, plus the base tokens.

A regex runs on a line only when the cheap `in` check found its token there.
"""

from __future__ import annotations

import re

from render.parsers import Parser

PROGRESS = "PROGRESS:"
FRAME = "FRAME:"

_PERCENT = re.compile(r"PROGRESS:\s*(-?\d+)(?:\.\d*)?\s*%")
_FRAME = re.compile(r"FRAME:\s*(-?\d+)")


class GenericParser(Parser):
    """For any command that prints the generic tokens (CGRU's own scripts do)."""

    name = "generic"
    keys = (*Parser.keys, PROGRESS, FRAME)

    def parse_line(self, line: str) -> None:
        super().parse_line(line)
        if PROGRESS in line and (found := _PERCENT.findall(line)):
            percent = min(100, max(0, int(found[-1])))  # the last one is the newest
            self.update(percent=percent, percentframe=percent)
        if FRAME in line and (found := _FRAME.findall(line)):
            self.update(frame=max(0, int(found[-1])))


PARSER = GenericParser
