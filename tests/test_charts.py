"""Inline SVG charts: well-formed, inert with hostile labels, deterministic, robust to bad numbers."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from harness.report.charts import Bar, Line, Point, bars, lines, scatter

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ["<script>alert(1)</script>", '" onload="alert(2)', "<img src=x onerror=alert(3)>"]
NAN, INF = float("nan"), float("inf")


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("class") == "chart"
    assert root.get("role") == "img"
    assert root.get("viewBox") and root.get("width") and root.get("height")
    assert root[0].tag == f"{SVG}title"
    return root


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter()]


def sample_points(labels: list[str] | None = None) -> list[Point]:
    names = labels or ["zero-shot", "few-shot", "rag", "lora"]
    return [
        Point(names[0], 0.0, 0.40, 0.35, 0.45, highlight=True),
        Point(names[1], 100.0, 0.55, 0.50, 0.60, highlight=True),
        Point(names[2], 1000.0, 0.50, None, 0.60),  # one bound only: no error bar
        Point(names[3 % len(names)], 5000.0, 0.70, 0.62, 0.78, highlight=True),
    ]


def all_charts(labels: list[str]) -> list[str]:
    title = " / ".join(labels)
    return [
        scatter(sample_points(labels), title, labels[0], labels[1]),
        scatter(sample_points(labels), title, labels[0], labels[1], x_log=True),
        bars([Bar(label, {s: float(i + 1) for s in labels}) for i, label in enumerate(labels)], title, labels[2]),
        lines([Line(lab, ((0.0, 1.0), (1.0, 0.5)), dashed=i == 1) for i, lab in enumerate(labels)], title, *labels[:2]),
    ]


def test_every_chart_is_a_standalone_svg_document() -> None:
    for svg in all_charts(["a", "b", "c"]):
        assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="chart" ')
        root = parse(svg)
        assert root[0].text == "a / b / c"
        assert "<script" not in svg and "foreignObject" not in svg and "href" not in svg and "style" not in svg


def test_hostile_labels_stay_inert_text() -> None:
    for svg in all_charts(HOSTILE):
        assert "<script" not in svg.lower() and "<img" not in svg.lower()
        root = parse(svg)
        for el in root.iter():
            local = el.tag.removeprefix(SVG)
            assert local not in {"script", "img", "foreignObject", "a"}
            assert not any(name.lower().startswith("on") for name in el.attrib), el.attrib
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
        assert "&quot; onload=&quot;alert(2)" in svg
        all_text = "\n".join(texts(root))
        assert "<script>alert(1)</script>" in all_text
        assert '" onload="alert(2)' in all_text
        assert "<img src=x onerror=alert(3)>" in all_text


def test_control_characters_and_long_labels() -> None:
    label = "bad\x00char\x1b and a very long strategy name that goes on and on"
    svg = scatter([Point(label, 1.0, 1.0)], label, "x", "y")
    root = parse(svg)
    drawn = [e.text for e in by_class(root, "pt-label")]
    assert len(drawn) == 1 and drawn[0] is not None
    assert len(drawn[0]) == 28 and drawn[0].endswith("…")
    assert "\ufffd" in drawn[0]


def test_long_label_is_truncated_before_escaping() -> None:
    label = "a" * 26 + "<&>" + "b" * 10
    root = parse(bars([Bar(label, {"v": 1.0})], "t", "v"))
    (cat,) = by_class(root, "cat")
    assert cat.text == "a" * 26 + "<…"


def test_output_is_byte_identical_across_calls() -> None:
    assert all_charts(["x", "y", "z"]) == all_charts(["x", "y", "z"])


@pytest.mark.parametrize(
    "svg",
    [
        scatter([], "empty", "x", "y"),
        scatter([Point("a", NAN, 1.0), Point("b", 1.0, INF)], "all bad", "x", "y"),
        bars([], "empty", "v"),
        bars([Bar("a", {"p50": NAN})], "all bad", "v"),
        bars([Bar("a", {"p50": 1.0})], "no series", "v", series=[]),
        lines([], "empty", "x", "y"),
        lines([Line("a", ()), Line("b", ((NAN, 1.0), (1.0, -INF)))], "all bad", "x", "y"),
    ],
)
def test_empty_or_bad_input_says_no_data(svg: str) -> None:
    root = parse(svg)
    assert [e.text for e in by_class(root, "nodata")] == ["no data"]


def test_bad_values_skip_only_their_marks() -> None:
    pts = [Point("ok", 1.0, 0.5, NAN, 0.6), Point("nan", NAN, 0.5), Point("none-ci", 2.0, 0.7, None, None)]
    root = parse(scatter(pts, "t", "x", "y"))
    assert len(by_class(root, "pt")) == 2 and not by_class(root, "err")
    root = parse(bars([Bar("a", {"p50": 1.0, "p95": NAN}), Bar("b", {"p50": INF, "p95": 2.0})], "t", "ms"))
    assert len(by_class(root, "bar")) == 2
    root = parse(lines([Line("l", ((0.0, 1.0), (1.0, NAN), (2.0, 0.5), (3.0, 0.4)))], "t", "x", "y"))
    assert len(by_class(root, "mk")) == 3
    assert len(by_class(root, "line")) == 1  # the lone first point is not joined across the gap


def test_single_point_and_equal_values_pad_the_axes() -> None:
    for svg in (
        scatter([Point("a", 5.0, 5.0)], "t", "x", "y"),
        scatter([Point("a", 0.0, 0.0), Point("b", 0.0, 0.0)], "t", "x", "y"),
        lines([Line("a", ((3.0, 2.0),))], "t", "x", "y"),
        bars([Bar("a", {"v": 0.0})], "t", "v"),
    ):
        root = parse(svg)
        ticks = by_class(root, "tick")
        assert ticks
        for el in root.iter():
            for value in el.attrib.values():
                assert "nan" not in value.lower() and "inf" not in value.lower()


def tick_labels(root: ET.Element, axis: str) -> list[str]:
    anchor = "middle" if axis == "x" else "end"
    return [e.text or "" for e in by_class(root, "tick") if e.get("text-anchor") == anchor]


def test_ticks_are_nice_and_four_to_six() -> None:
    root = parse(scatter(sample_points(), "t", "cost", "acc"))
    xs, ys = tick_labels(root, "x"), tick_labels(root, "y")
    assert 4 <= len(xs) <= 6 and 4 <= len(ys) <= 6
    assert xs == ["0", "1000", "2000", "3000", "4000", "5000"]
    assert ys == ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8"]
    root = parse(scatter([Point("a", 5.0, 5.0)], "t", "x", "y"))
    assert 4 <= len(tick_labels(root, "x")) <= 6


def test_error_bars_and_front_markers_are_counted() -> None:
    root = parse(scatter(sample_points(), "t", "cost", "acc"))
    assert len(by_class(root, "pt")) == 4
    assert len(by_class(root, "front")) == 3
    assert len(by_class(root, "err")) == 3
    (front_line,) = by_class(root, "front-line")
    xs = [float(pair.split(",")[0]) for pair in (front_line.get("points") or "").split()]
    assert len(xs) == 3 and xs == sorted(xs)
    hollow = [e for e in by_class(root, "pt") if "front" not in (e.get("class") or "")]
    assert [e.get("fill") for e in hollow] == ["#fff"]


def test_front_line_needs_two_front_points() -> None:
    root = parse(scatter([Point("a", 1.0, 1.0, highlight=True), Point("b", 2.0, 0.5)], "t", "x", "y"))
    assert len(by_class(root, "front")) == 1 and not by_class(root, "front-line")


def test_log_axis_puts_zero_cost_at_the_minimum() -> None:
    root = parse(scatter(sample_points(), "t", "cost", "acc", x_log=True))
    (axis_line,) = [e for e in root.iter(f"{SVG}line") if e.get("stroke") == "#333" and e.get("x1") == e.get("x2")]
    left = float(axis_line.get("x1") or "nan")
    zero_cost = next(e for e in by_class(root, "pt") if "x=0," in (e[0].text or ""))
    assert float(zero_cost.get("cx") or "nan") == left
    labels = tick_labels(root, "x")
    assert labels[0] == "0" and "100" in labels and "1000" in labels
    first_tick = by_class(root, "tick")[0]
    assert first_tick.text == "0" and float(first_tick.get("x") or "nan") == left
    others = sorted(float(e.get("cx") or "nan") for e in by_class(root, "pt"))
    assert others[0] == left and all(x > left for x in others[1:])


def test_negative_bars_are_left_of_the_zero_line() -> None:
    groups = [Bar("gain", {"delta": 0.25}), Bar("loss", {"delta": -0.1234567})]
    root = parse(bars(groups, "Accuracy change", "delta"))
    (zero,) = by_class(root, "zero")
    x0 = float(zero.get("x1") or "nan")
    pos, neg = by_class(root, "bar")
    assert float(pos.get("x") or "nan") == pytest.approx(x0)
    assert float(pos.get("width") or "nan") > 0
    assert float(neg.get("x") or "nan") + float(neg.get("width") or "nan") == pytest.approx(x0, abs=0.11)
    assert float(neg.get("x") or "nan") < x0
    assert [e.text for e in by_class(root, "value")] == ["0.25", "-0.123"]
    tick_values = [float(t) for t in tick_labels(root, "x")]
    assert min(tick_values) < 0 < max(tick_values) and 0 in tick_values


def test_bars_series_order_and_legend() -> None:
    groups = [Bar("a", {"p95": 3.0, "p50": 1.0}), Bar("b", {"p50": 2.0, "p99": 9.0})]
    root = parse(bars(groups, "Latency", "ms"))
    assert [e.text for e in by_class(root, "legend")] == ["p95", "p50", "p99"]
    assert [e.text for e in by_class(root, "cat")] == ["a", "b"]
    assert len(by_class(root, "bar")) == 4
    root = parse(bars(groups, "Latency", "ms", series=["p50"]))
    assert not by_class(root, "legend") and [e.text for e in by_class(root, "value")] == ["1", "2"]


def test_many_groups_grow_the_chart() -> None:
    groups = [Bar(f"s{i}", {"a": float(i), "b": float(-i)}) for i in range(30)]
    root = parse(bars(groups, "t", "v"))
    assert int(root.get("height") or 0) > 360
    assert len(by_class(root, "bar")) == 60


def test_lines_sorted_by_x_with_markers_and_dashes() -> None:
    train = Line("train loss", ((2.0, 1.0), (0.0, 3.0), (1.0, 2.0)))
    dev = Line("dev loss", ((0.0, 3.2), (2.0, 1.5)), dashed=True)
    root = parse(lines([train, dev], "Training", "step", "loss"))
    polys = by_class(root, "line")
    assert len(polys) == 2 and len(by_class(root, "mk")) == 5
    xs = [float(p.split(",")[0]) for p in (polys[0].get("points") or "").split()]
    assert xs == sorted(xs)
    assert polys[0].get("stroke-dasharray") is None and polys[1].get("stroke-dasharray")
    assert polys[0].get("stroke") != polys[1].get("stroke")
    assert [e.text for e in by_class(root, "legend")] == ["train loss", "dev loss"]
    root = parse(lines([train], "Training", "step", "loss"))
    assert not by_class(root, "legend")


def test_coordinates_have_fixed_precision() -> None:
    root = parse(scatter([Point("a", math.pi, math.e), Point("b", 1 / 3, 2 / 3)], "t", "x", "y"))
    for el in by_class(root, "pt"):
        for key in ("cx", "cy"):
            value = el.get(key) or ""
            assert len(value.split(".")[1]) == 1
