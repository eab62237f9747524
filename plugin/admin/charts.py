"""Inline SVG charts rendered on the server (no chart library, nothing from a CDN).

Each function returns markup safe to put in a page: labels are escaped, sizes are computed here, and every
chart carries a ``<title>`` and ``role="img"`` with an ``aria-label`` so screen readers get the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

# Polaris-like palette with >= 4.5:1 contrast on white for text.
BAR = "#2c6ecb"
BAR_ALT = "#8fb8f0"
AXIS = "#8c9196"
TEXT = "#303030"
MUTED = "#616161"


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def bar_chart(items: Sequence[tuple[str, float]], label: str, width: int = 520, unit: str = "") -> Markup:
    """Return a horizontal bar chart of (label, value) pairs."""
    row, gap, left, right = 28, 10, 110, 70
    height = max(1, len(items)) * (row + gap) + gap
    top = max((v for _, v in items), default=0) or 1
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{escape(label)}"><title>{escape(label)}</title>']
    for i, (name, value) in enumerate(items):
        y = gap + i * (row + gap)
        length = (width - left - right) * (value / top)
        parts.append(f'<text x="{left - 8}" y="{y + row * 0.68:.1f}" text-anchor="end" fill="{TEXT}" '
                     f'font-size="13">{escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{max(length, 2):.1f}" height="{row}" rx="4" fill="{BAR}"/>')
        parts.append(f'<text x="{left + max(length, 2) + 6:.1f}" y="{y + row * 0.68:.1f}" fill="{TEXT}" '
                     f'font-size="13" font-weight="600">{escape(_fmt(value))}{escape(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value above went through escape()


def area_chart(points: Sequence[tuple[str, float]], label: str, width: int = 640, height: int = 220,
               secondary: Sequence[float] | None = None, secondary_label: str = "") -> Markup:
    """Return an area chart of values by period (e.g. orders per month), optionally with a second line."""
    left, right, top_pad, bottom = 48, 16, 16, 34
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    values = [v for _, v in points]
    top = max(values + list(secondary or []) + [0]) or 1
    n = max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + plot_w * i / n, top_pad + plot_h * (1 - v / top)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{escape(label)}"><title>{escape(label)}</title>']
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}" '
                     f'font-size="11">{escape(_fmt(top * frac))}</text>')
    if points:
        coords = [xy(i, v) for i, v in enumerate(values)]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        base = top_pad + plot_h
        parts.append(f'<polygon points="{coords[0][0]:.1f},{base} {line} {coords[-1][0]:.1f},{base}" '
                     f'fill="{BAR}" fill-opacity="0.15"/>')
        parts.append(f'<polyline points="{line}" fill="none" stroke="{BAR}" stroke-width="2.5"/>')
        for (x, y), v in zip(coords, values, strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{BAR}"><title>{escape(_fmt(v))}</title>'
                         f'</circle>')
        if secondary:
            sec = " ".join(f"{xy(i, v)[0]:.1f},{xy(i, v)[1]:.1f}" for i, v in enumerate(secondary))
            parts.append(f'<polyline points="{sec}" fill="none" stroke="#b98900" stroke-width="2" '
                         f'stroke-dasharray="5 4"><title>{escape(secondary_label)}</title></polyline>')
        step = max(1, len(points) // 6)
        for i, (name, _) in enumerate(points):
            if i % step == 0 or i == len(points) - 1:
                x, _ = xy(i, 0)
                parts.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" fill="{MUTED}" '
                             f'font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value above went through escape()


def heat_class(share: float) -> str:
    """Return the CSS class of a heatmap cell for a share between 0 and 1 (ten steps)."""
    return f"heat-{min(10, max(0, round(share * 20)))}"


def spark_bars(values: Sequence[float], label: str, width: int = 120, height: int = 28) -> Markup:
    """Return a tiny column chart (e.g. sent per flow) for table cells."""
    top = max(values, default=0) or 1
    w = width / max(len(values), 1)
    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(label)}"><title>{escape(label)}</title>']
    for i, v in enumerate(values):
        h = max(1.0, (height - 2) * v / top)
        parts.append(f'<rect x="{i * w + 1:.1f}" y="{height - h:.1f}" width="{max(w - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="{BAR_ALT if i % 2 else BAR}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and value above went through escape()
