"""Charts as SVG text, drawn on the server: the console machines are offline, and two
chart kinds do not justify vendoring a JavaScript library.

Each function takes plain numbers and returns a self-contained ``<svg>`` element
(``role="img"`` with a ``<title>``, a ``<title>`` tooltip on every bar or point), so
the page embeds it inline and a test can count its bars.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Mapping, Sequence
from html import escape

#: Characters per legend line (the legend column is that wide).
LEGEND_CHARS = 24
#: Colour per series, in order (colour-blind-safe Okabe-Ito set, then greys).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#7f7f7f", "#bcbcbc")
WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 180, 30, 60


def human(value: float, unit: str = "") -> str:
    """``1234567`` → ``1.2 M`` (with ``unit``), for axis labels and tooltips."""
    for limit, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}{unit}"
    return f"{value:.0f}{' ' + unit if unit else ''}"


def _scale_max(values: Sequence[float]) -> float:
    """The axis top: the largest value rounded up to 1, 2, 4, 5 or 8 × 10ⁿ, so the four
    grid lines fall on round numbers (``_scale_max([7]) == 8``, grid at 2, 4, 6, 8); at
    least 4, so small counts are not labelled in fractions.

    >>> [_scale_max([v]) for v in (0, 1, 7, 9.5, 120, 9500)]
    [4, 4, 8, 10, 200, 10000]
    """
    top = max(values, default=0)
    if top <= 4:
        return 4
    scale = 10 ** math.floor(math.log10(top))
    return next(m * scale for m in (1, 2, 4, 5, 8, 10) if m * scale >= top)


def _frame(title: str, body: list[str], top: float, unit: str) -> str:
    """The axes, four grid lines with labels, and ``body`` inside one ``<svg>``."""
    plot_h = HEIGHT - TOP - BOTTOM
    grid = []
    for i in range(5):
        y = TOP + plot_h - plot_h * i / 4
        grid.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="#ddd"/>')
        grid.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                    f'font-size="11">{escape(human(top * i / 4, unit))}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
            f'font-family="sans-serif"><title>{escape(title)}</title>'
            f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>'
            + "".join(grid) + "".join(body) + "</svg>")


def _day_labels(days: Sequence[dt.date], x_of: dict[dt.date, float]) -> list[str]:
    """About ten date labels, the newest day always among them."""
    days = list(days)
    step = max(1, len(days) // 10)
    shown = days[::-1][::step][::-1]
    return [f'<text x="{x_of[d]:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="10">{d:%d.%m}</text>' for d in shown]


def colour(number: int) -> str:
    """The colour of series ``number`` (a subscriber's registration number): it keeps
    its colour from page to page and day to day whoever else is plotted, and the first
    ten registered never share one (a hash of the name did: Aalborg and Odense came
    out the same blue)."""
    return PALETTE[number % len(PALETTE)]


def stacked_bars(title: str, days: Sequence[dt.date],
                 series: Mapping[str, Mapping[dt.date, float]], unit: str = "", *,
                 colours: Mapping[str, str]) -> str:
    """One bar per day (oldest left), stacked by series (e.g. subscribers), with a legend.

    Days without any value keep their slot, so a missing day shows as a gap.
    """
    days = sorted(days)
    totals = [sum(s.get(d, 0) for s in series.values()) for d in days]
    top = _scale_max(totals)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    x_of = {d: LEFT + slot * (i + 0.5) for i, d in enumerate(days)}
    body = []
    for i, d in enumerate(days):
        base = 0.0
        for name, values in series.items():
            v = values.get(d, 0)
            if v <= 0:
                continue
            h = plot_h * v / top
            y = TOP + plot_h - plot_h * base / top - h
            body.append(
                f'<rect class="bar" x="{LEFT + slot * i + slot * 0.1:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.8:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{colours[name]}"><title>{escape(name)}, {d}: '
                f'{escape(human(v, unit))}</title></rect>')
            base += v
    body += _day_labels(days, x_of)
    y = TOP
    for name in series:  # the whole name, wrapped: "Dødsboskifteretten (even…" tells nothing
        lines = textwrap.wrap(name, LEGEND_CHARS) or [""]
        text = "".join(f'<tspan x="{WIDTH - RIGHT + 26}" dy="{0 if i == 0 else 12}">'
                       f'{escape(part)}</tspan>' for i, part in enumerate(lines))
        body.append(f'<rect x="{WIDTH - RIGHT + 12}" y="{y}" width="10" height="10" '
                    f'fill="{colours[name]}"/><text class="legend" y="{y + 9}" '
                    f'font-size="11">{text}</text>')
        y += 12 * len(lines) + 4
    return _frame(title, body, top, unit)


def line(title: str, points: Sequence[tuple[dt.date, float]], unit: str = "") -> str:
    """Values over time (oldest left) as a line with a dot per point."""
    points = sorted(points)
    top = _scale_max([v for _, v in points])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    first = points[0][0] if points else dt.date.min
    span = max((points[-1][0] - first).days, 1) if points else 1
    xy = [(LEFT + plot_w * (d - first).days / span, TOP + plot_h - plot_h * v / top, d, v)
          for d, v in points]
    body = []
    if len(xy) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in xy)
        body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" '
                    f'stroke-width="2"/>')
    body += [f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{PALETTE[0]}">'
             f'<title>{d}: {escape(human(v, unit))}</title></circle>' for x, y, d, v in xy]
    body += _day_labels([d for _, _, d, _ in xy], {d: x for x, _, d, _ in xy})
    return _frame(title, body, top, unit)
