"""Server-rendered SVG sparklines (no script, no inline style: the CSP allows neither)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 240, 40


def sparkline(values: Sequence[float], label: str = "") -> Markup:
    """A line over ``values`` (oldest first) scaled to its maximum; the last value printed."""
    if not values:
        return Markup('<span class="muted">no data yet</span>')
    top = max(values) or 1.0
    n = len(values)
    step = WIDTH / max(1, n - 1)
    points = " ".join(
        f"{i * step:.1f},{HEIGHT - 2 - (v / top) * (HEIGHT - 4):.1f}" for i, v in enumerate(values)
    )
    title = f"{label}: last {values[-1]:g}, max {top:g}"
    return Markup(
        f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<polyline class="spark-line" points="{points}"/></svg>'
    )
