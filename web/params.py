"""Query parameters of the statistics pages and API, checked with errors that say what is
wrong (pure: a mapping in, values or a ReportError out)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from stats.reports import GROUPS, LOG_COLUMNS, ReportError, Span

GROUP_ALIASES = {"user": "username", "users": "username", "services": "service"}
DEPTH_MAX = 16
EPOCH = re.compile(r"[0-9]{1,11}")  # seconds since 1970, up to the year 5138
DEPTH = re.compile(r"[0-9]{1,2}")
# Formats with the length of time they name: an end given as a day or a minute includes it.
TIME_FORMATS = (
    ("%Y-%m-%d", 86400),
    ("%Y-%m-%dT%H:%M", 60),
    ("%Y-%m-%d %H:%M", 60),
    ("%Y-%m-%dT%H:%M:%S", 1),
)


def parse_time(name: str, text: str | None, end: bool = False) -> int | None:
    """Epoch seconds, or a local date / date and time as the page's inputs send them. An
    `end` names the first second after the day or minute given, so that it is included."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if EPOCH.fullmatch(text):
        return int(text)
    for fmt, length in TIME_FORMATS:
        try:
            start = int(time.mktime(datetime.strptime(text, fmt).timetuple()))
        except (ValueError, OverflowError):  # not this format, or a year the clock cannot
            continue
        return start + length if end else start
    raise ReportError(f"{name}: expected epoch seconds or YYYY-MM-DD[THH:MM], got {text[:40]!r}")


@dataclass(frozen=True, slots=True)
class Query:
    span: Span
    group: str
    depth: int
    filters: dict[str, str]

    @property
    def group_name(self) -> str:
        return "user" if self.group == "username" else self.group


def parse_query(args: Mapping[str, str], now: float, default_group: str = "folder") -> Query:
    unknown = set(args) - {"from", "to", "group", "depth", *LOG_COLUMNS}
    if unknown:
        raise ReportError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    group = args.get("group") or default_group
    group = GROUP_ALIASES.get(group, group)
    if group not in GROUPS:
        raise ReportError(f"group: one of folder, service, user; not {group[:40]!r}")
    depth_text = args.get("depth") or "1"
    if not DEPTH.fullmatch(depth_text) or int(depth_text) > DEPTH_MAX:
        raise ReportError(f"depth: a folder depth from 0 (whole folder) to {DEPTH_MAX}")
    span = Span.of(
        parse_time("from", args.get("from")), parse_time("to", args.get("to"), end=True), now
    )
    filters = {c: args[c][:512] for c in LOG_COLUMNS if args.get(c)}
    return Query(span, group, int(depth_text), filters)
