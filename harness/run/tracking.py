"""Experiment-tracking export: each cell of a run as one MLflow run (`harness compare --mlflow`).

A post-run step over the run's records (reused cells included), so it logs exactly what the
report shows and can never change a result. Off unless asked; MLflow is an optional extra
(`pip install 'harness[track]'`, mlflow-skinny) imported only here.

Store. By default a SQLite store in the run folder (`<run>/mlflow/mlflow.db`, artifacts beside it):
MLflow 3.7+ made `sqlite:///mlflow.db` its own default and refuses the plain `file:` store unless
MLFLOW_ALLOW_FILE_STORE is set; SQLite needs no server and works offline. Any tracking URI (a server,
another database) can be given instead. Experiment: `harness/<suite>`; one run per cell, tagged with
the harness run id and cell id; a second export of the same run adds nothing.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.records import CellRecord

INSTALL_HINT = "--mlflow needs MLflow: pip install 'harness[track]'"
_BAD = re.compile(r"[^A-Za-z0-9_\-. /]")


def key(name: str) -> str:
    """An MLflow metric or parameter name: letters, digits and `_-. /` (recall@5 -> recall_5)."""
    return _BAD.sub("_", name)


def _flatten(d: dict[str, Any], prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[key(f"{prefix}{k}")] = (json.dumps(v) if isinstance(v, list | tuple) else str(v))[:6000]
    return out


def params(rec: CellRecord) -> dict[str, str]:
    """Strategy, options (flattened: options.k, options.weights.r...), seed, model, suite."""
    head = {"strategy": rec.strategy, "seed": str(rec.seed), "model": rec.model, "suite": rec.suite,
            "suite_hash": rec.suite_hash, "limit": str(rec.limit), "cell_id": rec.cell_id}
    return {**head, **_flatten(rec.options, "options.")}


def _retention_metrics(rec: CellRecord) -> dict[str, float]:
    if rec.retention is None:
        return {}
    out: dict[str, float] = {}
    base = {(t.task, m): v for t in rec.retention.base for m, v in t.metrics.items()}
    for t in rec.retention.tasks:
        for m, v in t.metrics.items():
            out[f"retention.{t.task}.{m}"] = v
            if (t.task, m) in base:
                out[f"retention.{t.task}.{m}.delta"] = v - base[(t.task, m)]
    return out


def metrics(rec: CellRecord) -> dict[str, float]:
    """Task metrics, headline score, latency p50/p95, train time and tokens, peak memory, retention."""
    from harness.run.tune import cell_score

    out: dict[str, float] = {f"{t.task}.{m}": v for t in rec.tasks for m, v in t.metrics.items()}
    if rec.tasks:
        out["score"] = cell_score(rec)
    if rec.latency is not None:
        out |= {"latency_p50_s": rec.latency.p50_s, "latency_p95_s": rec.latency.p95_s,
                "items_per_s": rec.latency.items_per_s, "prompt_tokens_mean": rec.latency.prompt_tokens_mean}
    out |= {"adapt_wall_s": rec.adapt.wall_s, "train_tokens": float(rec.adapt.train_tokens),
            "trainable_params": float(rec.adapt.trainable_params), "eval_wall_s": rec.eval_wall_s,
            "peak_mem_bytes": float(max(rec.adapt.peak_mem_bytes, rec.eval_peak_mem_bytes)),
            "artifact_bytes": float(rec.adapt.artifact_bytes)}
    out |= _retention_metrics(rec)
    return {key(k): float(v) for k, v in out.items() if v == v}  # NaN (no items) is not logged


def _ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def default_uri(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'mlflow' / 'mlflow.db').resolve()}"


def _experiment(client: Any, name: str, artifacts: Path | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = artifacts.resolve().as_uri() if artifacts else None
    return str(client.create_experiment(name, artifact_location=location))


def _client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise HarnessError(INSTALL_HINT) from None
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)  # database set-up chatter
    return MlflowClient(tracking_uri=uri)


def log_run(run_dir: Path, records: list[CellRecord], tracking_uri: str | None = None) -> str:
    """Log every cell of the run in `run_dir` as an MLflow run; returns the tracking URI used."""
    uri = tracking_uri or default_uri(run_dir)
    if tracking_uri is None:
        (run_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    client = _client(uri)
    run_id = run_dir.name
    exp = _experiment(client, f"harness/{records[0].suite}", run_dir / "mlflow" / "artifacts"
                      if tracking_uri is None else None)
    done = {r.data.tags.get("harness.cell_id") for r in client.search_runs(
        [exp], filter_string=f"tags.`harness.run_id` = '{run_id}'", max_results=10_000)}
    for rec in records:
        if rec.cell_id not in done:
            _log_cell(client, exp, run_id, rec, run_dir / "records" / f"{rec.strategy}-seed{rec.seed}.json")
    return uri


def _log_cell(client: Any, exp: str, run_id: str, rec: CellRecord, record_file: Path) -> None:
    from mlflow.entities import Metric, Param, RunTag

    prov = rec.provenance
    tags = {"harness.run_id": run_id, "harness.cell_id": rec.cell_id, "harness.status": rec.status}
    if rec.error:
        tags["harness.error"] = rec.error[:5000]
    run = client.create_run(exp, start_time=_ms(prov.started_at if prov else None), tags=tags,
                            run_name=f"{rec.strategy} seed {rec.seed}")
    rid = run.info.run_id
    stamp = _ms(prov.finished_at if prov else None) or 0
    values = [Metric(k, v, stamp, 0) for k, v in metrics(rec).items()]
    values += [Metric(key(name), v, stamp, int(row["step"])) for row in rec.adapt.curve
               for name, v in row.items() if name != "step"]
    plist = [Param(k, v) for k, v in params(rec).items()]
    client.log_batch(rid, tags=[RunTag(k, v) for k, v in tags.items()])
    for i in range(0, max(len(plist), len(values)), 100):  # MLflow's batch limits: 100 params, 1000 metrics
        client.log_batch(rid, metrics=values[i : i + 100], params=plist[i : i + 100])
    if record_file.is_file():
        client.log_artifact(rid, str(record_file), artifact_path="record")
    client.set_terminated(rid, status="FAILED" if rec.status == "failed" else "FINISHED",
                          end_time=_ms(prov.finished_at if prov else None))
