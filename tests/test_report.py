from dataclasses import replace
from pathlib import Path

from harness.core.records import AdaptReport, CellRecord, LatencySummary, Prediction, TaskResult
from harness.report import load_run, md_cell, render_run, write_run

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> | [x](javascript:alert(3)) **b**'


def record(strategy: str, status: str = "ok", error: str | None = None) -> CellRecord:
    pred = Prediction("q1", "qa", HOSTILE, "740 marks", {"exact_match": 0.0, "f1": 0.0}, 0.5, 40, 6)
    return CellRecord(
        cell_id=f"id-{strategy}", suite=HOSTILE, suite_hash="0" * 64, strategy=strategy, options={}, seed=0,
        model="tiny", limit=None, status=status, error=error,
        tasks=(TaskResult(HOSTILE, "short-answer", 1, {"exact_match": 0.0, "f1": 0.25}),),
        predictions=(pred,), adapt=AdaptReport(total_params=10),
        latency=LatencySummary(0.5, 0.9, 0.6, 2.0, 40.0, 6.0, 8),
    )


def test_md_cell_neutralizes_html_pipes_and_links():
    out = md_cell(HOSTILE)
    assert "<" not in out and ">" not in out and "|" not in out.replace("\\|", "")
    assert "\\[x\\]" in out and "\\*\\*b\\*\\*" in out
    assert md_cell("a\nb") == "a b"


def test_hostile_suite_and_outputs_render_inert(tmp_path: Path):
    recs = [record("zero-shot"), replace(record("boom", "failed", HOSTILE), tasks=(), latency=None)]
    write_run(tmp_path, "run-1", recs)
    html = (tmp_path / "report.html").read_text()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html
    md = (tmp_path / "report.md").read_text()
    assert "<script>" not in md and "<img" not in md and "[x](javascript" not in md


def test_report_rerenders_from_records_alone(tmp_path: Path):
    write_run(tmp_path, "run-1", [record("zero-shot"), record("few-shot")])
    before = (tmp_path / "report.md").read_text()
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.html").unlink()
    render_run(tmp_path)
    assert (tmp_path / "report.md").read_text() == before
    report, records = load_run(tmp_path)
    assert [c.strategy for c in report.cells] == ["zero-shot", "few-shot"]
    assert records[0].tasks[0].metrics["f1"] == 0.25
    assert "| zero-shot | 0 | ok | 0.000 | 0.250 | 1 |" in before


def test_forgetting_is_shown_against_the_base_model(tmp_path: Path):
    from harness.core.records import Retention

    ret = Retention("general", (TaskResult("mc", "multiple-choice", 10, {"accuracy": 0.5}),),
                    (TaskResult("mc", "multiple-choice", 10, {"accuracy": 0.6}),))
    write_run(tmp_path, "run-1", [replace(record("lora"), retention=ret)])
    md = (tmp_path / "report.md").read_text()
    assert "## Forgetting" in md and "| lora | +10.0 pt | – | – | – | measured |" in md  # an old record: no interval
    assert "## Retention per seed (general)" in md and "| lora | 0 | 0.500 | -0.100 |" in md
    assert "+10.0 pt" in (tmp_path / "report.html").read_text()


def test_report_gives_intervals_and_paired_verdicts_against_zero_shot(tmp_path: Path):
    def cell(strategy, correct):
        preds = tuple(Prediction(f"c{i}", "ct", "a", "a", {"accuracy": float(c)}, 0.1, 10, 0)
                      for i, c in enumerate(correct))
        return replace(record(strategy), tasks=(TaskResult("ct", "classification", len(correct),
                                                           {"accuracy": sum(correct) / len(correct)}),),
                       predictions=preds)

    write_run(tmp_path, "run-1", [cell("zero-shot", [0] * 20), cell("few-shot", [1] * 15 + [0] * 5)])
    md = (tmp_path / "report.md").read_text()
    assert "### ct (accuracy)" in md
    # 15 discordant pairs all for few-shot: p = 2 / 2**15
    assert "few-shot vs zero-shot: +75.0 pt, significant, p=6.1e-05 (McNemar exact, n=20)" in md


def decision_records() -> list[CellRecord]:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_decide import cell

    recs = [cell("zero-shot", [1] * 10 + [0] * 30, f1=[0.1] * 20),
            cell("few-shot", [1] * 25 + [0] * 15, f1=[0.3] * 20, p50_s=0.3),
            cell("lora", [1] * 32 + [0] * 8, f1=[0.4] * 20, adapt_s=600, forgot=8.0),
            cell("qlora", [], status="skipped")]
    lora = recs[2]
    curve = ({"step": 5.0, "train_loss": 2.5}, {"step": 10.0, "dev_loss": 2.2}, {"step": 10.0, "train_loss": 2.0})
    recs[2] = replace(lora, adapt=replace(lora.adapt, curve=curve))
    return recs


def test_decision_card_comes_first_and_charts_are_inline_and_linked(tmp_path: Path):
    write_run(tmp_path, "run-1", decision_records(), {"max_latency_ms": 250})
    html = (tmp_path / "report.html").read_text()
    assert html.index('id="decision"') < html.index("Summary per strategy") < html.index("Per cell")
    assert "Decision: lora" in html
    assert "few-shot (p50 latency 300 ms &gt; 250 ms limit)" in html
    assert "qlora (skipped: needs CUDA)" in html
    for name in ("pareto", "forgetting", "latency", "training"):
        assert f'id="chart-{name}"><svg' in html
        assert (tmp_path / "charts" / f"{name}.svg").read_text().startswith("<svg")
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Decision: lora") < md.index("## Summary per strategy")
    assert "- [pareto](charts/pareto.svg)" in md
    assert "lora vs zero-shot: +42.5 pt \\[95% CI" in md and "significantly different" in md


def test_item_browser_marks_disagreements(tmp_path: Path):
    write_run(tmp_path, "run-1", decision_records())
    html = (tmp_path / "report.html").read_text()
    section = html[html.index("Predictions, item by item"):]
    # ct: items 0-9 right for all three; 10-24 right for few-shot and lora only; 25-31 lora only; 32-39 none
    assert "ct (40 items, 22 with disagreement)" in section
    assert section.count('<tr class="disagree">') == 22
    assert '<input type="checkbox" id="only-disagree">' in section


def test_report_reuses_saved_constraints_and_recommend_can_change_them(tmp_path: Path):
    from harness.cli.recommend import recommend as recommend_cmd

    write_run(tmp_path, "run-1", decision_records(), {"max_forgetting_pt": 1.0})
    assert "Decision: few-shot" in (tmp_path / "report.html").read_text()
    render_run(tmp_path)
    assert "Decision: few-shot" in (tmp_path / "report.html").read_text()
    recommend_cmd(tmp_path, None, 5.0, None, None, None, None, None, None, None, None, None, save=True)
    report, _ = load_run(tmp_path)
    assert report.constraints == {"max_forgetting_pt": 5.0}
    assert "Decision: lora" in (tmp_path / "report.html").read_text()


def test_data_checks_and_training_items_are_in_the_report_and_escaped(tmp_path: Path):
    """Suite notes (duplicates dropped, leaks, carved splits) and how many train items each trained cell
    saw reach both reports, survive a re-render, and stay inert text."""
    lora = replace(record("lora"), adapt=AdaptReport(total_params=10, trainable_params=2, train_tokens=12345,
                                                       extras={"train_items": 70.0}))
    notes = ("qa/train: 3 duplicates dropped", f"split carved 70/15/15 from {HOSTILE}")
    write_run(tmp_path, "run-1", [record("zero-shot"), lora], data_notes=notes)
    md = (tmp_path / "report.md").read_text()
    assert "## Data" in md and "- qa/train: 3 duplicates dropped" in md
    assert "| lora | 0 | 70 | – | 12,345 |" in md and "| zero-shot | 0 | " not in md.split("## Data")[1][:600]
    html = (tmp_path / "report.html").read_text()
    assert "<li>qa/train: 3 duplicates dropped</li>" in html and "<td>70</td>" in html
    assert "<script>alert(1)" not in html and "<script>" not in md
    render_run(tmp_path)
    assert (tmp_path / "report.md").read_text() == md


def test_report_json_holds_the_figures_the_pages_show(tmp_path: Path, monkeypatch):
    import json

    from harness.report import results

    write_run(tmp_path, "run-1", decision_records(), {"max_latency_ms": 250})
    data = json.loads((tmp_path / "report.json").read_text())["results"]  # strict JSON: NaN would not parse
    assert data["schema_version"] == results.RESULTS_VERSION and set(data["task_metrics"])
    assert data["decision"]["pick"] == "lora" and data["decision"]["constraints"]["max_latency_ms"] == 250
    assert {p["verdict"] for p in data["pairs"]} <= {"different", "equivalent", "underpowered"}
    assert all(0 <= p["p_holm"] <= 1 for p in data["pairs"])
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    for arm in data["arms"]:
        s = arm["s"]
        if s["status"] == "ok":
            ci = f"[{s['score']['low']:.3f}, {s['score']['high']:.3f}]"
            assert f"{s['score']['mean']:.3f}" in md and ci in md and ci in html
    assert "0.123" not in md
    real = results.build

    def edited(*args):  # the pages must show what the results object says, not recompute it
        out = real(*args)
        out["arms"][0]["s"]["score"]["mean"] = 0.123456
        out["decision"]["pick"] = "edited-pick"
        return out

    monkeypatch.setattr(results, "build", edited)
    render_run(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "0.123" in md and "## Decision: edited-pick" in md
    assert json.loads((tmp_path / "report.json").read_text())["results"]["decision"]["pick"] == "edited-pick"


def test_phase_times_are_shown_per_cell(tmp_path: Path):
    recs = [replace(r, phase_s={"adapt": 12.5, "eval:qa": 3.25, "retention": 1.0}) for r in decision_records()]
    write_run(tmp_path, "run-1", recs)
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "## Where the time went" in md and "| 12.5 | 3.2 | 1.0 | 16.8 |" in md
    assert "<th>eval:qa s</th>" in html and "<td>16.8</td>" in html
