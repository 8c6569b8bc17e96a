"""Inline SVG charts for the offline report: stdlib only, no scripts, styles or external resources.

Every element goes through `_el`, which escapes all text and attribute values (untrusted labels
included; control characters XML forbids become U+FFFD). Colours are presentation attributes, not
CSS, and numbers have fixed precision: the same input gives byte-identical, well-formed SVG.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

__all__ = ["Band", "Bar", "Line", "Point", "bands", "bars", "lines", "scatter"]

WIDTH, HEIGHT = 640, 360
# Okabe-Ito (colour-blind friendly), the pale yellow last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MAX_LABEL = 28
CHAR_W = 6.2  # rough width of one 11px sans-serif character
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    y_low: float | None = None
    y_high: float | None = None
    highlight: bool = False


@dataclass(frozen=True)
class Bar:
    label: str
    values: dict[str, float]


@dataclass(frozen=True)
class Line:
    label: str
    points: tuple[tuple[float, float], ...]
    dashed: bool = False


@dataclass(frozen=True)
class _Axis:
    lo: float
    hi: float
    ticks: tuple[tuple[float, str], ...]
    """(position in axis space, label); axis space is log10(x) on a log axis."""
    log: bool = False

    def frac(self, v: float) -> float:
        """Data value -> 0..1 along the axis; on a log axis, v <= 0 sits at the minimum."""
        if self.log:
            v = math.log10(v) if v > 0 else self.lo
        return self.pos(v)

    def pos(self, t: float) -> float:
        return (t - self.lo) / (self.hi - self.lo)


@dataclass(frozen=True)
class _Box:
    left: float
    top: float
    right: float
    bottom: float

    def x(self, axis: _Axis, v: float) -> float:
        return self.left + axis.frac(v) * (self.right - self.left)

    def y(self, axis: _Axis, v: float) -> float:
        return self.bottom - axis.frac(v) * (self.bottom - self.top)


def _esc(s: object) -> str:
    return html.escape(_BAD_XML.sub("\ufffd", str(s)), quote=True)


def _trunc(s: object, n: int = MAX_LABEL) -> str:
    """Whitespace collapsed, cut to n characters with an ellipsis (before escaping)."""
    raw = " ".join(str(s).split())
    return raw if len(raw) <= n else raw[: n - 1] + "…"


def _f(v: float) -> str:
    return f"{v:.1f}"


def _el(tag: str, text: object = None, tip: object = None, /, **attrs: object) -> str:
    """One element: `class_` -> class, `_` -> `-` in names; numbers get one decimal; all escaped."""
    a = "".join(f' {k.strip("_").replace("_", "-")}="{_esc(_f(v) if isinstance(v, (int, float)) else v)}"'
                for k, v in attrs.items())
    if text is None and tip is None:
        return f"<{tag}{a}/>"
    inner = ("" if tip is None else f"<title>{_esc(tip)}</title>") + ("" if text is None else _esc(text))
    return f"<{tag}{a}>{inner}</{tag}>"


def _ok(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and math.isfinite(v) and abs(v) < 1e300


def _num(v: float) -> str:
    return f"{v:.6g}"


def _value(v: float) -> str:
    """Bar-end text: about three significant digits (0 decimals from 100, 1 from 10, else up to
    3), trailing zeros dropped."""
    decimals = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 3
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".") if abs(v) >= 1e-3 or v == 0 else f"{v:.3g}"
    s = f"{v:.0f}" if decimals == 0 else s
    return "0" if s in ("", "-0") else s


def _tick(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    s = f"{v:.3g}" if step >= 1e6 or step < 1e-4 else f"{v:.{decimals}f}"
    return s[1:] if s.startswith("-") and s.strip("-0.") == "" else s


def _nice(lo: float, hi: float) -> tuple[int, int, float]:
    """Tick indices a..b and a 1/2/5 x 10^k step giving 4 to 6 ticks that cover [lo, hi]."""
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    exp = math.floor(math.log10((hi - lo) / 5))
    a, b, step = 0, 1, 1.0
    for step in (m * 10.0**e for e in range(exp - 1, exp + 4) for m in (1, 2, 5)):
        a, b = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        if b - a <= 5:
            break
    while b - a < 3:  # the step jumped past 4 ticks: widen, without crossing 0 for data >= 0
        if (b - a) % 2 or (a == 0 and lo >= 0):
            b += 1
        else:
            a -= 1
    return a, b, step


def _linear(values: Sequence[float]) -> _Axis:
    a, b, step = _nice(min(values), max(values))
    return _Axis(a * step, b * step, tuple((i * step, _tick(i * step, step)) for i in range(a, b + 1)))


def _log(values: Sequence[float]) -> _Axis:
    """Decades covering the positive values; any x <= 0 adds a decade below, labelled "0"."""
    pos = [v for v in values if v > 0]
    zero = len(pos) < len(values)
    a = math.floor(math.log10(min(pos)) + 1e-9) if pos else 0
    b = max(math.ceil(math.log10(max(pos)) - 1e-9) if pos else 1, a + 1)
    k = math.ceil((b - a) / (4 if zero else 5))
    b = a + k * math.ceil((b - a) / k)
    mults = (1, 2, 5) if b - a == 1 else (1, 3) if b - a == 2 else (1,)
    ticks = [(e + math.log10(m), _num(m * 10.0**e)) for e in range(a, b + 1, k) for m in mults]
    ticks = [t for t in ticks if t[0] <= b + 1e-9]
    if zero:
        a -= 1
        ticks.insert(0, (float(a), "0"))
    return _Axis(float(a), float(b), tuple(ticks), log=True)


def _doc(title: str, body: Sequence[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" font-family="sans-serif" font-size="11" fill="#222">'
    )
    parts = [
        head,
        _el("title", title),
        _el("rect", class_="bg", width=width, height=height, fill="#fff"),
        _el("text", _trunc(title, 80), class_="heading", x=12, y=20, font_size=14, font_weight="bold"),
        *body,
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _empty(title: str) -> str:
    nodata = _el("text", "no data", class_="nodata", x=WIDTH // 2, y=70, text_anchor="middle", fill="#666")
    return _doc(title, [nodata], height=110)


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _legend(entries: Sequence[tuple[str, str, bool]], top: float) -> tuple[list[str], float]:
    """Swatch + name per (name, colour, dashed), wrapped into rows; returns elements and the bottom y."""
    out: list[str] = []
    x, y = 12.0, top
    for name, colour, dashed in entries:
        w = 34 + CHAR_W * len(_trunc(name))
        if x + w > WIDTH - 12 and x > 12:
            x, y = 12.0, y + 16
        dash = {"stroke_dasharray": "6 4"} if dashed else {}
        out.append(_el("line", x1=x, y1=y, x2=x + 18, y2=y, stroke=colour, stroke_width=3, **dash))
        out.append(_el("text", _trunc(name), class_="legend", x=x + 22, y=y + 4))
        x += w
    return out, y + 8


def _x_axis(axis: _Axis, box: _Box, label: str) -> list[str]:
    out = []
    for t, text in axis.ticks:
        x = box.left + axis.pos(t) * (box.right - box.left)
        if axis.pos(t) > 1e-9:  # the y axis line sits at 0
            out.append(_el("line", x1=x, y1=box.top, x2=x, y2=box.bottom, stroke="#e3e3e3"))
        out.append(_el("text", text, class_="tick", x=x, y=box.bottom + 15, text_anchor="middle"))
    out.append(_el("line", x1=box.left, y1=box.bottom, x2=box.right, y2=box.bottom, stroke="#333"))
    mid = (box.left + box.right) / 2
    out.append(_el("text", _trunc(label, 60), class_="axis-label", x=mid, y=box.bottom + 36, text_anchor="middle"))
    return out


def _y_axis(axis: _Axis, box: _Box, label: str) -> list[str]:
    out = []
    for t, text in axis.ticks:
        y = box.bottom - axis.pos(t) * (box.bottom - box.top)
        if axis.pos(t) > 1e-9:  # the x axis line sits at 0
            out.append(_el("line", x1=box.left, y1=y, x2=box.right, y2=y, stroke="#e3e3e3"))
        out.append(_el("text", text, class_="tick", x=box.left - 6, y=y, dy=4, text_anchor="end"))
    out.append(_el("line", x1=box.left, y1=box.top, x2=box.left, y2=box.bottom, stroke="#333"))
    cx, cy = box.left - 50, (box.top + box.bottom) / 2
    out.append(_el("text", _trunc(label, 40), class_="axis-label", x=cx, y=cy,
                   transform=f"rotate(-90 {_f(cx)} {_f(cy)})", text_anchor="middle"))
    return out


def _err(p: Point) -> tuple[float, float] | None:
    return (p.y_low, p.y_high) if _ok(p.y_low) and _ok(p.y_high) else None


def _point(p: Point, box: _Box, xa: _Axis, ya: _Axis) -> list[str]:
    """Error bar, marker (filled on the front) and label of one scatter point."""
    out = []
    x, y, colour = box.x(xa, p.x), box.y(ya, p.y), _colour(0)
    err = _err(p)
    if err is not None:
        y1, y2, xs, cl, cr = (_f(v) for v in (box.y(ya, err[0]), box.y(ya, err[1]), x, x - 3, x + 3))
        out.append(_el("path", class_="err", d=f"M{xs} {y1}V{y2}M{cl} {y1}H{cr}M{cl} {y2}H{cr}", stroke=colour,
                       fill="none"))
    cls, fill = ("pt front", colour) if p.highlight else ("pt", "#fff")
    tip = f"{p.label}: x={_num(p.x)}, y={_num(p.y)}"
    out.append(_el("circle", None, tip, class_=cls, cx=x, cy=y, r=4.5, fill=fill, stroke=colour, stroke_width=1.5))
    tx, anchor = (x - 7, "end") if x > (box.left + box.right) / 2 else (x + 7, "start")
    out.append(_el("text", _trunc(p.label), class_="pt-label", x=tx, y=y - 6, text_anchor=anchor))
    return out


def scatter(points: Sequence[Point], title: str, x_label: str, y_label: str, x_log: bool = False) -> str:
    """Accuracy (y) against cost (x) with error bars; front points are filled and joined in x order."""
    pts = [p for p in points if _ok(p.x) and _ok(p.y)]
    if not pts:
        return _empty(title)
    ys = [p.y for p in pts] + [v for p in pts for v in (_err(p) or ())]
    xa = _log([p.x for p in pts]) if x_log else _linear([p.x for p in pts])
    ya = _linear(ys)
    box = _Box(72, 40, WIDTH - 24, HEIGHT - 52)
    body = _x_axis(xa, box, x_label) + _y_axis(ya, box, y_label)
    front = sorted((p for p in pts if p.highlight), key=lambda p: (p.x, p.y))
    if len(front) > 1:
        coords = " ".join(f"{_f(box.x(xa, p.x))},{_f(box.y(ya, p.y))}" for p in front)
        body.append(_el("polyline", class_="front-line", points=coords, fill="none", stroke=_colour(0),
                        stroke_dasharray="4 3"))
    for p in pts:
        body += _point(p, box, xa, ya)
    return _doc(title, body)


def _finite_value(g: Bar, name: str) -> float | None:
    v = g.values.get(name)
    return v if _ok(v) else None


def _bar(v: float, name: str, g: Bar, geo: tuple[float, float, float], x0: float, colour: str) -> list[str]:
    """One bar from the zero line at x0 to x1 = geo[0], top geo[1], height geo[2], value at its end."""
    x1, y, h = geo
    tx, anchor = (x1 + 4, "start") if v >= 0 else (x1 - 4, "end")
    tip = f"{g.label} · {name}: {_value(v)}"
    return [
        _el("rect", None, tip, class_="bar", x=min(x0, x1), y=y, width=abs(x1 - x0), height=h, fill=colour),
        _el("text", _value(v), class_="value", x=tx, y=y + h / 2, dy=4, text_anchor=anchor),
    ]


def bars(groups: Sequence[Bar], title: str, value_label: str, series: Sequence[str] | None = None) -> str:
    """Horizontal grouped bars, one row per group and one bar per series, drawn from the zero line."""
    names = list(series) if series is not None else list(dict.fromkeys(n for g in groups for n in g.values))
    vals = [v for g in groups for n in names if (v := _finite_value(g, n)) is not None]
    if not vals:
        return _empty(title)
    legend, top = _legend([(n, _colour(i), False) for i, n in enumerate(names)], 38) if len(names) > 1 else ([], 30)
    height = int(max(HEIGHT, top + 64 + len(groups) * (len(names) * 14 + 10)))
    left = 20 + CHAR_W * max(len(_trunc(g.label)) for g in groups)
    box = _Box(round(left), top + 12, WIDTH - 60, height - 52)
    axis = _linear([*vals, 0.0])
    body = legend + _x_axis(axis, box, value_label)
    row = (box.bottom - box.top) / len(groups)
    bar_h = row * 0.8 / len(names)
    x0 = box.x(axis, 0.0)
    for i, g in enumerate(groups):
        y = box.top + i * row
        body.append(_el("text", _trunc(g.label), class_="cat", x=box.left - 8, y=y + row / 2, dy=4, text_anchor="end"))
        for j, n in enumerate(names):
            v = _finite_value(g, n)
            if v is not None:
                body += _bar(v, n, g, (box.x(axis, v), y + row * 0.1 + j * bar_h, bar_h - 1), x0, _colour(j))
    body.append(_el("line", class_="zero", x1=x0, y1=box.top, x2=x0, y2=box.bottom, stroke="#333"))
    return _doc(title, body, height=height)


def _runs(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Points with a finite x in x order, split into runs wherever y is not finite."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in sorted((p for p in points if _ok(p[0])), key=lambda p: p[0]):
        if _ok(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def lines(series: Sequence[Line], title: str, x_label: str, y_label: str) -> str:
    """Line chart with a small marker at each point (training curves: loss against step)."""
    runs = [_runs(s.points) for s in series]
    flat = [p for rs in runs for r in rs for p in r]
    if not flat:
        return _empty(title)
    entries = [(s.label, _colour(i), s.dashed) for i, s in enumerate(series)]
    legend, top = _legend(entries, 38) if len(series) > 1 else ([], 30)
    box = _Box(72, top + 10, WIDTH - 24, HEIGHT - 52)
    xa, ya = _linear([p[0] for p in flat]), _linear([p[1] for p in flat])
    body = legend + _x_axis(xa, box, x_label) + _y_axis(ya, box, y_label)
    for i, (s, rs) in enumerate(zip(series, runs, strict=True)):
        dash = {"stroke_dasharray": "6 4"} if s.dashed else {}
        for r in rs:
            xy = [(box.x(xa, x), box.y(ya, y)) for x, y in r]
            if len(r) > 1:
                pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in xy)
                body.append(_el("polyline", class_="line", points=pts, fill="none", stroke=_colour(i), stroke_width=2,
                                **dash))
            body += [_el("circle", class_="mk", cx=x, cy=y, r=2.5, fill=_colour(i)) for x, y in xy]
    return _doc(title, body)


@dataclass(frozen=True)
class Band:
    """One swept constraint: the pick along it, as segments of its axis (fractions 0..1)."""

    label: str
    segments: tuple[tuple[float, float, str], ...]
    """(start, end, pick) with start and end in 0..1 along the axis."""
    ticks: tuple[tuple[float, str], ...] = ()
    """(position 0..1, text) under the band."""


def bands(rows: Sequence[Band], title: str) -> str:
    """The pick as a function of each constraint, one horizontal band per constraint, coloured by pick."""
    if not rows:
        return _empty(title)
    names = list(dict.fromkeys(name for r in rows for _, _, name in r.segments))
    colour = {n: _colour(i) for i, n in enumerate(names)}
    legend, top = _legend([(n, colour[n], False) for n in names], 40)
    left, right, body = 170.0, WIDTH - 16.0, list(legend)
    for i, r in enumerate(rows):
        y = top + 14 + i * 44
        body.append(_el("text", _trunc(r.label), class_="band-label", x=12, y=y + 12))
        for a, b, name in r.segments:
            x0, x1 = left + a * (right - left), left + b * (right - left)
            body.append(_el("rect", None, name, x=x0, y=y, width=max(x1 - x0, 0.5), height=16, fill=colour[name]))
        for pos, text in r.ticks:
            x = left + pos * (right - left)
            body.append(_el("text", _trunc(text, 10), class_="tick", x=x, y=y + 28, text_anchor="middle",
                            font_size=9, fill="#555"))
    return _doc(title, body, height=int(top + 24 + 44 * len(rows)))
