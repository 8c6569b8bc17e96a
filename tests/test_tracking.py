"""MLflow export: a compare with --mlflow logs each cell to a real local store, read back with the
MLflow client (off unless asked: see test_tune's compare); a second export of the same run adds nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("mlflow")


def _compare(tmp_path, mini_suite_dir, tiny_model_dir, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "harness", "compare", "--suite", str(mini_suite_dir), "--model",
            str(tiny_model_dir), "--strategies", "zero-shot,few-shot", "--limit", "2", "--out",
            str(tmp_path / "out"), *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})


def test_compare_logs_every_cell_to_a_local_store(tmp_path, mini_suite_dir, tiny_model_dir):
    from mlflow import MlflowClient

    from harness.run.tracking import default_uri, log_run

    proc = _compare(tmp_path, mini_suite_dir, tiny_model_dir, "--mlflow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = next(p.parent for p in (tmp_path / "out" / "mini").glob("*/report.json"))
    assert (run_dir / "mlflow" / "mlflow.db").is_file()
    client = MlflowClient(tracking_uri=default_uri(run_dir))
    exp = client.get_experiment_by_name("harness/mini")
    runs = {r.data.params["strategy"]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"zero-shot", "few-shot"}

    few = runs["few-shot"]
    record = json.loads((run_dir / "records" / "few-shot-seed0.json").read_text())
    assert few.data.params["options.k"] == str(record["options"]["k"])
    assert few.data.params["seed"] == "0" and few.data.params["model"] == record["model"]
    assert few.data.tags["harness.cell_id"] == record["cell_id"] and few.info.status == "FINISHED"
    metrics = few.data.metrics
    qa = next(t for t in record["tasks"] if t["task"] == "qa")
    assert metrics["qa.f1"] == pytest.approx(qa["metrics"]["f1"])
    assert metrics["latency_p50_s"] == pytest.approx(record["latency"]["p50_s"])
    assert {"score", "latency_p95_s", "adapt_wall_s", "peak_mem_bytes"} <= set(metrics)
    artifacts = [f.path for f in client.list_artifacts(few.info.run_id, "record")]
    assert artifacts == ["record/few-shot-seed0.json"]

    from harness.report import load_run

    _, records = load_run(run_dir)
    log_run(run_dir, records)  # the same run again: nothing added
    assert len(client.search_runs([exp.experiment_id])) == 2


def test_metric_and_param_names_are_valid_for_mlflow():
    from harness.run.tracking import key

    assert key("statute-qa.recall@5") == "statute-qa.recall_5"
    assert key("options.weights.r") == "options.weights.r"
