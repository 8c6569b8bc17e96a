"""Crash safety: `harness compare` killed with SIGKILL at ten points (start, cell start, after
adapting, between tasks, while caching the base model's retention figures, after a training
checkpoint, while writing a record, between cells, while copying records into the run folder,
while rendering) and run again. Every finished cell is reused, never recomputed; no file is left
half-written; the final records equal those of a run that was never interrupted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.records import CellRecord, from_json

pytestmark = pytest.mark.slow

KILL_POINTS = ["run-start", "cell-start:2", "adapted:2", "task-done:3", "retention-base", "train-checkpoint:2",
               "atomic-write:2", "between-cells:1", "report-records:2", "report-json",
               "report-md"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir):
    """A copy of the mini suite with the built-in `general` retention suite, and a run config."""
    root = tmp_path_factory.mktemp("crash")
    suite = root / "mini"
    shutil.copytree(Path(__file__).parent / "fixtures" / "mini", suite)
    toml = (suite / "suite.toml").read_text().replace('corpus = "corpus/"', 'corpus = "corpus/"\nretention = "general"')
    (suite / "suite.toml").write_text(toml)
    cfg = root / "run.toml"
    cfg.write_text(f'suite = "{suite}"\nstrategies = ["zero-shot", "lora"]\nlimit = 3\n'
                   "[options.lora]\nmax_steps = 4\nbatch_size = 2\neval_every = 1\n")
    return cfg, tiny_model_dir, root


def compare(cfg: Path, model: Path, out: Path, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_KILL_AT"}
    if kill:
        env["HARNESS_KILL_AT"] = kill
    return subprocess.run([sys.executable, "-m", "harness", "compare", "--config", str(cfg), "--model", str(model),
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)


def final_records(out: Path) -> dict[str, dict]:
    """strategy -> record (timing fields removed) of the complete run folder."""
    from test_determinism import without_timing

    runs = [d for d in (out / "mini").iterdir() if (d / "report.json").is_file()
            and json.loads((d / "report.json").read_text())["progress"] is None]  # a killed run's partial report stays
    assert len(runs) == 1, runs
    report = json.loads((runs[0] / "report.json").read_text())
    return {c["strategy"]: without_timing(json.loads((runs[0] / c["record"]).read_text())) for c in report["cells"]}


@pytest.fixture(scope="module")
def uninterrupted(setup):
    cfg, model, root = setup
    proc = compare(cfg, model, root / "plain")
    assert proc.returncode == 0, proc.stderr
    return final_records(root / "plain")


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_compare_resumes_without_recomputing(point, setup, uninterrupted, tmp_path):
    cfg, model, _ = setup
    killed = compare(cfg, model, tmp_path, kill=point)
    assert killed.returncode == -9, f"{point} was never reached:\n{killed.stdout}\n{killed.stderr}"
    cells = tmp_path / "mini" / "cells"
    finished = {p.name: p.read_bytes() for p in cells.glob("*.json")} if cells.is_dir() else {}
    for blob in finished.values():
        from_json(CellRecord, blob)  # every record on disk is whole
    again = compare(cfg, model, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("reused") == len(finished)  # finished cells are not recomputed...
    for name, blob in finished.items():
        assert (cells / name).read_bytes() == blob  # ...nor rewritten
    assert not [p for p in tmp_path.rglob("*.tmp")]  # nothing half-written is left
    for p in tmp_path.rglob("*.json"):
        json.loads(p.read_text())
    assert final_records(tmp_path) == uninterrupted
