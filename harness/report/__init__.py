"""Reports: report.json, report.md and report.html, rendered from cell records alone.

`write_run` saves the run's records and renders; `render_run` re-renders an existing run folder
without touching any model. Suite text and model outputs are untrusted: the HTML template
autoescapes everything, and markdown cells go through `md_cell`.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.cache import atomic_write_text
from harness.core.errors import HarnessError
from harness.core.faults import kill_point
from harness.core.provenance import now
from harness.core.records import CellRecord, from_json, to_json
from harness.report import results

if TYPE_CHECKING:
    from harness.decide.decision import Decision

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class CellRef:
    cell_id: str
    strategy: str
    seed: int
    status: str
    record: str
    """Path of the record, relative to the run folder."""


@dataclass(frozen=True)
class RunReport:
    run_id: str
    suite: str
    suite_hash: str
    model: str
    created_at: str
    limit: int | None
    cells: tuple[CellRef, ...]
    constraints: dict[str, Any] = field(default_factory=dict)
    """The decision's constraints and prices (see harness.decide.decision.Constraints); re-renders reuse them."""
    tuning: tuple[dict[str, Any], ...] = ()
    """How each strategy was tuned (`compare --tune-trials`; rows of harness.run.tune.report_rows)."""
    data_notes: tuple[str, ...] = ()
    """What the suite's checks found at load: duplicates dropped, leaks, carved splits (Suite.notes)."""
    baseline: str = "zero-shot"
    """The strategy every other one is tested against per task, and whose prompts RAG's extra tokens are
    counted against (compare's `baseline`)."""
    progress: tuple[int, int] | None = None
    """(cells finished, cells planned) while the run is still going; None once it is complete."""
    schema_version: int = 1


def md_cell(value: object) -> str:
    """Text safe inside a markdown table cell: no HTML, no pipes, no line breaks, no link syntax."""
    text = html.escape(str(value), quote=False)  # no HTML in a markdown cell; quotes are harmless there
    for ch in "\\|*_`[]#~":
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def _retention(rec: CellRecord) -> dict[str, tuple[float, float]]:
    """'task metric' -> (adapted value, base value) on the retention suite."""
    if rec.retention is None:
        return {}
    base = {(t.task, m): v for t in rec.retention.base for m, v in t.metrics.items()}
    return {f"{t.task} {m}": (v, base[(t.task, m)]) for t in rec.retention.tasks for m, v in t.metrics.items()}


def _retention_columns(records: list[CellRecord]) -> list[str]:
    return list(dict.fromkeys(k for r in records for k in _retention(r)))


def _row(rec: CellRecord) -> dict[str, Any]:
    """One summary-table row per cell."""
    lat = rec.latency
    return {
        "retention": _retention(rec),
        "strategy": rec.strategy,
        "seed": rec.seed,
        "status": rec.status,
        "error": rec.error or "",
        "tasks": {t.task: {"n": t.n, **t.metrics} for t in rec.tasks},
        "p50_ms": None if lat is None else lat.p50_s * 1000,
        "p95_ms": None if lat is None else lat.p95_s * 1000,
        "items_per_s": None if lat is None else lat.items_per_s,
        "prompt_tokens": None if lat is None else lat.prompt_tokens_mean,
        "output_tokens": None if lat is None else lat.output_tokens_mean,
        "trainable_params": rec.adapt.trainable_params,
        "adapt_s": rec.adapt.wall_s,
        "peak_mem_gb": max(rec.adapt.peak_mem_bytes, rec.eval_peak_mem_bytes) / 1e9,
        "phase_s": dict(rec.phase_s),
    }


def _task_columns(records: list[CellRecord]) -> list[tuple[str, list[str]]]:
    """Every (task, metrics) seen in any record, in first-seen order (RAG adds recall@k and MRR)."""
    cols: dict[str, dict[str, None]] = {}
    for rec in records:
        for t in rec.tasks:
            cols.setdefault(t.task, {}).update(dict.fromkeys(t.metrics))
    return [(task, list(metrics)) for task, metrics in cols.items()]


def _mean_meta(rec: CellRecord, key: str) -> float | None:
    values = [float(p.meta[key]) for p in rec.predictions if key in p.meta]
    return sum(values) / len(values) if values else None


def _retrieval_rows(records: list[CellRecord], baseline_strategy: str) -> list[dict[str, Any]]:
    """Retrieval costs for cells whose strategy retrieved: index, per-query time, extra prompt tokens
    against the baseline's cell of the same seed, and the knowledge-update figure."""
    baseline = {r.seed: r.latency.prompt_tokens_mean for r in records
                if r.strategy == baseline_strategy and r.latency}
    rows = []
    for rec in records:
        per_query = _mean_meta(rec, "retrieval_s")
        if per_query is None and "index_chunks" not in rec.adapt.extras:
            continue
        upd = rec.adapt.update
        extra = None
        if rec.latency and rec.seed in baseline:
            extra = rec.latency.prompt_tokens_mean - baseline[rec.seed]
        rows.append({
            "recall": _recall_by_task(rec),
            "strategy": rec.strategy, "seed": rec.seed, "chunks": rec.adapt.extras.get("index_chunks"),
            "build_s": rec.adapt.extras.get("index_build_s"), "index_mb": rec.adapt.artifact_bytes / 1e6,
            "retrieval_ms": None if per_query is None else per_query * 1000, "extra_tokens": extra,
            "knowledge": upd,
        })
    return rows


def _recall_by_task(rec: CellRecord) -> list[tuple[str, list[tuple[str, float]]]]:
    """(task, [(retrieval metric, value)]) for the cell's tasks that report retrieval recall."""
    from harness.report.views import is_recall_metric

    found = [(t.task, [(m, v) for m, v in t.metrics.items() if is_recall_metric(m)]) for t in rec.tasks]
    return [(task, metrics) for task, metrics in found if metrics]


def _item_scores(rec: CellRecord, task: str, metric: str) -> dict[str, float]:
    return {p.example_id: p.scores[metric] for p in rec.predictions if p.task == task and metric in p.scores}


def _significance(records: list[CellRecord], baseline: str) -> list[dict[str, Any]]:
    """Per task: each cell's main per-item metric with a 95% bootstrap CI, and a paired test of each
    strategy against the baseline strategy (same seed, same items)."""
    from harness.core.stats import bootstrap_ci, paired_test
    from harness.data.kinds import main_metric

    ok = [r for r in records if r.status == "ok"]
    results = {t.task: t for r in ok for t in r.tasks}
    out = []
    for task, metrics in _task_columns(ok):
        scored = [m for m in metrics if any(_item_scores(r, task, m) for r in ok)]
        metric = main_metric(results[task].kind, scored, results[task].main_metric)
        if metric is None:
            continue
        rows = []
        for r in ok:
            scores = _item_scores(r, task, metric)
            ci = bootstrap_ci(list(scores.values()), seed=r.seed)
            base = next((b for b in ok if b.strategy == baseline and b.seed == r.seed), None)
            test = None
            if base is not None and base is not r:
                test = paired_test(r.strategy, scores, base.strategy, _item_scores(base, task, metric), seed=r.seed)
            rows.append({"strategy": r.strategy, "seed": r.seed, "ci": ci, "test": test})
        out.append({"task": task, "metric": metric, "rows": rows})
    return out


def training_data(records: list[CellRecord]) -> list[dict[str, Any]]:
    """Per cell that trained: how many train items (and replayed general-text rows) and tokens it saw."""
    rows = []
    for r in records:
        extras = r.adapt.extras if r.adapt else {}
        if r.adapt is None or "train_items" not in extras:
            continue
        rows.append({"strategy": r.strategy, "seed": r.seed, "train_items": int(extras["train_items"]),
                     "replay": int(extras["replay_rows"]) if "replay_rows" in extras else None,
                     "tokens": r.adapt.train_tokens})
    return rows


def decision_context(report: RunReport, records: list[CellRecord]) -> dict[str, Any]:
    """The decision card, per-strategy summary, verdicts, costs, breakdowns and charts."""
    from harness.decide.analysis import analyze
    from harness.decide.decision import Constraints, recommend
    from harness.decide.sweeps import all_break_points
    from harness.report import views

    constraints = Constraints.model_validate(report.constraints)
    analysis = analyze(records)
    decision = recommend(analysis, constraints)
    rows = views.summary_rows(analysis, decision)
    tested = views.pairs(analysis, constraints.margin)
    points = all_break_points(analysis, constraints) if decision.pick else []
    data = results.build(rows, tested, decision, analysis.task_metrics, points)
    shown = results.view(data)  # the card and the tables render from report.json's own figures
    return {
        "results": data, "decision_made": decision,
        "constraints": constraints, "decision": shown["decision"], "summary": shown["arms"],
        "pairs": views.pair_verdicts(tested), "break_points": views.break_point_rows(points),
        "break_evens": views.break_even_lines(rows, decision),
        "coverage": views.coverage_table(records), "browser": views.item_browser(records),
        "charts": views.all_charts(rows, records, constraints), "usd": views.usd, "budget": views.budget_text,
        "task_metrics": analysis.task_metrics, "forgetting": views.forgetting_rows(analysis),
        "baselines": views.baseline_rows(analysis),
    }


def context(report: RunReport, saved: list[CellRecord]) -> dict[str, Any]:
    """Everything the templates show. With several models each strategy is named `model/strategy`
    (harness.decide.arms) and the baseline is the baseline strategy on the first model."""
    from harness.decide.arms import baseline_arm, with_arms
    from harness.report import views
    from harness.report.preference import preference_context

    records, baseline = with_arms(saved), baseline_arm(saved, report.baseline)
    decided = decision_context(report, records)
    prov = next((r.provenance for r in records if r.provenance), None)
    return {
        "report": report,
        "rows": [_row(r) for r in records],
        "task_columns": _task_columns(records),
        "retention_columns": _retention_columns(records),
        "phase_columns": list(dict.fromkeys(k for r in records for k in r.phase_s)),
        "retention_suite": next((r.retention.suite for r in records if r.retention), None),
        "retrieval": _retrieval_rows(records, baseline),
        "significance": _significance(records, baseline), "baseline": baseline,
        "training_data": training_data(records),
        "provenance": prov,
        "fmt": _fmt,
        **decided,
        "grid": views.model_grid(saved, decided["summary"]),
        **preference_context(records, decided),  # the "Preference and RL" section and its reward chart
    }


def _env(autoescape: bool) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["md"] = md_cell
    return env


def render(report: RunReport, records: list[CellRecord], run_dir: Path) -> Decision:
    """report.md (charts as files under charts/) and a self-contained report.html (charts inline);
    returns the decision the report carries."""
    from markupsafe import Markup

    from harness.report.continual import sections

    ctx = context(report, records)
    ctx["continual"] = sections(records)  # sequential training's forgetting matrices (heat maps)
    atomic_write_text(run_dir / "report.json", _report_json(report, ctx["results"]))
    kill_point("report-json")
    for name, svg in {**ctx["charts"], **{c["name"]: c["svg"] for c in ctx["continual"]}}.items():
        atomic_write_text(run_dir / "charts" / f"{name}.svg", svg)
    atomic_write_text(run_dir / "report.md", _env(False).get_template("report.md.j2").render(**ctx))
    kill_point("report-md")
    inline = {name: Markup(svg) for name, svg in ctx["charts"].items()}  # built escaped by harness.report.charts
    continual = [{**c, "svg": Markup(c["svg"])} for c in ctx["continual"]]  # built escaped, as the charts
    html_text = _env(True).get_template("report.html.j2").render(**{**ctx, "charts": inline, "continual": continual})
    atomic_write_text(run_dir / "report.html", html_text)
    decision: Decision = ctx["decision_made"]
    return decision


def _report_json(report: RunReport, data: dict[str, Any]) -> str:
    """The run's index (RunReport) with the machine-readable `results` (harness.report.results)."""
    return json.dumps({**json.loads(to_json(report)), "results": data}, indent=1, allow_nan=False)


def _record_name(rec: CellRecord, several_models: bool) -> str:
    """`lora-seed0`; with several models `gemma-3-270m--lora-seed0` (a file name whatever the model)."""
    if not several_models:
        return f"{rec.strategy}-seed{rec.seed}"
    from harness.decide.arms import model_label

    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model_label(rec.model))}--{rec.strategy}-seed{rec.seed}"


def write_run(run_dir: Path, run_id: str, records: list[CellRecord],
              constraints: dict[str, Any] | None = None,
              tuning: tuple[dict[str, Any], ...] = (), data_notes: tuple[str, ...] = (),
              baseline: str = "zero-shot", progress: tuple[int, int] | None = None) -> tuple[RunReport, Decision]:
    """Copy the records into the run folder, write report.json, render markdown and HTML."""
    from harness.decide.arms import models_of

    refs, models = [], models_of(records)
    for rec in records:
        rel = f"records/{_record_name(rec, len(models) > 1)}.json"
        atomic_write_text(run_dir / rel, to_json(rec))
        kill_point("report-records")
        refs.append(CellRef(rec.cell_id, rec.strategy, rec.seed, rec.status, rel))
    first = records[0]
    report = RunReport(run_id, first.suite, first.suite_hash, ", ".join(models), now(), first.limit, tuple(refs),
                       constraints or {}, tuning, data_notes, baseline, progress)
    decision = render(report, records, run_dir)
    _drop_unreferenced(run_dir / "records", {Path(r.record).name for r in refs})  # after report.json moved on
    return report, decision


def _drop_unreferenced(folder: Path, keep: set[str]) -> None:
    """Records an earlier (partial) report of this run wrote under other names: once a second model's
    cells arrive, names gain the model; report.json no longer points at the old files."""
    for path in folder.glob("*.json"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def load_run(run_dir: Path) -> tuple[RunReport, list[CellRecord]]:
    path = run_dir / "report.json"
    if not path.is_file():
        raise HarnessError(f"{run_dir}: not a run folder (no report.json)")
    try:
        report = from_json(RunReport, path.read_bytes())
        records = [from_json(CellRecord, (run_dir / c.record).read_bytes()) for c in report.cells]
    except (OSError, ValueError) as e:
        raise HarnessError(f"{run_dir}: cannot read the run's records: {str(e).splitlines()[0]}") from None
    return report, records


def render_run(run_dir: Path, constraints: dict[str, Any] | None = None) -> RunReport:
    """Re-render report.md and report.html from the records in `run_dir`; no model runs. New
    `constraints` replace the saved ones (and are saved in report.json)."""
    report, records = load_run(run_dir)
    if constraints is not None:
        report = replace(report, constraints=constraints)
    render(report, records, run_dir)  # report.json rewritten with the results under these constraints
    return report
