"""Charts drawn on the server as inline SVG: no script, no CDN, the page's colours.

Two shapes are enough for the console: stacked bars (sends per edition) and lines
(subscribers over time). Pure functions from numbers to markup; every text is escaped.
Series colours are CSS classes ``c0``, ``c1``… which the console's style sheet maps
to the archive's colour variables (light and dark).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

Series = tuple[str, Sequence[int]]  # (name, one value per label)

_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 44, 8, 10, 26


def nice_max(value: int) -> int:
    """The axis top: ``value`` rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _frame(title: str, width: int, height: int, top: int, body: list[str],
           labels: Sequence[str], x_of: list[float], legend: Sequence[str]) -> Markup:
    plot_bottom = height - _PAD_BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{_PAD_LEFT}" y1="{plot_bottom}" x2="{width - _PAD_RIGHT}" '
        f'y2="{plot_bottom}"/>',
        f'<line class="grid" x1="{_PAD_LEFT}" y1="{_PAD_TOP}" x2="{width - _PAD_RIGHT}" '
        f'y2="{_PAD_TOP}"/>',
        f'<text class="tick" x="{_PAD_LEFT - 4}" y="{_PAD_TOP + 4}" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{_PAD_LEFT - 4}" y="{plot_bottom + 4}" text-anchor="end">0</text>',
        *body,
    ]
    if labels:  # first and last labels only: the rest would overlap on a phone
        parts.append(f'<text class="tick" x="{x_of[0]:.1f}" y="{height - 8}" '
                     f'text-anchor="start">{escape(labels[0])}</text>')
        if len(labels) > 1:
            parts.append(f'<text class="tick" x="{x_of[-1]:.1f}" y="{height - 8}" '
                         f'text-anchor="end">{escape(labels[-1])}</text>')
    parts.append("</svg>")
    keys = "".join(f'<li><span class="key c{i}"></span>{escape(name)}</li>'
                   for i, name in enumerate(legend))
    return Markup("".join(parts) + (f'<ul class="legend">{keys}</ul>' if keys else ""))


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series], *,
                 width: int = 480, height: int = 180) -> Markup:
    """One bar per label, the series stacked bottom up (``c0`` at the bottom)."""
    for name, values in series:
        if len(values) != len(labels):
            raise ValueError(f"series {name!r}: {len(values)} values for {len(labels)} labels")
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = nice_max(max(totals, default=0))
    plot_w = width - _PAD_LEFT - _PAD_RIGHT
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    slot = plot_w / max(len(labels), 1)
    bar = max(slot * 0.7, 1.0)
    body: list[str] = []
    xs: list[float] = []
    for i, label in enumerate(labels):
        x = _PAD_LEFT + i * slot + (slot - bar) / 2
        xs.append(x)
        base = float(height - _PAD_BOTTOM)
        for index, (name, values) in enumerate(series):
            value = values[i]
            if value <= 0:
                continue
            h = value / top * plot_h
            base -= h
            body.append(f'<rect class="c{index}" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" '
                        f'height="{h:.1f}"><title>{escape(label)} · {escape(name)}\u00a0: '
                        f"{value}</title></rect>")
    if xs:
        xs[-1] += bar
    return _frame(title, width, height, top, body, labels, xs, [name for name, _ in series])


def lines(title: str, labels: Sequence[str], series: Sequence[Series], *,
          width: int = 480, height: int = 180) -> Markup:
    """One polyline per series over the labels (a single point is drawn as a dot)."""
    for name, values in series:
        if len(values) != len(labels):
            raise ValueError(f"series {name!r}: {len(values)} values for {len(labels)} labels")
    top = nice_max(max((max(values, default=0) for _, values in series), default=0))
    plot_w = width - _PAD_LEFT - _PAD_RIGHT
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    xs = [_PAD_LEFT + i * step for i in range(len(labels))]
    body: list[str] = []
    for index, (name, values) in enumerate(series):
        points = [(xs[i], height - _PAD_BOTTOM - v / top * plot_h) for i, v in enumerate(values)]
        if len(points) == 1:
            x, y = points[0]
            body.append(f'<circle class="c{index}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>')
        elif points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline class="line c{index}" points="{path}">'
                        f"<title>{escape(name)}\u00a0: {values[-1]}</title></polyline>")
    return _frame(title, width, height, top, body, labels, xs, [name for name, _ in series])
