"""Server-side SVG charts for the operator pages: no CDN, nothing to vendor, readable without
JavaScript.

line_chart draws series over time with axes, ticks, a legend and gaps where a value is missing
(a minute without attempts has no latency, which is not a latency of 0). bar_chart stacks
counts per slot (error classes). Each time slot carries a hover target whose <title> gives the
slot's time and every series' value there, so each point reveals its figures on hover (the
browser's own tooltip; callbacks/static/console/refresh.js shows it at once). The SVG scales to
the width of its box (viewBox, no fixed size). Both return markup safe to put in a template.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from monitoring import formatting

PALETTE = ("#2a7ab0", "#e07b39", "#3a9d5d", "#c0392b", "#8e6cc0", "#7f8c8d", "#d4a017", "#16a085")
# The drawing's own units; the page scales it to its box (about 560 px wide two a row at 1440 px,
# 360 px on a phone). Fonts are sized so that text stays legible at the phone's scale.
WIDTH, HEIGHT = 520, 250
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 50, 16, 30, 56
FONT, TITLE_FONT = 14, 15
X_TICKS = 6  # at most; fewer when the labels are long (dates over several days)
LABEL_GAP = 18
Y_TICKS = 5
# Up to this many slots a line's points are marked; beyond, the marks would merge into the line.
MARKED_POINTS = 60


@dataclass(frozen=True)
class Series:
    name: str
    values: list  # floats or None, one per x


@dataclass(frozen=True)
class _Frame:
    """Where the plot area sits and how data maps onto it."""

    count: int
    y_max: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def plot_width(self):
        return self.width - MARGIN_LEFT - MARGIN_RIGHT

    @property
    def plot_height(self):
        return self.height - MARGIN_TOP - MARGIN_BOTTOM

    def x(self, index: float) -> float:
        if self.count <= 1:
            return MARGIN_LEFT + self.plot_width / 2
        return MARGIN_LEFT + self.plot_width * index / (self.count - 1)

    def y(self, value: float) -> float:
        return MARGIN_TOP + self.plot_height * (1 - min(value, self.y_max) / self.y_max)

    def slot(self, index: int) -> tuple[float, float]:
        """The x range a line chart's hover target covers around point `index`."""
        if self.count <= 1:
            return MARGIN_LEFT, self.plot_width
        half = self.plot_width / (self.count - 1) / 2
        left = max(MARGIN_LEFT, self.x(index) - half)
        right = min(MARGIN_LEFT + self.plot_width, self.x(index) + half)
        return left, right - left


def nice_max(value: float) -> float:
    """A round axis top at or above `value`: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def line_chart(
    *, title: str, times: list[datetime], series: list[Series], unit: str = "", y_max: float | None = None
) -> SafeString:
    values = [v for s in series for v in s.values if v is not None]
    frame = _Frame(count=len(times), y_max=y_max or nice_max(max(values, default=0)))
    parts = _axes(frame, title, times, unit)
    marked = len(times) <= MARKED_POINTS
    for color, one in zip(_colors(), series, strict=False):
        for run in _runs(one.values):
            if len(run) > 1:
                points = " ".join(f"{frame.x(i):.1f},{frame.y(v):.1f}" for i, v in run)
                parts.append(
                    f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{points}"/>'
                )
            if marked or len(run) == 1:
                parts += [
                    f'<circle cx="{frame.x(i):.1f}" cy="{frame.y(v):.1f}" r="2.5" fill="{color}"/>'
                    for i, v in run
                ]
    for index in range(len(times)):
        left, width = frame.slot(index)
        figures = [(s.name, s.values[index]) for s in series]
        parts.append(_hover_target(left, width, frame, _slot_text(times, index, figures, unit)))
    parts += _legend(frame, [s.name for s in series])
    return _svg(frame, title, parts, points=len(values))


def bar_chart(
    *, title: str, times: list[datetime], stacks: dict[str, list[float]], unit: str = ""
) -> SafeString:
    totals = [sum(values[i] or 0 for values in stacks.values()) for i in range(len(times))]
    frame = _Frame(count=len(times), y_max=nice_max(max(totals, default=0)))
    parts = _axes(frame, title, times, unit, bars=True)
    slot = frame.plot_width / max(len(times), 1)
    bar = max(slot * 0.7, 1.0)
    base = [0.0] * len(times)
    for color, (name, values) in zip(_colors(), stacks.items(), strict=False):
        for i, value in enumerate(values):
            if not value:
                continue
            top = base[i] + value
            x = MARGIN_LEFT + slot * i + (slot - bar) / 2
            y = frame.y(top)
            height = frame.y(base[i]) - y
            parts.append(
                f'<rect class="bar" data-name="{escape(name)}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{color}"/>'
            )
            base[i] = top
    for index in range(len(times)):
        figures = [(name, values[index]) for name, values in stacks.items() if values[index]]
        text = _slot_text(times, index, figures or [("total", 0)], unit)
        parts.append(_hover_target(MARGIN_LEFT + slot * index, slot, frame, text))
    parts += _legend(frame, list(stacks))
    return _svg(frame, title, parts, points=sum(1 for total in totals if total))


def _hover_target(left: float, width: float, frame: _Frame, text: str) -> str:
    return (
        f'<rect class="slot" x="{left:.1f}" y="{MARGIN_TOP}" width="{width:.1f}" '
        f'height="{frame.plot_height}" fill="#000" fill-opacity="0"><title>{escape(text)}</title></rect>'
    )


def _slot_text(times: list[datetime], index: int, figures: list[tuple[str, float | None]], unit: str) -> str:
    moment = timezone.localtime(times[index])
    when = f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"
    return when + "\n" + "\n".join(f"{name}: {formatting.by_unit(value, unit)}" for name, value in figures)


def _axes(frame: _Frame, title: str, times: list[datetime], unit: str, *, bars=False) -> list[str]:
    left, right = MARGIN_LEFT, frame.width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, frame.height - MARGIN_BOTTOM
    label = f"{title} ({unit})" if unit else title
    parts = [
        f'<text class="title" x="{left}" y="18" font-size="{TITLE_FONT}" font-weight="bold">'
        f"{escape(label)}</text>",
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#888"/>',
    ]
    for n in range(Y_TICKS + 1):
        value = frame.y_max * n / Y_TICKS
        y = frame.y(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd" stroke-width="0.5"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="{FONT}" text-anchor="end">'
            f"{formatting.axis(value)}</text>"
        )
    slot = frame.plot_width / max(len(times), 1)
    # Every label of a chart has the same length: as many as fit side by side with a gap.
    label_width = _text_width(len(_time_label(times, 0))) if times else 0
    fits = int(frame.plot_width // (label_width + LABEL_GAP))
    for index in _tick_indexes(len(times), most=max(2, min(X_TICKS, fits))):
        x = MARGIN_LEFT + slot * (index + 0.5) if bars else frame.x(index)
        parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#888"/>')
        label = _time_label(times, index)
        # A label at the right edge ends there rather than spilling out of the drawing.
        anchor = "end" if x + _text_width(len(label)) / 2 > frame.width - 2 else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" font-size="{FONT}" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    return parts


def _tick_indexes(count: int, *, most: int = X_TICKS) -> list[int]:
    """Evenly spaced ticks from the first slot, no more than `most`."""
    if count <= 0:
        return []
    step = max(1, math.ceil((count - 1) / (most - 1))) if count > 1 else 1
    return list(range(0, count, step))


def _text_width(characters: int) -> float:
    """About how wide a label of this many characters is (digits and punctuation of sans-serif)."""
    return characters * FONT * 0.6


def _time_label(times: list[datetime], index: int) -> str:
    span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0
    moment = timezone.localtime(times[index])
    return f"{moment:%m-%d %H:%M}" if span > 86400 else f"{moment:%H:%M}"


def _legend(frame: _Frame, names: list[str]) -> list[str]:
    parts, x = [], MARGIN_LEFT
    y = frame.height - 10
    for color, name in zip(_colors(), names, strict=False):
        parts.append(f'<rect x="{x}" y="{y - 9}" width="11" height="11" fill="{color}"/>')
        parts.append(
            f'<text class="legend" x="{x + 15}" y="{y + 1}" font-size="{FONT}">{escape(name)}</text>'
        )
        x += 30 + 8 * len(name)
    return parts


def _runs(values: list) -> list[list[tuple[int, float]]]:
    """Consecutive (index, value) stretches without a missing value."""
    runs, current = [], []
    for index, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((index, value))
    if current:
        runs.append(current)
    return runs


def _colors():
    while True:
        yield from PALETTE


def _svg(frame: _Frame, title: str, parts: list[str], *, points: int) -> SafeString:
    if not points:
        parts.append(
            f'<text class="empty" x="{MARGIN_LEFT + frame.plot_width / 2:.0f}" '
            f'y="{MARGIN_TOP + frame.plot_height / 2:.0f}" font-size="{FONT}" fill="#888" '
            f'text-anchor="middle">nothing in this window</text>'
        )
    body = "".join(parts)
    return mark_safe(  # every text above went through escape()
        f'<svg class="tc-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(title)}" '
        f'data-points="{points}" font-family="sans-serif">'
        f'<rect width="{frame.width}" height="{frame.height}" fill="#fff"/>{body}</svg>'
    )


def delivery_charts(points: list[dict]) -> list:
    """The four charts of delivery every console page shows, from monitoring.selectors.timeseries points."""
    return [throughput_chart(points), latency_chart(points), success_chart(points), errors_chart(points)]


def throughput_chart(points: list[dict]):
    return line_chart(
        title="Throughput",
        times=[p["start"] for p in points],
        series=[Series("attempts/s", [p["qps"] for p in points])],
        unit="attempts/s",
    )


def latency_chart(points: list[dict]):
    return line_chart(
        title="Latency percentiles",
        times=[p["start"] for p in points],
        series=[Series(name, [p[name] for p in points]) for name in ("p50", "p95", "p99")],
        unit="ms",
    )


def success_chart(points: list[dict]):
    return line_chart(
        title="Success rate",
        times=[p["start"] for p in points],
        series=[
            Series(
                "success", [None if p["success_rate"] is None else p["success_rate"] * 100 for p in points]
            )
        ],
        unit="%",
        y_max=100,
    )


def errors_chart(points: list[dict]):
    error_classes = sorted({name for point in points for name in point["errors"]})
    return bar_chart(
        title="Errors by class",
        times=[p["start"] for p in points],
        stacks={name: [p["errors"].get(name, 0) for p in points] for name in error_classes},
        unit="attempts",
    )
