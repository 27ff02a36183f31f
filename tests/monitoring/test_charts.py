"""The dashboard's SVG charts: well-formed, scaled to their box, gaps for missing values, escaped
labels, and every point's time and values on hover."""

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from monitoring.charts import HEIGHT, WIDTH, Series, bar_chart, line_chart, nice_max

NS = {"svg": "http://www.w3.org/2000/svg"}
TIMES = [datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(minutes=n) for n in range(10)]


def parse(svg) -> ElementTree.Element:
    return ElementTree.fromstring(str(svg))


def test_nice_max_rounds_up_to_a_readable_axis_top():
    assert [nice_max(v) for v in (0, 0.7, 3, 7.5, 42, 180, 999)] == [1.0, 1.0, 5, 10, 50, 200, 1000]


def test_line_chart_draws_each_series_and_breaks_lines_at_missing_values():
    values = [1, 2, None, 4, 5, 6, None, None, 9, 10]
    root = parse(
        line_chart(
            title="Latency", times=TIMES, series=[Series("p50", values), Series("p99", [3] * 10)], unit="ms"
        )
    )

    lines = root.findall("svg:polyline", NS)
    assert len(lines) == 4  # p50 in three runs (the last two points form one), p99 in one
    assert root.get("data-points") == str(7 + 10)
    labels = [t.text for t in root.findall("svg:text", NS)]
    assert "Latency (ms)" in labels and "p50" in labels and "p99" in labels
    assert "12:00" in labels and "10" in labels  # an x tick and the y axis top


def test_points_stay_inside_the_plot_area():
    root = parse(line_chart(title="QPS", times=TIMES, series=[Series("qps", list(range(10)))]))

    for line in root.findall("svg:polyline", NS):
        for pair in line.get("points").split():
            x, y = map(float, pair.split(","))
            assert 0 <= x <= WIDTH and 0 <= y <= HEIGHT
    assert root.get("width") is None and root.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}"  # scales to its box


def test_bar_chart_stacks_classes_and_escapes_names():
    root = parse(
        bar_chart(
            title="Errors <by class>", times=TIMES[:3], stacks={"5xx": [1, 0, 2], "time<out>": [1, 1, 0]}
        )
    )

    bars = root.findall("svg:rect[@class='bar']", NS)
    assert len(bars) == 4
    assert root.get("aria-label") == "Errors <by class>"
    slots = [slot.find("svg:title", NS).text for slot in root.findall("svg:rect[@class='slot']", NS)]
    assert slots == [
        "2026-01-01 12:00 UTC\n5xx: 1\ntime<out>: 1",
        "2026-01-01 12:01 UTC\ntime<out>: 1",
        "2026-01-01 12:02 UTC\n5xx: 2",
    ]


def test_every_point_of_a_line_chart_tells_its_time_and_values_on_hover():
    root = parse(
        line_chart(
            title="Latency",
            times=TIMES,
            series=[Series("p50", [1.25, None] + [12.4] * 8), Series("p99", [3000.0] * 10)],
            unit="ms",
        )
    )

    slots = root.findall("svg:rect[@class='slot']", NS)
    assert len(slots) == len(TIMES)
    assert slots[0].find("svg:title", NS).text == "2026-01-01 12:00 UTC\np50: 1.2 ms\np99: 3,000 ms"
    assert slots[1].find("svg:title", NS).text == "2026-01-01 12:01 UTC\np50: no data\np99: 3,000 ms"
    edges = [(float(s.get("x")), float(s.get("width"))) for s in slots]
    for (x, width), (next_x, _) in zip(edges, edges[1:], strict=False):
        assert abs(x + width - next_x) < 0.2  # the targets tile the plot: no point out of reach


def test_empty_data_still_draws_axes():
    root = parse(line_chart(title="Nothing yet", times=TIMES, series=[Series("qps", [None] * 10)]))

    assert root.findall("svg:polyline", NS) == []
    assert root.get("data-points") == "0"
    assert "nothing in this window" in [t.text for t in root.findall("svg:text", NS)]
    assert root.findall("svg:line", NS)


def test_time_labels_do_not_run_into_each_other_over_days():
    days = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=6 * n) for n in range(29)]
    root = parse(line_chart(title="QPS", times=days, series=[Series("qps", [1.0] * 29)]))

    labels = [t for t in root.findall("svg:text", NS) if t.text and t.text.startswith("01-")]
    assert len(labels) >= 3
    width = len(labels[0].text) * 14 * 0.6  # charts.FONT, about 0.6 em a character
    spans = []
    for label in labels:
        x = float(label.get("x"))
        left = x - width if label.get("text-anchor") == "end" else x - width / 2
        spans.append((left, left + width))
    assert all(right < next_left for (_, right), (next_left, _) in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] <= WIDTH
