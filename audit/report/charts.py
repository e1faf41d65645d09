"""Inline SVG charts for ``report.html``: bars per month and ranked horizontal bars.

Each function returns SVG markup (a ``str`` marked safe for the template) built from
numbers and labels it escapes itself; no JavaScript, no external resources. Nothing
here reads findings: callers pass the counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")


def monthly_bars(series: Mapping[str, Mapping[str, int]], months: Sequence[str], title: str) -> Markup:
    """Stacked bars: one per month, one colour per series (e.g. commitment); a legend below."""
    width, height, left, bottom = 720, 220, 40, 40
    totals = [sum(s.get(m, 0) for s in series.values()) for m in months]
    top = max(totals, default=0) or 1
    step = (width - left - 10) / max(len(months), 1)
    bar = max(step * 0.7, 1)
    parts = [_svg_open(width, height + 20 * (1 + len(series) // 6), title)]
    parts.append(f'<text x="{left}" y="14" class="axis">max {top}</text>')
    for i, month in enumerate(months):
        x, y = left + i * step, float(height - bottom)
        for j, (name, counts) in enumerate(series.items()):
            value = counts.get(month, 0)
            if not value:
                continue
            h = value / top * (height - bottom - 20)
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(name)} {escape(month)}: {value}</title></rect>"
            )
        if len(months) <= 24 or i % 3 == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" class="axis">{escape(month)}</text>')
    for j, name in enumerate(series):
        lx, ly = left + (j % 6) * 110, height + 20 * (j // 6)
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label above is escaped


def ranked_bars(counts: Sequence[tuple[str, int]], title: str) -> Markup:
    """Horizontal bars, largest first (the caller ranks and trims)."""
    width, row, label = 520, 22, 200
    top = max((n for _, n in counts), default=0) or 1
    parts = [_svg_open(width, row * max(len(counts), 1) + 10, title)]
    if not counts:
        parts.append('<text x="4" y="16" class="axis">none</text>')
    for i, (name, value) in enumerate(counts):
        y = 4 + i * row
        w = value / top * (width - label - 60)
        parts.append(f'<text x="{label - 6}" y="{y + 14}" text-anchor="end" class="legend">{escape(name[:32])}</text>')
        parts.append(f'<rect x="{label}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[0]}"/>')
        parts.append(f'<text x="{label + w + 4:.1f}" y="{y + 14}" class="axis">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label above is escaped


def _svg_open(width: int, height: float, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height:.0f}" viewBox="0 0 {width} {height:.0f}"><title>{escape(title)}</title>'
    )
