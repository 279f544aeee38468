"""The tasks graph as server-side SVG: stacked bars, one colour per series (pure).

Every bar segment carries its series, bucket start and count as data attributes and a
<title> tooltip, so the picture can be read back exactly (by a person hovering, or a test).
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#7f7f7f",
)  # fmt: skip
WIDTH, HEIGHT = 960, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 180, 16, 48


def _label(ts: int, bucket: int) -> str:
    fmt = "%H:%M" if bucket < 3600 else "%d %b %H:00" if bucket < 86400 else "%d %b"
    return time.strftime(fmt, time.localtime(ts))


def _nice_max(value: int) -> int:
    """A round top for the y axis: 1, 2 or 5 times a power of ten."""
    if value <= 5:
        return 5
    step = 1
    while True:
        for m in (1, 2, 5):
            if value <= m * step:
                return m * step
        step *= 10


def tasks_graph(graph: dict[str, Any]) -> str:
    buckets: list[int] = graph["buckets"]
    series: list[dict[str, Any]] = graph["series"]
    n = max(1, len(buckets))
    totals = [sum(s["counts"][i] for s in series) for i in range(len(buckets))]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bar_w = plot_w / n
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Tasks per {graph["bucket_seconds"]} s by {escape(graph["group"])}" '
        f'data-total="{graph["total"]}" data-bucket-seconds="{graph["bucket_seconds"]}">'
    ]
    for k in range(6):  # horizontal grid with counts: top is 5, 10, 20, 50, 100…
        value = top * k // 5
        y = TOP + plot_h - plot_h * value / top
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value}</text>'
        )
    for i, start in enumerate(buckets):
        x = LEFT + i * bar_w
        base = TOP + plot_h
        for j, s in enumerate(series):
            count = s["counts"][i]
            if not count:
                continue
            h = plot_h * count / top
            base -= h
            name = escape(s["name"] or "(none)")
            out.append(
                f'<rect class="bar" x="{x + 0.5:.1f}" y="{base:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}" data-series="{name}" '
                f'data-bucket="{start}" data-count="{count}"><title>{name}: {count} at '
                f"{escape(_label(start, graph['bucket_seconds']))}</title></rect>"
            )
    step = max(1, n // 8)  # about eight time labels along the x axis
    for i in range(0, len(buckets), step):
        x = LEFT + i * bar_w
        out.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" class="axis">'
            f"{escape(_label(buckets[i], graph['bucket_seconds']))}</text>"
        )
    for j, s in enumerate(series):  # legend
        y = TOP + 14 + j * 20
        x = WIDTH - RIGHT + 16
        out.append(
            f'<rect x="{x}" y="{y - 10}" width="12" height="12" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{x + 18}" y="{y}" class="legend">'
            f"{escape(s['name'] or '(none)')} ({sum(s['counts'])})</text>"
        )
    if not graph["total"]:
        out.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" class="empty" '
            f'text-anchor="middle">no finished tasks in this time range</text>'
        )
    out.append("</svg>")
    return "".join(out)
