"""The report's continual-learning section: each sequentially trained cell's forgetting matrix
(`AdaptReport.continual`: rows = the model before training and after each stage, columns = tasks) as
a table and a heat-map SVG (harness.report.charts' escaping and document helpers), and per task what
the later stages took away (its final score minus its score right after its own stage)."""

from __future__ import annotations

import re
from typing import Any

from harness.core.records import CellRecord, ContinualMatrix
from harness.report.charts import _doc, _el, _trunc

CELL_W, CELL_H, LEFT, TOP = 120, 34, 150, 76
LOW, HIGH = (247, 251, 255), (8, 81, 156)
"""Heat-map colours of a score of 0 and of 1 (scores are shares of items)."""


def _colour(v: float) -> str:
    t = min(1.0, max(0.0, v)) if v == v else 0.0
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(LOW, HIGH, strict=True))


def heatmap(m: ContinualMatrix, title: str) -> str:
    """Rows: stages; columns: tasks; each cell coloured by its score and labelled with it."""
    width = LEFT + CELL_W * len(m.tasks) + 20
    height = TOP + CELL_H * len(m.stages) + 30
    body = [_el("text", "task (metric, split) →", x=LEFT, y=40, fill="#444"),
            _el("text", "after ↓", x=12, y=TOP - 8, fill="#444")]
    for j, (task, metric, split) in enumerate(zip(m.tasks, m.metrics, m.splits, strict=True)):
        x = LEFT + j * CELL_W + CELL_W / 2
        body.append(_el("text", _trunc(task, 18), f"{task} ({metric}, {split})", x=x, y=TOP - 22,
                        text_anchor="middle", font_weight="bold"))
        body.append(_el("text", _trunc(f"{metric}, {split}", 20), x=x, y=TOP - 8, text_anchor="middle", fill="#444"))
    for i, (stage, row) in enumerate(zip(m.stages, m.scores, strict=True)):
        y = TOP + i * CELL_H
        body.append(_el("text", _trunc(stage, 22), x=LEFT - 8, y=y + CELL_H / 2 + 4, text_anchor="end"))
        for j, v in enumerate(row):
            x = LEFT + j * CELL_W
            tip = f"after {stage}: {m.tasks[j]} {m.metrics[j]} = {v:.3f}"
            body.append(_el("rect", None, tip, x=x, y=y, width=CELL_W - 2, height=CELL_H - 2, fill=_colour(v)))
            body.append(_el("text", f"{v:.3f}", x=x + CELL_W / 2, y=y + CELL_H / 2 + 4, text_anchor="middle",
                            fill="#fff" if v > 0.55 else "#222"))
    note = "scores of each task (columns) before training and after each stage (rows), in training order"
    body.append(_el("text", note, x=12, y=height - 10, fill="#666", font_size=10))
    return _doc(title, body, width=max(width, 420), height=height)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "cell"


def forgetting(m: ContinualMatrix) -> list[dict[str, Any]]:
    """Per task trained before the last stage: its score right after its own stage, at the end, and
    the change (negative: forgotten)."""
    out = []
    for j, task in enumerate(m.tasks):
        if task not in m.stages[1:-1]:
            continue
        own = m.scores[m.stages.index(task)][j]
        out.append({"task": task, "after_own": own, "final": m.scores[-1][j], "change": m.scores[-1][j] - own})
    return out


def sections(records: list[CellRecord]) -> list[dict[str, Any]]:
    """One entry per cell with a forgetting matrix: its table rows, heat map and forgetting."""
    out = []
    for rec in records:
        m = rec.adapt.continual if rec.status == "ok" else None
        if m is None:
            continue
        name = f"continual-{_slug(rec.strategy)}-seed{rec.seed}"
        out.append({
            "strategy": rec.strategy, "seed": rec.seed, "name": name,
            "svg": heatmap(m, f"Forgetting matrix: {rec.strategy} (seed {rec.seed})"),
            "tasks": [{"name": t, "metric": k, "split": s} for t, k, s in zip(m.tasks, m.metrics, m.splits,
                                                                                strict=True)],
            "rows": [{"stage": s, "scores": list(r)} for s, r in zip(m.stages, m.scores, strict=True)],
            "forgetting": forgetting(m),
        })
    return out
